//go:build linux

package seccomp

import (
	"encoding/binary"
	"fmt"
	"testing"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// These tests run the compiled filter in golang.org/x/net/bpf's
// interpreter instead of installing it, so they need no privileges and
// cannot disturb the test process.
//
// The interpreter was written for packets: its loads are big-endian,
// while the kernel loads seccomp_data words in the CPU's order. The filter
// only ever does aligned 32-bit loads (checked below), so seccompData
// stores each 32-bit word big-endian at the offset where the kernel's
// little-endian load would find it: nr at 0, arch at 4, instruction
// pointer at 8, and for argument i its low half at 16+8i and its high half
// at 20+8i. The VM then sees exactly the values the kernel's BPF sees.

const (
	auditArchX86_64 = 0xc000003e
	auditArchI386   = 0x40000003
	auditArchARM64  = 0xc00000b7
)

// testErrno is deliberately not EPERM, so that a deny can be told apart
// from an errno the kernel or a rule would produce.
const testErrno = unix.EHWPOISON // 133

var (
	allow = uint32(unix.SECCOMP_RET_ALLOW)
	deny  = uint32(unix.SECCOMP_RET_ERRNO) | uint32(testErrno)
	kill  = uint32(unix.SECCOMP_RET_KILL_PROCESS)
)

func retErrno(e unix.Errno) uint32 { return uint32(unix.SECCOMP_RET_ERRNO) | uint32(e) }

func seccompData(auditArch, nr uint32, args ...uint64) []byte {
	b := make([]byte, 64) // sizeof(struct seccomp_data)
	binary.BigEndian.PutUint32(b[0:], nr)
	binary.BigEndian.PutUint32(b[4:], auditArch)
	binary.BigEndian.PutUint32(b[8:], 0x00401000) // ip, low half
	for i, a := range args {
		binary.BigEndian.PutUint32(b[16+8*i:], uint32(a))       // low half
		binary.BigEndian.PutUint32(b[16+8*i+4:], uint32(a>>32)) // high half
	}
	return b
}

type filterVM struct {
	vm   *bpf.VM
	arch uint32
}

func newFilterVM(t *testing.T, a *Arch) *filterVM {
	t.Helper()
	p, err := Compile(Profile, a, testErrno)
	if err != nil {
		t.Fatal(err)
	}
	// The byte-order emulation above is exact only for aligned 32-bit
	// absolute loads; fail loudly if the compiler starts emitting others.
	for i, ins := range p.Instructions {
		switch ins := ins.(type) {
		case bpf.LoadAbsolute:
			if ins.Size != 4 || ins.Off%4 != 0 || ins.Off+4 > 64 {
				t.Fatalf("instruction %d (%v): the test's seccomp_data encoding supports only aligned 32-bit loads", i, ins)
			}
		case bpf.LoadIndirect, bpf.LoadMemShift, bpf.LoadExtension:
			t.Fatalf("instruction %d (%v): unexpected load kind for a seccomp filter", i, ins)
		}
	}
	vm, err := bpf.NewVM(p.Instructions)
	if err != nil {
		t.Fatalf("the compiled filter is not a valid BPF program: %v", err)
	}
	return &filterVM{vm: vm, arch: a.AuditArch}
}

func (f *filterVM) run(t *testing.T, auditArch, nr uint32, args ...uint64) uint32 {
	t.Helper()
	ret, err := f.vm.Run(seccompData(auditArch, nr, args...))
	if err != nil {
		t.Fatalf("running the filter: %v", err)
	}
	return uint32(ret)
}

func describe(ret uint32) string {
	switch {
	case ret == allow:
		return "ALLOW"
	case ret == kill:
		return "KILL_PROCESS"
	case ret&unix.SECCOMP_RET_ACTION_FULL == unix.SECCOMP_RET_ERRNO:
		return fmt.Sprintf("ERRNO(%d %v)", ret&unix.SECCOMP_RET_DATA, unix.Errno(ret&unix.SECCOMP_RET_DATA))
	}
	return fmt.Sprintf("%#x", ret)
}

// x86_64 syscall numbers, written out so that the test does not merely
// repeat the arch table the compiler uses.
const (
	nrRead          = 0
	nrWrite         = 1
	nrMmap          = 9
	nrIoctl         = 16
	nrSocket        = 41
	nrSocketpair    = 53
	nrClone         = 56
	nrExecve        = 59
	nrPtrace        = 101
	nrPersonality   = 135
	nrPrctl         = 157
	nrMount         = 165
	nrFutex         = 202
	nrKeyctl        = 250
	nrUnshare       = 272
	nrSetns         = 308
	nrBpf           = 321
	nrIoUringSetup  = 425
	nrClone3        = 435
	nrExitGroup     = 231
	nrGetrandom     = 318
	nrPerfEventOpen = 298
	nrUserfaultfd   = 323
	nrInitModule    = 175
	nrFinitModule   = 313
	nrKexecLoad     = 246
	nrAddKey        = 248
	nrRequestKey    = 249
	nrProcessVMRead = 310
	nrOpenByHandle  = 304
	nrChroot        = 161
	nrPivotRoot     = 155
	nrUmount2       = 166
	nrReboot        = 169
	nrSwapon        = 167
	nrFsopen        = 430
	nrOpenTree      = 428
	nrMoveMount     = 429
	nrSeccomp       = 317
	nrIoperm        = 173
	nrIopl          = 172
	nrModifyLdt     = 154
	nrSyslog        = 103
	nrKcmp          = 312
	nrPidfdGetfd    = 438
	nrAcct          = 163
	nrSethostname   = 170
	nrClockSettime  = 227
	nrIoUringEnter  = 426
	nrIoUringReg    = 427
)

func TestArchTableMatchesKernelNumbers(t *testing.T) {
	for name, nr := range map[string]int{
		"read": nrRead, "write": nrWrite, "ioctl": nrIoctl, "socket": nrSocket, "clone": nrClone,
		"ptrace": nrPtrace, "personality": nrPersonality, "prctl": nrPrctl, "mount": nrMount,
		"futex": nrFutex, "keyctl": nrKeyctl, "unshare": nrUnshare, "setns": nrSetns, "bpf": nrBpf,
		"io_uring_setup": nrIoUringSetup, "clone3": nrClone3,
	} {
		if got, ok := X86_64.Lookup(name); !ok || got != nr {
			t.Errorf("arch table: %s = %d (present %v), kernel number %d", name, got, ok, nr)
		}
	}
	if X86_64.AuditArch != auditArchX86_64 || AARCH64.AuditArch != auditArchARM64 {
		t.Errorf("audit arch IDs: x86_64 %#x, aarch64 %#x", X86_64.AuditArch, AARCH64.AuditArch)
	}
}

func TestFilterX86_64(t *testing.T) {
	f := newFilterVM(t, X86_64)
	const (
		threadFlags = unix.CLONE_VM | unix.CLONE_FS | unix.CLONE_FILES | unix.CLONE_SIGHAND |
			unix.CLONE_THREAD | unix.CLONE_SYSVSEM | unix.CLONE_SETTLS |
			unix.CLONE_PARENT_SETTID | unix.CLONE_CHILD_CLEARTID
		forkFlags = unix.CLONE_CHILD_SETTID | unix.CLONE_CHILD_CLEARTID | uint64(unix.SIGCHLD)
	)
	cases := []struct {
		name string
		nr   uint32
		args []uint64
		want uint32
	}{
		{"read", nrRead, nil, allow},
		{"write", nrWrite, []uint64{1, 0x7ffd0000, 12}, allow},
		{"futex", nrFutex, nil, allow},
		{"mmap", nrMmap, nil, allow},
		{"execve", nrExecve, nil, allow},
		{"exit_group", nrExitGroup, nil, allow},
		{"getrandom", nrGetrandom, nil, allow},

		{"ptrace", nrPtrace, []uint64{unix.PTRACE_ATTACH, 1}, deny},
		{"mount", nrMount, nil, deny},
		{"umount2", nrUmount2, nil, deny},
		{"bpf", nrBpf, nil, deny},
		{"keyctl", nrKeyctl, nil, deny},
		{"add_key", nrAddKey, nil, deny},
		{"request_key", nrRequestKey, nil, deny},
		{"io_uring_setup", nrIoUringSetup, nil, deny},
		{"io_uring_enter", nrIoUringEnter, nil, deny},
		{"io_uring_register", nrIoUringReg, nil, deny},
		{"memfd_create", 319, nil, deny},
		{"sync is a no-op", 162, nil, retErrno(0)},
		{"syncfs is a no-op", 306, nil, retErrno(0)},
		{"inotify_init1", 294, nil, deny},
		{"inotify_add_watch", 254, nil, deny},
		{"unshare", nrUnshare, []uint64{unix.CLONE_NEWUSER}, deny},
		{"unshare nothing", nrUnshare, []uint64{0}, deny},
		{"setns", nrSetns, nil, deny},
		{"perf_event_open", nrPerfEventOpen, nil, deny},
		{"userfaultfd", nrUserfaultfd, nil, deny},
		{"init_module", nrInitModule, nil, deny},
		{"finit_module", nrFinitModule, nil, deny},
		{"kexec_load", nrKexecLoad, nil, deny},
		{"process_vm_readv", nrProcessVMRead, nil, deny},
		{"open_by_handle_at", nrOpenByHandle, nil, deny},
		{"chroot", nrChroot, nil, deny},
		{"pivot_root", nrPivotRoot, nil, deny},
		{"reboot", nrReboot, nil, deny},
		{"swapon", nrSwapon, nil, deny},
		{"fsopen", nrFsopen, nil, deny},
		{"open_tree", nrOpenTree, nil, deny},
		{"move_mount", nrMoveMount, nil, deny},
		{"seccomp", nrSeccomp, nil, deny},
		{"ioperm", nrIoperm, nil, deny},
		{"iopl", nrIopl, nil, deny},
		{"modify_ldt", nrModifyLdt, nil, deny},
		{"syslog", nrSyslog, nil, deny},
		{"kcmp", nrKcmp, nil, deny},
		{"pidfd_getfd", nrPidfdGetfd, nil, deny},
		{"acct", nrAcct, nil, deny},
		{"sethostname", nrSethostname, nil, deny},
		{"clock_settime", nrClockSettime, nil, deny},
		{"unknown number", 999, nil, deny},
		{"largest non-x32 number", 0x3fffffff, nil, deny},

		// clone: threads and processes yes, namespaces no.
		{"clone fork", nrClone, []uint64{uint64(unix.SIGCHLD)}, allow},
		{"clone fork with tid flags", nrClone, []uint64{forkFlags}, allow},
		{"clone thread", nrClone, []uint64{threadFlags}, allow},
		{"clone vfork", nrClone, []uint64{unix.CLONE_VM | unix.CLONE_VFORK | uint64(unix.SIGCHLD)}, allow},
		{"clone flags 0", nrClone, []uint64{0}, allow},
		{"clone CLONE_NEWUSER", nrClone, []uint64{unix.CLONE_NEWUSER | uint64(unix.SIGCHLD)}, deny},
		{"clone CLONE_NEWNS", nrClone, []uint64{unix.CLONE_NEWNS}, deny},
		{"clone CLONE_NEWPID", nrClone, []uint64{unix.CLONE_NEWPID}, deny},
		{"clone CLONE_NEWNET", nrClone, []uint64{unix.CLONE_NEWNET}, deny},
		{"clone CLONE_NEWUTS", nrClone, []uint64{unix.CLONE_NEWUTS}, deny},
		{"clone CLONE_NEWIPC", nrClone, []uint64{unix.CLONE_NEWIPC}, deny},
		{"clone CLONE_NEWCGROUP", nrClone, []uint64{unix.CLONE_NEWCGROUP}, deny},
		{"clone thread + CLONE_NEWUSER", nrClone, []uint64{threadFlags | unix.CLONE_NEWUSER}, deny},
		{"clone CLONE_NEWUSER with high bits", nrClone, []uint64{1<<40 | unix.CLONE_NEWUSER}, deny},
		// The kernel ignores clone's upper 32 flag bits; so may the filter.
		{"clone high bits only", nrClone, []uint64{1<<32 | uint64(unix.SIGCHLD)}, allow},
		{"clone3", nrClone3, []uint64{0x7ffd0000, 88}, retErrno(unix.ENOSYS)},

		// socket: AF_UNIX only.
		{"socket AF_UNIX", nrSocket, []uint64{unix.AF_UNIX, unix.SOCK_STREAM, 0}, allow},
		{"socket AF_UNIX dgram cloexec", nrSocket, []uint64{unix.AF_UNIX, unix.SOCK_DGRAM | unix.SOCK_CLOEXEC, 0}, allow},
		{"socket AF_INET", nrSocket, []uint64{unix.AF_INET, unix.SOCK_STREAM, 0}, deny},
		{"socket AF_INET6", nrSocket, []uint64{unix.AF_INET6, unix.SOCK_DGRAM, 0}, deny},
		{"socket AF_NETLINK", nrSocket, []uint64{unix.AF_NETLINK, unix.SOCK_RAW, 0}, deny},
		{"socket AF_PACKET", nrSocket, []uint64{unix.AF_PACKET, unix.SOCK_RAW, 0}, deny},
		{"socket AF_VSOCK", nrSocket, []uint64{unix.AF_VSOCK, unix.SOCK_STREAM, 0}, deny},
		{"socket AF_ALG", nrSocket, []uint64{unix.AF_ALG, unix.SOCK_SEQPACKET, 0}, deny},
		{"socket AF_UNSPEC", nrSocket, []uint64{unix.AF_UNSPEC, unix.SOCK_STREAM, 0}, deny},
		{"socket AF_INET disguised by high bits", nrSocket, []uint64{1<<32 | unix.AF_INET}, deny},
		{"socketpair AF_UNIX", nrSocketpair, []uint64{unix.AF_UNIX, unix.SOCK_STREAM, 0}, allow},
		{"socketpair AF_INET", nrSocketpair, []uint64{unix.AF_INET, unix.SOCK_STREAM, 0}, deny},

		// ioctl: everything but terminal injection.
		{"ioctl TCGETS", nrIoctl, []uint64{0, unix.TCGETS}, allow},
		{"ioctl FIONREAD", nrIoctl, []uint64{3, 0x541B}, allow},
		{"ioctl TIOCGWINSZ", nrIoctl, []uint64{1, unix.TIOCGWINSZ}, allow},
		{"ioctl TIOCSTI", nrIoctl, []uint64{0, unix.TIOCSTI, 0x7ffd0000}, deny},
		{"ioctl TIOCSTI with high bits", nrIoctl, []uint64{0, 1<<32 | unix.TIOCSTI}, deny},
		{"ioctl TIOCSTI with all high bits", nrIoctl, []uint64{0, 0xffffffff_00000000 | unix.TIOCSTI}, deny},
		{"ioctl TIOCLINUX", nrIoctl, []uint64{0, unix.TIOCLINUX}, deny},
		{"ioctl TIOCLINUX with high bits", nrIoctl, []uint64{0, 1<<63 | unix.TIOCLINUX}, deny},
		// The fd argument must not matter.
		{"ioctl TIOCSTI fd in request slot", nrIoctl, []uint64{unix.TIOCSTI, unix.TCGETS}, allow},

		// prctl: an allowlist of options.
		{"prctl PR_SET_NAME", nrPrctl, []uint64{unix.PR_SET_NAME, 0x7ffd0000}, allow},
		{"prctl PR_GET_NAME", nrPrctl, []uint64{unix.PR_GET_NAME}, allow},
		{"prctl PR_SET_PDEATHSIG", nrPrctl, []uint64{unix.PR_SET_PDEATHSIG, uint64(unix.SIGKILL)}, allow},
		{"prctl PR_SET_NO_NEW_PRIVS", nrPrctl, []uint64{unix.PR_SET_NO_NEW_PRIVS, 1}, allow},
		{"prctl PR_SET_VMA", nrPrctl, []uint64{unix.PR_SET_VMA}, allow},
		{"prctl PR_SET_MM", nrPrctl, []uint64{unix.PR_SET_MM, unix.PR_SET_MM_START_CODE}, deny},
		{"prctl PR_SET_PTRACER", nrPrctl, []uint64{unix.PR_SET_PTRACER, 0xffffffffffffffff}, deny},
		{"prctl PR_SET_SECCOMP", nrPrctl, []uint64{unix.PR_SET_SECCOMP}, deny},
		{"prctl PR_SET_SECUREBITS", nrPrctl, []uint64{unix.PR_SET_SECUREBITS}, deny},
		{"prctl PR_SET_MM hidden in high bits", nrPrctl, []uint64{1<<32 | unix.PR_SET_MM}, deny},
		{"prctl option 0", nrPrctl, []uint64{0}, deny},

		// personality: query only.
		{"personality query", nrPersonality, []uint64{0xffffffff}, allow},
		{"personality PER_LINUX", nrPersonality, []uint64{0}, allow},
		{"personality ADDR_NO_RANDOMIZE", nrPersonality, []uint64{0x0040000}, deny},
		{"personality READ_IMPLIES_EXEC", nrPersonality, []uint64{0x0400000}, deny},
		{"personality PER_LINUX32", nrPersonality, []uint64{0x0008}, deny},

		// x32 ABI: same audit arch, bit 30 set in nr.
		{"x32 read", x32Bit | nrRead, nil, deny},
		{"x32 write", x32Bit | nrWrite, nil, deny},
		{"x32 socket AF_UNIX", x32Bit | nrSocket, []uint64{unix.AF_UNIX}, deny},
		{"x32 execve", x32Bit | 520, nil, deny},
		{"nr -1", 0xffffffff, nil, deny},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := f.run(t, auditArchX86_64, c.nr, c.args...); got != c.want {
				t.Errorf("nr %d args %#x: got %s, want %s", c.nr, c.args, describe(got), describe(c.want))
			}
		})
	}
}

func TestFilterForeignArchKills(t *testing.T) {
	cases := []struct {
		name    string
		filter  *Arch
		foreign uint32
	}{
		{"i386 on x86_64", X86_64, auditArchI386},
		{"aarch64 on x86_64", X86_64, auditArchARM64},
		{"x86_64 on aarch64", AARCH64, auditArchX86_64},
		{"arch 0", X86_64, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFilterVM(t, c.filter)
			// Whatever the number means on the foreign arch (read, write,
			// i386 socketcall 102, ...), the process is killed.
			for _, nr := range []uint32{0, 1, 3, 4, 102, 120, 0x40000000, 0xffffffff} {
				if got := f.run(t, c.foreign, nr); got != kill {
					t.Errorf("arch %#x nr %d: got %s, want KILL_PROCESS", c.foreign, nr, describe(got))
				}
			}
		})
	}
}

func TestFilterAarch64(t *testing.T) {
	f := newFilterVM(t, AARCH64)
	nr := func(name string) uint32 {
		n, ok := AARCH64.Lookup(name)
		if !ok {
			t.Fatalf("aarch64 has no %s", name)
		}
		return uint32(n)
	}
	cases := []struct {
		name string
		nr   uint32
		args []uint64
		want uint32
	}{
		{"read", nr("read"), nil, allow},
		{"openat", nr("openat"), nil, allow},
		{"clone plain", nr("clone"), []uint64{uint64(unix.SIGCHLD)}, allow},
		{"clone CLONE_NEWUSER", nr("clone"), []uint64{unix.CLONE_NEWUSER}, deny},
		{"clone3", nr("clone3"), nil, retErrno(unix.ENOSYS)},
		{"socket AF_UNIX", nr("socket"), []uint64{unix.AF_UNIX}, allow},
		{"socket AF_INET", nr("socket"), []uint64{unix.AF_INET}, deny},
		{"ioctl TIOCSTI", nr("ioctl"), []uint64{0, 1<<32 | unix.TIOCSTI}, deny},
		{"ptrace", nr("ptrace"), nil, deny},
		{"mount", nr("mount"), nil, deny},
		{"bpf", nr("bpf"), nil, deny},
		{"unshare", nr("unshare"), nil, deny},
		{"io_uring_setup", nr("io_uring_setup"), nil, deny},
		{"unknown", 5000, nil, deny},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := f.run(t, auditArchARM64, c.nr, c.args...); got != c.want {
				t.Errorf("nr %d args %#x: got %s, want %s", c.nr, c.args, describe(got), describe(c.want))
			}
		})
	}
}

// TestFilterMatchesProfile sweeps every syscall the arch table knows: an
// unconditional rule is allowed (whatever the arguments), a rule with an
// errno returns it, and a syscall without a rule gets the deny errno.
// Conditional rules are covered case by case above.
func TestFilterMatchesProfile(t *testing.T) {
	for _, a := range []*Arch{X86_64, AARCH64} {
		t.Run(a.Name, func(t *testing.T) {
			f := newFilterVM(t, a)
			rules := map[string]Rule{}
			for _, r := range Profile {
				rules[r.Name] = r
			}
			junk := []uint64{0xffffffffffffffff, 0xdeadbeef, 1 << 40, 7, 0, 0x5412}
			checked := 0
			for _, sc := range a.syscalls {
				name, n := sc.name, sc.nr
				r, listed := rules[name]
				var want uint32
				switch {
				case !listed:
					want = deny
				case r.Errno != 0:
					want = retErrno(r.Errno)
				case r.Noop:
					want = retErrno(0)
				case r.Op == OpNone:
					want = allow
				default:
					continue
				}
				for _, args := range [][]uint64{nil, junk} {
					if got := f.run(t, a.AuditArch, uint32(n), args...); got != want {
						t.Errorf("%s (nr %d) args %#x: got %s, want %s", name, n, args, describe(got), describe(want))
					}
				}
				checked++
			}
			if checked < 250 {
				t.Errorf("checked only %d syscalls; the arch table looks incomplete", checked)
			}
		})
	}
}
