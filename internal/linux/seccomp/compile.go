//go:build linux

package seccomp

import (
	"fmt"
	"strings"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// seccomp_data layout: nr at 0, arch at 4, then six 64-bit args from 16.
const (
	offNr   = 0
	offArch = 4
	offArgs = 16
)

// maxRun bounds a run of rules sharing one "ret ALLOW": a conditional
// jump reaches at most 255 instructions ahead.
const maxRun = 250

// x32Bit marks syscalls of the x32 ABI on x86_64. They share the x86_64
// audit arch, so the arch check alone does not stop them.
const x32Bit = 0x40000000

// Program is a compiled filter.
type Program struct {
	Arch         *Arch
	Instructions []bpf.Instruction
	// comments annotate instructions for Dump (syscall names).
	comments map[int]string
}

// Compile turns rules into a BPF program for a. Calls that no rule allows
// fail with denyErrno. A foreign architecture (an i386 int 0x80 call from
// an x86_64 process) kills the process: its syscall numbers mean other
// things, so no answer is safe. Rules naming syscalls that a does not have
// (open on arm64) are skipped.
func Compile(rules []Rule, a *Arch, denyErrno unix.Errno) (*Program, error) {
	if denyErrno == 0 || denyErrno > 4095 {
		return nil, fmt.Errorf("deny errno %d out of range", denyErrno)
	}
	deny := bpf.RetConstant{Val: unix.SECCOMP_RET_ERRNO | uint32(denyErrno)}
	allow := bpf.RetConstant{Val: unix.SECCOMP_RET_ALLOW}
	p := &Program{Arch: a, comments: map[int]string{}}
	emit := func(ins ...bpf.Instruction) { p.Instructions = append(p.Instructions, ins...) }

	emit(
		bpf.LoadAbsolute{Off: offArch, Size: 4},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: a.AuditArch, SkipTrue: 1},
		bpf.RetConstant{Val: unix.SECCOMP_RET_KILL_PROCESS},
		bpf.LoadAbsolute{Off: offNr, Size: 4},
	)
	if a == X86_64 {
		emit(bpf.JumpIf{Cond: bpf.JumpGreaterOrEqual, Val: x32Bit, SkipFalse: 1}, deny)
	}
	// Runs of unconditional rules share one "ret ALLOW": each is a single
	// jeq jumping forward to it, which halves the program (and the cost of
	// loading it) compared with a return after every comparison.
	var run []int
	flush := func() {
		if len(run) == 0 {
			return
		}
		k := len(run)
		for i, nr := range run {
			emit(bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(nr), SkipTrue: uint8(k - i)})
		}
		emit(bpf.Jump{Skip: 1}, allow)
		run = run[:0]
	}
	seen := map[string]bool{}
	for _, r := range rules {
		if seen[r.Name] {
			return nil, fmt.Errorf("syscall %s listed twice", r.Name)
		}
		seen[r.Name] = true
		nr, ok := a.Lookup(r.Name)
		if !ok {
			continue
		}
		if r.Errno == 0 && r.Op == OpNone && !r.Noop {
			if len(run) == maxRun {
				flush()
			}
			p.comments[len(p.Instructions)+len(run)] = r.Name
			run = append(run, nr)
			continue
		}
		flush()
		p.comments[len(p.Instructions)] = r.Name
		if r.Errno != 0 || r.Noop {
			// SECCOMP_RET_ERRNO with 0 returns success without running the call.
			emit(bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(nr), SkipFalse: 1},
				bpf.RetConstant{Val: unix.SECCOMP_RET_ERRNO | uint32(r.Errno)})
			continue
		}
		if r.Arg < 0 || r.Arg > 5 {
			return nil, fmt.Errorf("%s: argument index %d out of range", r.Name, r.Arg)
		}
		// The block after the syscall-number check always returns, so the
		// accumulator (clobbered by the argument load) is never reused.
		var block []bpf.Instruction
		block = append(block, bpf.LoadAbsolute{Off: offArgs + 8*uint32(r.Arg), Size: 4}) // low half (little endian)
		switch r.Op {
		case OpMaskClear:
			block = append(block, bpf.JumpIf{Cond: bpf.JumpBitsSet, Val: r.Mask, SkipTrue: 1}, allow, deny)
		case OpIn, OpNotIn:
			if len(r.Values) == 0 || len(r.Values) > 200 {
				return nil, fmt.Errorf("%s: need 1 to 200 values", r.Name)
			}
			n := len(r.Values)
			for i, v := range r.Values {
				block = append(block, bpf.JumpIf{Cond: bpf.JumpEqual, Val: v, SkipTrue: uint8(n - i)})
			}
			if r.Op == OpIn {
				block = append(block, deny, allow)
			} else {
				block = append(block, allow, deny)
			}
		default:
			return nil, fmt.Errorf("%s: unknown op %d", r.Name, r.Op)
		}
		emit(bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(nr), SkipFalse: uint8(len(block))})
		emit(block...)
	}
	flush()
	emit(deny)
	if len(p.Instructions) > unix.BPF_MAXINSNS {
		return nil, fmt.Errorf("filter has %d instructions, more than the kernel's %d", len(p.Instructions), unix.BPF_MAXINSNS)
	}
	return p, nil
}

// Assemble returns the program in the kernel's format.
func (p *Program) Assemble() ([]unix.SockFilter, error) {
	raw, err := bpf.Assemble(p.Instructions)
	if err != nil {
		return nil, fmt.Errorf("assembling seccomp filter: %w", err)
	}
	out := make([]unix.SockFilter, len(raw))
	for i, r := range raw {
		out[i] = unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
	}
	return out, nil
}

// Dump renders the program one instruction per line, annotated with
// syscall names; the golden files are its output.
func (p *Program) Dump() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# seccomp filter for %s: %d instructions\n", p.Arch.Name, len(p.Instructions))
	for i, ins := range p.Instructions {
		line := fmt.Sprintf("%4d: %v", i, ins)
		if c, ok := p.comments[i]; ok {
			line = fmt.Sprintf("%-48s ; %s", line, c)
		}
		b.WriteString(line + "\n")
	}
	return b.String()
}
