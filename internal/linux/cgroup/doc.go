// Package cgroup puts each sandbox in its own control group with memory
// (swap 0), pids and CPU limits, reads back peak memory, CPU time and OOM
// kills, and removes the group afterwards. It drives cgroup v2 and v1 (the
// hybrid hosts that still mount v1 controllers) behind one interface.
package cgroup
