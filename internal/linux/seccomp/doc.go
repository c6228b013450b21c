// Package seccomp holds pybox's syscall allowlist as data, compiles it to a
// classic BPF program with an architecture check, and installs it on the
// calling thread. The filter is default-deny: a syscall that is not listed
// fails with an errno (never SIGSYS), so ordinary code that probes for a
// feature degrades instead of dying. It is Linux-only; elsewhere the package
// is empty.
package seccomp
