// Package docker is the isolation backend that runs each sandbox as a
// Docker container, through the Docker Engine API (the official Go client;
// the socket from DOCKER_HOST or the default), never through the CLI.
//
// Every container is hardened beyond the origin document's list: no
// network, a read-only root, a size-limited tmpfs /tmp (nosuid, nodev,
// noexec), memory equal to memory+swap, a CPU quota, a pids limit, every
// capability dropped, no-new-privileges, a non-root user that is no host
// account, private IPC, UTS, pid and cgroup namespaces, Docker's init as pid
// 1, RLIMIT_CORE 0, Docker's default seccomp profile with pybox's denials
// added (seccomp.go), more /proc paths masked, and a configurable runtime
// (runc, or gVisor's runsc). Nothing a request carries reaches the image,
// working directory, mounts, environment names or labels.
//
// The container runs pybox's relay (relay.py), which starts the same
// embedded driver the native backend runs and multiplexes its control
// pipes and the user's output over the container's attached stdio: a cell
// is a frame written to an open connection, not a `docker exec`. Sandboxes
// are made ahead by the server's warm pool like native ones.
//
// Containers carry the label pybox.managed=true and their backend's
// instance and owner; a new backend removes the containers of owners that
// are gone (a pybox that was SIGKILLed).
package docker
