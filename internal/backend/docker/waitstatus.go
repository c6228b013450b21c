package docker

import "strconv"

// waitStatus is a wait(2) status as the relay reports it, in Linux's
// encoding whatever the client's OS (the sandbox is always Linux).
type waitStatus int

// sigKILL ends a container pybox kills.
const sigKILL = 9

func (w waitStatus) Exited() bool    { return w&0x7f == 0 }
func (w waitStatus) ExitStatus() int { return int(w>>8) & 0xff }
func (w waitStatus) Signaled() bool  { return w&0x7f != 0 && w&0x7f != 0x7f }
func (w waitStatus) Signal() int     { return int(w & 0x7f) }

var signalNames = map[int]string{
	1: "SIGHUP", 2: "SIGINT", 3: "SIGQUIT", 4: "SIGILL", 5: "SIGTRAP", 6: "SIGABRT", 7: "SIGBUS", 8: "SIGFPE",
	9: "SIGKILL", 10: "SIGUSR1", 11: "SIGSEGV", 12: "SIGUSR2", 13: "SIGPIPE", 14: "SIGALRM", 15: "SIGTERM",
	16: "SIGSTKFLT", 17: "SIGCHLD", 18: "SIGCONT", 19: "SIGSTOP", 20: "SIGTSTP", 21: "SIGTTIN", 22: "SIGTTOU",
	23: "SIGURG", 24: "SIGXCPU", 25: "SIGXFSZ", 26: "SIGVTALRM", 27: "SIGPROF", 28: "SIGWINCH", 29: "SIGIO",
	30: "SIGPWR", 31: "SIGSYS",
}

func (w waitStatus) signalName() string {
	if n, ok := signalNames[w.Signal()]; ok {
		return n
	}
	return "signal " + strconv.Itoa(w.Signal())
}
