//go:build linux

package seccomp

import "golang.org/x/sys/unix"

// Op is how a rule inspects one argument. Every comparison uses the low 32
// bits of the argument, as the kernel does for int and unsigned int
// parameters (ioctl requests, clone flags, socket families, prctl options):
// a filter that compared all 64 bits could be sidestepped by setting high
// bits that the kernel then ignores (the TIOCSTI bypass of CVE-2019-10063
// class).
type Op int

const (
	// OpNone allows the syscall unconditionally.
	OpNone Op = iota
	// OpMaskClear allows the call when none of Mask's bits are set.
	OpMaskClear
	// OpIn allows the call when the argument is one of Values.
	OpIn
	// OpNotIn allows the call unless the argument is one of Values.
	OpNotIn
)

// Rule is one entry of the allowlist.
type Rule struct {
	Name string
	// Errno, when non-zero, makes the call fail with this errno instead of
	// being allowed (used for clone3, so that libc falls back to clone,
	// whose flags a classic BPF filter can inspect).
	Errno unix.Errno
	// Noop makes the call succeed (return 0) without reaching the kernel.
	Noop   bool
	Op     Op
	Arg    int // argument index for Op
	Mask   uint32
	Values []uint32
	// Why says why the rule exists when it is not an ordinary syscall.
	Why string
}

// nsFlags are the clone flags that create namespaces. A sandboxed process
// may create threads and processes, but no new namespace: that is where
// most container-escape bugs in the kernel live.
const nsFlags = unix.CLONE_NEWNS | unix.CLONE_NEWCGROUP | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC |
	unix.CLONE_NEWUSER | unix.CLONE_NEWPID | unix.CLONE_NEWNET

// allowedPrctl are the prctl options CPython, glibc, numpy and friends use.
// Everything else (PR_SET_MM, PR_SET_PTRACER, PR_SET_SECCOMP, ...) is denied.
var allowedPrctl = []uint32{
	unix.PR_SET_NAME, unix.PR_GET_NAME, unix.PR_SET_PDEATHSIG, unix.PR_GET_PDEATHSIG,
	unix.PR_GET_DUMPABLE, unix.PR_SET_DUMPABLE, unix.PR_GET_NO_NEW_PRIVS, unix.PR_SET_NO_NEW_PRIVS,
	unix.PR_CAPBSET_READ, unix.PR_GET_SECCOMP, unix.PR_GET_TIMERSLACK, unix.PR_SET_TIMERSLACK,
	unix.PR_GET_THP_DISABLE, unix.PR_SET_THP_DISABLE, unix.PR_GET_CHILD_SUBREAPER, unix.PR_SET_CHILD_SUBREAPER,
	unix.PR_SET_VMA, unix.PR_GET_KEEPCAPS, unix.PR_CAP_AMBIENT, unix.PR_GET_SECUREBITS,
}

// Profile is the allowlist. Order matters for speed only: the filter is a
// linear chain, so the hottest syscalls come first. It was derived by
// tracing real workloads (CPython's startup, threads, asyncio,
// multiprocessing, subprocess, sqlite3, numpy, pandas, matplotlib) and is
// checked against them by the compatibility suite on every change.
var Profile = []Rule{
	// Hot path.
	{Name: "read"}, {Name: "write"}, {Name: "futex"}, {Name: "mmap"}, {Name: "munmap"},
	{Name: "newfstatat"}, {Name: "fstat"}, {Name: "close"}, {Name: "openat"}, {Name: "lseek"},
	{Name: "getdents64"}, {Name: "brk"}, {Name: "mprotect"}, {Name: "rt_sigaction"},
	{Name: "rt_sigprocmask"}, {Name: "rt_sigreturn"}, {Name: "ioctl", Op: OpNotIn, Arg: 1,
		Values: []uint32{unix.TIOCSTI, unix.TIOCLINUX},
		Why:    "TIOCSTI pushes input into a terminal another process reads; TIOCLINUX can do the same on a console"},
	{Name: "fcntl"}, {Name: "readlink"}, {Name: "pread64"}, {Name: "pwrite64"},
	{Name: "getpid"}, {Name: "gettid"}, {Name: "clock_gettime"}, {Name: "madvise"},
	{Name: "poll"}, {Name: "ppoll"}, {Name: "select"}, {Name: "pselect6"},
	{Name: "epoll_create"}, {Name: "epoll_create1"}, {Name: "epoll_ctl"}, {Name: "epoll_wait"},
	{Name: "epoll_pwait"}, {Name: "epoll_pwait2"},

	// Processes and threads.
	{Name: "clone", Op: OpMaskClear, Arg: 0, Mask: nsFlags,
		Why: "threads and processes, but no new namespaces"},
	{Name: "clone3", Errno: unix.ENOSYS,
		Why: "clone3 passes its flags in memory, which BPF cannot read; ENOSYS makes libc fall back to clone"},
	{Name: "fork"}, {Name: "vfork"}, {Name: "execve"}, {Name: "execveat"},
	{Name: "exit"}, {Name: "exit_group"}, {Name: "wait4"}, {Name: "waitid"},
	{Name: "kill"}, {Name: "tkill"}, {Name: "tgkill"}, {Name: "getppid"},
	{Name: "getpgid"}, {Name: "setpgid"}, {Name: "getpgrp"}, {Name: "getsid"}, {Name: "setsid"},
	{Name: "set_tid_address"}, {Name: "set_robust_list"}, {Name: "get_robust_list"}, {Name: "rseq"},
	{Name: "arch_prctl"}, {Name: "prctl", Op: OpIn, Arg: 0, Values: allowedPrctl},
	{Name: "prlimit64"}, {Name: "getrlimit"}, {Name: "setrlimit"}, {Name: "getrusage"}, {Name: "times"},
	{Name: "getpriority"}, {Name: "setpriority"}, {Name: "sched_yield"},
	{Name: "sched_getaffinity"}, {Name: "sched_setaffinity"}, {Name: "sched_getparam"},
	{Name: "sched_setparam"}, {Name: "sched_getscheduler"}, {Name: "sched_setscheduler"},
	{Name: "sched_get_priority_max"}, {Name: "sched_get_priority_min"},
	{Name: "sched_rr_get_interval"}, {Name: "sched_getattr"}, {Name: "sched_setattr"},
	{Name: "pidfd_open"}, {Name: "pidfd_send_signal"}, {Name: "getcpu"},
	{Name: "ioprio_get"}, {Name: "ioprio_set"}, {Name: "capget"},
	{Name: "personality", Op: OpIn, Arg: 0, Values: []uint32{0, 0xffffffff},
		Why: "query only; other personalities re-enable legacy address-space layouts"},

	// Identity: allowed so that setuid and friends fail as on an ordinary
	// system (EPERM from the kernel: the sandbox has no capabilities).
	{Name: "getuid"}, {Name: "geteuid"}, {Name: "getgid"}, {Name: "getegid"},
	{Name: "getgroups"}, {Name: "setgroups"}, {Name: "setuid"}, {Name: "setgid"},
	{Name: "setreuid"}, {Name: "setregid"}, {Name: "setresuid"}, {Name: "setresgid"},
	{Name: "getresuid"}, {Name: "getresgid"}, {Name: "setfsuid"}, {Name: "setfsgid"},

	// Files. Writes are confined by the read-only mounts and Landlock.
	{Name: "readv"}, {Name: "writev"}, {Name: "preadv"}, {Name: "pwritev"},
	{Name: "preadv2"}, {Name: "pwritev2"}, {Name: "open"}, {Name: "creat"}, {Name: "close_range"},
	{Name: "stat"}, {Name: "lstat"}, {Name: "statx"}, {Name: "fstatfs"}, {Name: "statfs"},
	{Name: "access"}, {Name: "faccessat"}, {Name: "faccessat2"}, {Name: "readlinkat"},
	{Name: "getdents"}, {Name: "mkdir"}, {Name: "mkdirat"}, {Name: "rmdir"},
	{Name: "unlink"}, {Name: "unlinkat"}, {Name: "rename"}, {Name: "renameat"}, {Name: "renameat2"},
	{Name: "link"}, {Name: "linkat"}, {Name: "symlink"}, {Name: "symlinkat"},
	{Name: "chmod"}, {Name: "fchmod"}, {Name: "fchmodat"}, {Name: "fchmodat2"},
	{Name: "chown"}, {Name: "fchown"}, {Name: "lchown"}, {Name: "fchownat"},
	{Name: "truncate"}, {Name: "ftruncate"}, {Name: "fsync"}, {Name: "fdatasync"},
	{Name: "sync", Noop: true, Why: "sync() flushes every filesystem of the host: a noisy-neighbour lever; the sandbox's own files are on tmpfs"},
	{Name: "syncfs", Noop: true, Why: "as sync, for the filesystem of a descriptor (the host's, for a bound file)"},
	{Name: "sync_file_range"}, {Name: "fallocate"},
	{Name: "fadvise64"}, {Name: "readahead"}, {Name: "utime"}, {Name: "utimes"},
	{Name: "utimensat"}, {Name: "futimesat"}, {Name: "getcwd"}, {Name: "chdir"}, {Name: "fchdir"},
	{Name: "umask"}, {Name: "dup"}, {Name: "dup2"}, {Name: "dup3"}, {Name: "flock"},
	{Name: "pipe"}, {Name: "pipe2"}, {Name: "sendfile"}, {Name: "copy_file_range"},
	{Name: "splice"}, {Name: "tee"}, {Name: "mknod"}, {Name: "mknodat"},
	{Name: "getxattr"}, {Name: "lgetxattr"}, {Name: "fgetxattr"},
	{Name: "listxattr"}, {Name: "llistxattr"}, {Name: "flistxattr"},
	// Not allowed: inotify_* (the interpreter and libraries are the host's
	// own files, bound read-only, so a watch would show other tenants' and
	// the host's file activity as it happens) and memfd_create (a memfd is
	// the one writable file that no noexec mount or Landlock rule covers:
	// "write an ELF, execve /proc/self/fd/N" would start any program).
	{Name: "eventfd"}, {Name: "eventfd2"},
	{Name: "timerfd_create"}, {Name: "timerfd_settime"}, {Name: "timerfd_gettime"},
	{Name: "signalfd"}, {Name: "signalfd4"},

	// Memory.
	{Name: "mremap"}, {Name: "msync"}, {Name: "mincore"}, {Name: "mlock"}, {Name: "munlock"},
	{Name: "mlock2"}, {Name: "mlockall"}, {Name: "munlockall"}, {Name: "mbind"},
	{Name: "get_mempolicy"}, {Name: "set_mempolicy"}, {Name: "membarrier"},
	{Name: "pkey_alloc"}, {Name: "pkey_free"}, {Name: "pkey_mprotect"},

	// Time and signals.
	{Name: "clock_getres"}, {Name: "clock_nanosleep"}, {Name: "nanosleep"},
	{Name: "gettimeofday"}, {Name: "time"}, {Name: "alarm"}, {Name: "getitimer"}, {Name: "setitimer"},
	{Name: "timer_create"}, {Name: "timer_settime"}, {Name: "timer_gettime"},
	{Name: "timer_getoverrun"}, {Name: "timer_delete"},
	{Name: "rt_sigsuspend"}, {Name: "rt_sigpending"}, {Name: "rt_sigtimedwait"},
	{Name: "rt_sigqueueinfo"}, {Name: "rt_tgsigqueueinfo"}, {Name: "sigaltstack"},
	{Name: "pause"}, {Name: "restart_syscall"}, {Name: "futex_waitv"},

	// Sockets: only AF_UNIX can be created, so the rest only ever touches
	// local socket pairs (asyncio, multiprocessing).
	{Name: "socket", Op: OpIn, Arg: 0, Values: []uint32{unix.AF_UNIX},
		Why: "no network family; netlink, packet, vsock and friends are kernel attack surface"},
	{Name: "socketpair", Op: OpIn, Arg: 0, Values: []uint32{unix.AF_UNIX}},
	{Name: "bind"}, {Name: "connect"}, {Name: "listen"}, {Name: "accept"}, {Name: "accept4"},
	{Name: "getsockname"}, {Name: "getpeername"}, {Name: "sendto"}, {Name: "recvfrom"},
	{Name: "sendmsg"}, {Name: "recvmsg"}, {Name: "sendmmsg"}, {Name: "recvmmsg"},
	{Name: "shutdown"}, {Name: "setsockopt"}, {Name: "getsockopt"},

	// System V IPC lives in the sandbox's own IPC namespace.
	{Name: "shmget"}, {Name: "shmat"}, {Name: "shmdt"}, {Name: "shmctl"},
	{Name: "semget"}, {Name: "semop"}, {Name: "semtimedop"}, {Name: "semctl"},
	{Name: "msgget"}, {Name: "msgsnd"}, {Name: "msgrcv"}, {Name: "msgctl"},

	// Information about the (namespaced) system.
	{Name: "uname"}, {Name: "sysinfo"}, {Name: "getrandom"},
}
