// Package cli implements pybox's subcommands: it turns flags into calls and
// results into output and exit codes.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/pybox-dev/pybox/internal/backend/docker"
	"github.com/pybox-dev/pybox/internal/config"
)

// Exit codes of pybox itself (a script's own code passes through `run`).
const (
	exitUsage   = 2   // bad flags or input
	exitFailure = 125 // pybox could not run the sandbox
	exitPolicy  = 126 // the static policy rejected the code; it did not run
)

const usage = `pybox runs untrusted Python in a layered sandbox.

Usage:
  pybox run [flags] (-c CODE | FILE | -) [ARGS...]   run once in a fresh sandbox
  pybox serve [flags]                               the HTTP API: one-shots and sessions
  pybox repl [flags]                                an interactive session in the terminal
  pybox mcp [flags]                                 the tools over MCP on stdio (desktop agents, IDEs)
  pybox doctor [flags]                              which isolation layers this host offers
  pybox audit verify [--dir DIR]                    check the audit log's hash chain
  pybox key new [--tenant NAME]                     make an API key for pybox serve
  pybox image build [--tag T] [--with-science]      a local image for --backend docker (debootstrap)
  pybox version

Run 'pybox run -h' for the flags.
`

// Main runs pybox with args (without the program name) and returns the
// process exit code.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	switch args[0] {
	case "run":
		return cmdRun(args[1:], stdin, stdout, stderr)
	case "serve":
		return cmdServe(args[1:], stderr)
	case "repl":
		return cmdRepl(args[1:], stdin, stdout, stderr)
	case "mcp":
		return cmdMCP(args[1:], stdin, stdout, stderr)
	case "doctor":
		return cmdDoctor(args[1:], stdout, stderr)
	case "audit":
		return cmdAudit(args[1:], stdout, stderr)
	case "key":
		return cmdKey(args[1:], stdin, stdout, stderr)
	case "image":
		return cmdImage(args[1:], stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, "pybox", Version)
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "pybox: unknown command %q\n\n%s", args[0], usage)
	return exitUsage
}

// Version is set at build time with -ldflags "-X ...cli.Version=...".
var Version = "dev"

// configFlags binds the shared settings to fs, on top of defaults and an
// optional --config file (loaded first, so flags win).
type configFlags struct {
	cfg  config.Config
	file string
	set  map[string]bool
}

func addConfigFlags(fs *flag.FlagSet) *configFlags {
	cf := &configFlags{cfg: config.Default()}
	c := &cf.cfg
	fs.StringVar(&cf.file, "config", "", "JSON config file; its keys are these flag names")
	fs.StringVar(&c.Backend, "backend", c.Backend, "isolation backend: native, docker, auto (native, else docker), or restricted (not a sandbox)")
	fs.StringVar(&c.DockerImage, "docker-image", c.DockerImage, "docker backend: base image with python3 (default "+docker.DefaultImage+", made by pybox image build)")
	fs.StringVar(&c.DockerRuntime, "docker-runtime", c.DockerRuntime, "docker backend: OCI runtime, e.g. runc or runsc (gVisor); empty: the daemon's default")
	fs.StringVar(&c.Python, "python", c.Python, "interpreter: a path or a name on PATH")
	fs.StringVar(&c.Memory, "memory", c.Memory, "memory limit (swap is 0), e.g. 256MiB")
	fs.Float64Var(&c.CPU, "cpu", c.CPU, "CPU quota in CPUs, e.g. 0.5")
	fs.StringVar(&c.Timeout, "timeout", c.Timeout, "wall-clock timeout, e.g. 30s")
	fs.IntVar(&c.Pids, "pids", c.Pids, "maximum processes and threads")
	fs.StringVar(&c.TmpfsSize, "tmpfs-size", c.TmpfsSize, "size of the writable /tmp (and of /dev/shm)")
	fs.StringVar(&c.MaxOutput, "max-output", c.MaxOutput, "output kept per stream (head and tail)")
	fs.IntVar(&c.UIDBase, "uid-base", c.UIDBase, "first host uid of the sandbox id range (root mode)")
	fs.IntVar(&c.UIDSlots, "uid-slots", c.UIDSlots, "number of 65536-id slots in the range")
	fs.StringVar(&c.CgroupParent, "cgroup-parent", c.CgroupParent, "cgroup for sandboxes, relative to the hierarchy root")
	fs.StringVar(&c.StateDir, "state-dir", c.StateDir, "directory for uid slot locks")
	fs.StringVar(&c.CacheDir, "cache-dir", c.CacheDir, "directory for cached interpreter descriptions")
	fs.IntVar(&c.SeccompErrno, "seccomp-errno", c.SeccompErrno, "errno returned by denied syscalls (conformance tests change it)")
	fs.StringVar(&c.Fallback, "fallback", c.Fallback, "restricted: run without kernel isolation when the backend is unavailable (not a sandbox); empty: refuse")
	fs.StringVar(&c.Policy, "policy", c.Policy, "static policy: strict, standard, allowlist or off")
	fs.Var((*listFlag)(&c.PolicyDenyModules), "policy-deny-modules", "comma-separated modules to deny on top of the profile")
	fs.Var((*listFlag)(&c.PolicyAllowModules), "policy-allow-modules", "comma-separated modules: the only ones allowed (allowlist), or taken off the profile's list")
	fs.Var((*listFlag)(&c.PolicyDenyCalls), "policy-deny-calls", "comma-separated builtins to deny on top of the profile")
	fs.StringVar(&c.MaxCodeSize, "max-code-size", c.MaxCodeSize, "largest code accepted")
	fs.IntVar(&c.MaxCodeLines, "max-code-lines", c.MaxCodeLines, "most lines of code accepted")
	fs.StringVar(&c.AuditDir, "audit-dir", c.AuditDir, "directory of the hash-chained audit log (serve: default /var/lib/pybox/audit as root; none: keep no log)")
	fs.BoolVar(&c.AuditKeepCode, "audit-keep-code", c.AuditKeepCode, "write the code itself into the audit log, not only its SHA-256")
	fs.StringVar(&c.AuditMaxFileSize, "audit-max-file-size", c.AuditMaxFileSize, "rotate the audit log's file past this size")
	fs.StringVar(&c.LogFormat, "log-format", c.LogFormat, "log format: json or text")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "log level: debug, info, warn or error")
	return cf
}

// listFlag is a comma-separated list; each use replaces the list.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error {
	*l = nil
	for _, x := range strings.Split(v, ",") {
		if x = strings.TrimSpace(x); x != "" {
			*l = append(*l, x)
		}
	}
	return nil
}

// addServerFlags binds the settings of the long-running commands.
func (cf *configFlags) addServerFlags(fs *flag.FlagSet) {
	c := &cf.cfg
	fs.StringVar(&c.Listen, "listen", c.Listen, "address to serve the HTTP API on")
	fs.IntVar(&c.MaxSessions, "max-sessions", c.MaxSessions, "maximum open sessions")
	fs.IntVar(&c.MaxConcurrent, "max-concurrent", c.MaxConcurrent, "maximum executions running at once")
	fs.StringVar(&c.QueueWait, "queue-wait", c.QueueWait, "how long a request waits for a free execution slot before 503")
	fs.IntVar(&c.WarmPool, "warm-pool", c.WarmPool, "sandboxes kept ready (0: none)")
	fs.StringVar(&c.WarmMode, "warm-mode", c.WarmMode, "how sandboxes are made: fork (from a fork server) or exec (a new interpreter each)")
	fs.StringVar(&c.WarmMaxAge, "warm-max-age", c.WarmMaxAge, "replace a ready sandbox after this long")
	fs.StringVar(&c.WarmIdle, "warm-idle", c.WarmIdle, "shrink the pool to one sandbox after this long without use")
	fs.StringVar(&c.SessionTTL, "session-ttl", c.SessionTTL, "idle time after which a session expires")
	fs.StringVar(&c.Grace, "grace", c.Grace, "time a cell has to stop after KeyboardInterrupt before its session is killed")
	fs.StringVar(&c.MaxMemory, "max-memory", c.MaxMemory, "highest memory limit a request may ask for")
	fs.StringVar(&c.MaxTimeout, "max-timeout", c.MaxTimeout, "highest timeout a request may ask for")
	fs.Float64Var(&c.MaxCPU, "max-cpu", c.MaxCPU, "highest CPU quota a request may ask for")
	fs.StringVar(&c.MaxFileSize, "max-file-size", c.MaxFileSize, "largest file accepted into or served from a workspace")
	fs.IntVar(&c.MaxFiles, "max-files", c.MaxFiles, "most entries a workspace may hold for uploads, and a listing returns")
	fs.Float64Var(&c.Rate, "rate", c.Rate, "requests per second per API key on /v1 routes (0: no limit)")
	fs.IntVar(&c.Burst, "burst", c.Burst, "burst of the per-key rate limit")
	fs.Float64Var(&c.SessionRate, "session-rate", c.SessionRate, "cells per second per session (0: no limit)")
	fs.IntVar(&c.SessionBurst, "session-burst", c.SessionBurst, "burst of the per-session rate limit")
	fs.IntVar(&c.MaxSessionsPerKey, "max-sessions-per-key", c.MaxSessionsPerKey, "live sessions one API key may hold (0: only --max-sessions)")
	fs.StringVar(&c.APIKeysFile, "api-keys-file", c.APIKeysFile, "JSON array of API keys (tenant, sha256, ...), on top of the config's api-keys")
	fs.BoolVar(&c.InsecureNoAuth, "insecure-no-auth", c.InsecureNoAuth, "serve without API keys (trusted hosts only; logged as a warning)")
}

// resolve applies the config file under the flags that were given.
func (cf *configFlags) resolve(fs *flag.FlagSet) (*config.Config, error) {
	if cf.file != "" {
		given := map[string]string{}
		fs.Visit(func(f *flag.Flag) { given[f.Name] = f.Value.String() })
		if err := cf.cfg.LoadFile(cf.file); err != nil {
			return nil, err
		}
		for name, v := range given {
			fs.Set(name, v) //nolint:errcheck // the value was accepted once already
		}
	}
	if err := cf.cfg.Validate(); err != nil {
		return nil, err
	}
	return &cf.cfg, nil
}

// parseFlags parses args with usage as the help text's head; ok is false
// when the command is over, with code its exit code (0 after -h).
func parseFlags(fs *flag.FlagSet, args []string, usage string, stderr io.Writer) (code int, ok bool) {
	fs.Usage = func() {
		fmt.Fprint(stderr, usage+"\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0, false
		}
		return exitUsage, false
	}
	return 0, true
}

// multiFlag collects a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func usageError(stderr io.Writer, err error) int {
	fmt.Fprintf(stderr, "pybox: %v\n", err)
	return exitUsage
}

var errNoCode = errors.New("nothing to run: give -c CODE, a FILE, or - for standard input")
