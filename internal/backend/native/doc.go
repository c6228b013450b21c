// Package native is the Linux isolation backend (host side). For each run
// it takes a uid slot, creates a cgroup, opens the read-only mount trees
// the sandbox needs, and starts the pybox binary again as the sandbox init
// (package nsinit) in fresh user, pid, mount, net, ipc and uts namespaces;
// then it enforces the deadline, drains and caps the output, and reads the
// accounting back before removing every trace of the run.
package native
