// Package restricted is the explicit fallback backend: it runs the code in
// a separate Python process under rlimits, a wall-clock timeout and output
// caps, in a private temporary directory, with a clean environment, as an
// unprivileged uid when pybox runs as root. pybox uses it only when the
// configuration names it; every Result says what it is.
//
// IT IS NOT A SANDBOX. There are no namespaces, no seccomp filter, no
// Landlock and no cgroups: the kernel treats the program as any other
// process of its uid. Use the native or docker backend for untrusted code.
// What it does NOT protect against, among other things:
//
//   - the network: the program can connect anywhere the host can,
//     including services on localhost and cloud metadata endpoints;
//   - reading the host's files: everything its uid may read (/etc, home
//     directories with open permissions, other programs' world-readable
//     files, /proc of every process it may see); when pybox does not run
//     as root, that uid is pybox's own, with all its files and secrets;
//   - writing: anywhere its uid may write (world-writable /tmp, /dev/shm,
//     and, when not root, everything pybox's user owns), with no bound on
//     the total size (RLIMIT_FSIZE bounds one file, not how many);
//   - other processes of the same uid: it may signal and, where Yama
//     allows, ptrace them; concurrent restricted executions share the uid
//     (default nobody) and may read each other's directories and kill each
//     other, and when not root it may signal pybox itself;
//   - escaping the kill: the timeout kills the process group, so a process
//     that moves to a new session or group (setsid) survives it, still
//     bounded by its own RLIMIT_CPU;
//   - memory: RLIMIT_DATA bounds each process's heap, not the tree's, and
//     file-backed or shared memory is not counted;
//   - processes: RLIMIT_NPROC counts every process of the uid (see
//     rlimits), and is not applied when the program runs as pybox's uid;
//   - the kernel: every system call is open, so a kernel bug is a host
//     compromise;
//   - information: the host name, other processes, mounts and the kernel
//     are all visible.
//
// The static policy (forced to strict by the configuration when this
// backend is chosen) is the only other layer, and it is a filter for
// honest mistakes, not a boundary.
//
// The rlimits are set in the child by re-executing the pybox binary as
// package rlimitexec's helper (reexec mode rlimitexec.Name, registered by
// this package's init); a binary that uses this backend must call
// reexec.Init first thing in main (and TestMain).
package restricted
