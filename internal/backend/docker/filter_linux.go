package docker

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"syscall"

	"github.com/pybox-dev/pybox/internal/linux/seccomp"
)

// innerFilter compiles the native backend's seccomp allowlist (package
// seccomp: default deny, arguments checked, errno for denials, a foreign
// ABI killed) for the daemon's architecture, as the relay's argument: the
// relay installs it on the driver before exec, under the container's own
// (Docker-format) profile. Stacked filters answer with the most restrictive
// verdict, so a call passes only if both allow it; where both deny, the
// inner one's errno is the answer. This gives docker sandboxes native's
// exact system-call policy, which Docker's profile format cannot express
// (an allowlist of prctl options, ioctl requests checked on their low 32
// bits, calls newer than the daemon's libseccomp knows by name).
func innerFilter(daemonArch string, errno syscall.Errno) (string, error) {
	var a *seccomp.Arch
	switch daemonArch {
	case "x86_64", "amd64":
		a = seccomp.X86_64
	case "aarch64", "arm64":
		a = seccomp.AARCH64
	default:
		return "", fmt.Errorf("no syscall table for the daemon's architecture %q", daemonArch)
	}
	prog, err := seccomp.Compile(seccomp.Profile, a, errno)
	if err != nil {
		return "", err
	}
	raw, err := prog.Assemble()
	if err != nil {
		return "", err
	}
	buf := make([]byte, 0, 8*len(raw))
	for _, f := range raw {
		// struct sock_filter, little-endian as both architectures are.
		buf = binary.LittleEndian.AppendUint16(buf, f.Code)
		buf = append(buf, f.Jt, f.Jf)
		buf = binary.LittleEndian.AppendUint32(buf, f.K)
	}
	return base64.StdEncoding.EncodeToString(buf), nil
}
