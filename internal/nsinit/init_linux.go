package nsinit

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"syscall"
	"time"

	"github.com/pybox-dev/pybox/internal/linux/landlock"
	"github.com/pybox-dev/pybox/internal/linux/seccomp"
	"golang.org/x/sys/unix"
)

// staging is where the new root is assembled before pivot_root. All
// sources were opened before it is mounted, so it may shadow host paths.
const staging = "/tmp"

// Main is the entry point of the re-executed init. It never returns: it
// becomes the sandbox's reaper (pid 1) or exits 1 after reporting what
// failed.
func Main() {
	// The per-thread steps (capabilities, no_new_privs, Landlock, seccomp,
	// the cgroup namespace) that end in this thread's execve must run on
	// the thread that execs.
	runtime.LockOSThread()
	report := os.NewFile(ReportFD, "report")
	if err := run(report); err != nil {
		fmt.Fprintf(report, "E %v\n", err)
		os.Exit(1)
	}
}

func run(report *os.File) error {
	cfgFile := os.NewFile(ConfigFD, "config")
	var cfg Config
	if err := json.NewDecoder(cfgFile).Decode(&cfg); err != nil {
		return fmt.Errorf("reading config: %w", err)
	}
	cfgFile.Close()
	return setup(&cfg, report)
}

// setup is the whole pipeline, one named step per mechanism: first what
// applies to the whole sandbox (mounts, pivot_root, hostname, rlimits,
// descriptors), then what each thread must do for itself before it execs
// (confine: cgroup namespace, capabilities, no_new_privs, Landlock,
// seccomp, always in that order and seccomp last).
//
// Two processes leave the init: the user's program, forked from a thread
// that has just confined itself, and pid 1, which the init's main thread
// becomes by confining itself and exec'ing the reaper. The program is
// never pid 1 (where signals without a handler are ignored and orphans
// land), and it starts as a plain `python3 -I script.py`, in parallel
// with the reaper.
func setup(cfg *Config, report *os.File) error {
	steps := []struct {
		name string
		fn   func(*Config) error
	}{
		{"making mounts private", makePrivate},
		{"opening mount sources", openSources},
		{"mounting the new root", mountRoot},
		{"binding interpreter and libraries", bindMounts},
		{"mounting the code directory", mountCode},
		{"writing files", writeFiles},
		{"mounting scratch tmpfs", mountScratch},
		{"populating /dev", mountDev},
		{"placing input files", bindInputs},
		{"mounting /proc", mountProc},
		{"pivoting root", pivotRoot},
		{"setting hostname", setHostname},
		{"setting rlimits", setRlimits},
		{"closing descriptors", closeFDs},
		{"starting the program", startProgram},
	}
	t0 := time.Now()
	for _, s := range steps {
		if err := s.fn(cfg); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		if cfg.Trace {
			fmt.Fprintf(report, "T %d %s\n", time.Since(t0).Microseconds(), s.name)
		}
	}
	if err := unix.Dup3(ReportFD, 3, 0); err != nil {
		return fmt.Errorf("handing the report pipe to the reaper: %w", err)
	}
	if err := becomeReaperUser(cfg); err != nil {
		return err
	}
	if err := confine(cfg); err != nil {
		return fmt.Errorf("confining the reaper: %w", err)
	}
	// Nothing but execve may follow the seccomp filter.
	err := unix.Exec(cfg.Exec, cfg.Argv, cfg.Env)
	return fmt.Errorf("executing %s: %w", cfg.Exec, err)
}

// becomeReaperUser switches this thread (the one that execs the reaper) to
// cfg.ReaperUID. Raw syscalls: only this thread matters, since execve ends
// the others, and Go's own wrappers would change every thread.
func becomeReaperUser(cfg *Config) error {
	if cfg.ReaperUID == 0 {
		return nil
	}
	id := uintptr(cfg.ReaperUID)
	if _, _, e := unix.RawSyscall(unix.SYS_SETGROUPS, 0, 0, 0); e != 0 {
		return fmt.Errorf("setgroups for the reaper: %w", e)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESGID, id, id, id); e != 0 {
		return fmt.Errorf("setresgid for the reaper: %w", e)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, id, id, id); e != 0 {
		return fmt.Errorf("setresuid for the reaper: %w", e)
	}
	// A credential change clears the parent-death signal; without it the
	// sandbox would outlive a killed pybox.
	if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0, 0); err != nil {
		return fmt.Errorf("restoring the parent-death signal: %w", err)
	}
	return nil
}

// confine applies the per-thread layers to the calling thread, in order;
// what this thread execs or forks inherits them.
func confine(cfg *Config) error {
	steps := []struct {
		name string
		fn   func(*Config) error
	}{
		{"entering cgroup namespace", unshareCgroup},
		{"dropping capabilities", dropCaps},
		{"setting no_new_privs", noNewPrivs},
		{"applying landlock", applyLandlock},
		{"installing seccomp filter", installSeccomp},
	}
	for _, s := range steps {
		if err := s.fn(cfg); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
	}
	return nil
}

// startProgram forks the user's program from a fresh OS thread that
// confines itself first, and reports its pid ("F <pid>").
//
// The thread is discarded afterwards (its goroutine exits while locked),
// so the only Go code that runs under the sandbox's filter is the parent
// half of fork+exec on a thread that is about to die. Before the fork the
// init becomes non-dumpable: until pid 1 execs the reaper it is an
// unconfined process, and /proc/1/mem must not be a way into it (Landlock
// also refuses a confined process ptrace access to anything outside its
// domain).
func startProgram(cfg *Config) error {
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("making the init non-dumpable: %w", err)
	}
	type result struct {
		pid int
		err error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with this goroutine
		if !cfg.ProgramUnconfined {
			if err := confine(cfg); err != nil {
				done <- result{0, err}
				return
			}
		}
		files := []uintptr{0, 1, 2}
		for _, fd := range cfg.ProgramFDs {
			files = append(files, uintptr(fd))
		}
		pid, err := syscall.ForkExec(cfg.ProgramArgv[0], cfg.ProgramArgv, &syscall.ProcAttr{
			Dir:   cfg.Cwd,
			Env:   cfg.Env,
			Files: files,
		})
		done <- result{pid, err}
	}()
	r := <-done
	if r.err != nil {
		return r.err
	}
	cfg.Argv = append(cfg.Argv, strconv.Itoa(r.pid))
	_, err := fmt.Fprintf(os.NewFile(ReportFD, "report"), "F %d\n", r.pid)
	return err
}

func setHostname(cfg *Config) error {
	if err := unix.Sethostname([]byte(cfg.Hostname)); err != nil {
		return err
	}
	return unix.Setdomainname([]byte("(none)"))
}

func setRlimits(cfg *Config) error {
	for _, r := range cfg.Rlimits {
		lim := unix.Rlimit{Cur: r.Value, Max: r.Value}
		if err := unix.Setrlimit(r.Resource, &lim); err != nil {
			return fmt.Errorf("resource %d: %w", r.Resource, err)
		}
	}
	return nil
}

// unshareCgroup runs once this process is in its final cgroup (the host
// put it there before sending the config), so the namespace's root is that
// group and /proc/self/cgroup reveals nothing of the host's hierarchy. It
// needs no delegated cgroup: rootless sandboxes get one too.
func unshareCgroup(*Config) error {
	return unix.Unshare(unix.CLONE_NEWCGROUP)
}

// dropCaps empties every capability set of this thread, including the
// bounding set, so that nothing exec'd later (even a file with capability
// xattrs) can regain one.
func dropCaps(*Config) error {
	last := lastCap()
	for c := 0; c <= last; c++ {
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil && err != unix.EINVAL {
			return fmt.Errorf("dropping cap %d from bounding set: %w", c, err)
		}
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
		return fmt.Errorf("clearing ambient caps: %w", err)
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capset: %w", err)
	}
	return nil
}

func lastCap() int {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err == nil {
		var n int
		if _, err := fmt.Sscanf(string(b), "%d", &n); err == nil {
			return n
		}
	}
	return 63
}

func noNewPrivs(*Config) error {
	return unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
}

func applyLandlock(cfg *Config) error {
	if len(cfg.Landlock) == 0 {
		return nil
	}
	rules := make([]landlock.Rule, len(cfg.Landlock))
	for i, r := range cfg.Landlock {
		rules[i] = landlock.Rule{Path: r.Path, Access: r.Access}
	}
	_, err := landlock.RestrictThread(rules)
	return err
}

// closeFDs marks every descriptor but stdin, stdout and stderr
// close-on-exec: a descriptor leaked into a sandbox is an escape
// (CVE-2024-21626). The program gets exactly 0, 1 and 2 (and a driver
// its control pipes as 3 and 4); the reaper also gets the report pipe, as
// fd 3.
func closeFDs(*Config) error {
	return unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC)
}

func installSeccomp(cfg *Config) error {
	if len(cfg.Seccomp) == 0 {
		return fmt.Errorf("no filter in config")
	}
	prog := make([]unix.SockFilter, len(cfg.Seccomp))
	for i, f := range cfg.Seccomp {
		prog[i] = unix.SockFilter{Code: f.Code, Jt: f.Jt, Jf: f.Jf, K: f.K}
	}
	return seccomp.InstallOnThread(prog)
}

// init starts the init role during package initialisation, not from main:
// Go initialises packages in import-path order as their dependencies
// allow, and this package needs none of the heavy ones that the pybox
// command links in (clients compiling regular expressions, metrics
// registries), whose initialisation costs ~2 ms per process. Every cold
// sandbox starts one.
func init() {
	if len(os.Args) > 0 && os.Args[0] == Name {
		Main()
		os.Exit(0)
	}
}
