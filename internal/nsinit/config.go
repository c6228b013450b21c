// Package nsinit is the sandbox init: the pybox binary re-executed by the
// native backend inside fresh user, mount, pid, net, ipc and uts
// namespaces. It builds the new root, drops every privilege and execs the
// interpreter. It is the only Go code that runs inside the sandbox, and it
// is gone (replaced by execve) before any user code runs.
//
// The host sends one Config as JSON on fd 3 and reads reports from fd 4:
// "E <message>" if a setup step failed, "F <pid>" once the user's program
// is started. The init then becomes the reaper (package driver), which
// keeps the report pipe as its fd 3 and reports "X <wait status>" when the
// program ends.
package nsinit

// Name is argv[0] of the re-executed init.
const Name = "pybox-init"

// File descriptors of the init process.
const (
	ConfigFD = 3
	ReportFD = 4
	// FirstTreeFD is the first of the mount trees opened by the host (root
	// mode); Mount.TreeFD values are absolute fd numbers.
	FirstTreeFD = 5
)

// Config is everything the init needs; it carries no secrets.
type Config struct {
	// Mounts are read-only binds into the new root, in order.
	Mounts []Mount `json:"mounts"`
	// Inputs are the user's read-only input files (--file), bound once
	// /tmp and /dev are mounted so that they may land there.
	Inputs []Mount `json:"inputs"`
	// Symlinks are created in the new root (merged-/usr links, the
	// interpreter's symlink chain).
	Symlinks []Symlink `json:"symlinks"`
	// Files are written into the new root before it is made read-only
	// (the code, /etc/passwd, ...).
	Files []File `json:"files"`
	// Devices are the host device nodes bound into /dev.
	Devices []string `json:"devices"`
	// MaskedPaths are /proc entries hidden behind /dev/null or an empty
	// read-only tmpfs; ReadonlyPaths are /proc entries made read-only.
	MaskedPaths   []string `json:"masked_paths"`
	ReadonlyPaths []string `json:"readonly_paths"`
	// CodeMount gives /pybox its own tmpfs, which stays writable where the
	// root does not, so that a warm sandbox's driver can store the script
	// it is sent at /pybox/main.py, where multiprocessing's spawn start
	// method re-reads it. It is size-limited, noexec, the sandbox's own,
	// and Landlock lets the program write that one file only.
	CodeMount bool `json:"code_mount,omitempty"`
	// RootBytes sizes the root tmpfs (it holds only the skeleton and Files).
	RootBytes  int64  `json:"root_bytes"`
	TmpfsBytes int64  `json:"tmpfs_bytes"`
	Hostname   string `json:"hostname"`
	// BootID replaces the host's /proc/sys/kernel/random/boot_id.
	BootID  string   `json:"boot_id"`
	Rlimits []Rlimit `json:"rlimits"`
	// Exec and Argv start the reaper, which pid 1 becomes; ProgramArgv
	// starts the user's program. Both get Env, and Cwd as their directory.
	Exec        string   `json:"exec"`
	Argv        []string `json:"argv"`
	ProgramArgv []string `json:"program_argv"`
	// ProgramFDs are init descriptors handed to the program as its fds 3,
	// 4, ... (the driver's control pipes); the reaper never gets them.
	ProgramFDs []int `json:"program_fds,omitempty"`
	// ProgramUnconfined starts the program with the init's capabilities
	// in the sandbox's user namespace, without Landlock or seccomp: the
	// fork server, which confines each sandbox it makes before any user
	// code runs there, and runs none itself.
	ProgramUnconfined bool `json:"program_unconfined,omitempty"`
	// ReaperUID, when non-zero, is the uid and gid pid 1 switches to
	// before it execs the reaper: another user than the program's, so that
	// the program cannot signal it, open its memory or its report pipe,
	// even without Landlock (root mode maps a whole id range; rootless
	// mode has one id and leaves this 0).
	ReaperUID int      `json:"reaper_uid,omitempty"`
	Env       []string `json:"env"`
	Cwd       string   `json:"cwd"`
	// Landlock rules use paths inside the new root. Empty means Landlock
	// is not applied (the kernel lacks it); the host decides and reports.
	Landlock []LandlockRule `json:"landlock"`
	// Seccomp is the compiled filter, as (code, jt, jf, k) tuples.
	Seccomp []SockFilter `json:"seccomp"`
	// Trace makes the init report "T <µs since start> <step>" after each
	// step, for the benchmark's breakdown of setup time.
	Trace bool `json:"trace,omitempty"`
}

// Mount is one read-only bind. Either TreeFD (a detached mount tree opened
// by the host with open_tree) or Source (a path the init can reach) is set.
type Mount struct {
	TreeFD int    `json:"tree_fd,omitempty"`
	Source string `json:"source,omitempty"`
	Target string `json:"target"`
	File   bool   `json:"file"` // the target is a file, not a directory
}

// Symlink is a link at Path pointing to Target.
type Symlink struct {
	Path   string `json:"path"`
	Target string `json:"target"`
}

// File is a regular file created in the new root.
type File struct {
	Path string `json:"path"`
	Data []byte `json:"data"`
	Mode uint32 `json:"mode"`
}

// Rlimit is one resource limit (soft = hard).
type Rlimit struct {
	Resource int    `json:"resource"`
	Value    uint64 `json:"value"`
}

// LandlockRule grants Access beneath Path.
type LandlockRule struct {
	Path   string `json:"path"`
	Access uint64 `json:"access"`
}

// SockFilter is one BPF instruction.
type SockFilter struct {
	Code uint16 `json:"c"`
	Jt   uint8  `json:"t"`
	Jf   uint8  `json:"f"`
	K    uint32 `json:"k"`
}
