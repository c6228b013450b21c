package cli

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/pybox-dev/pybox/internal/config"
	"github.com/pybox-dev/pybox/internal/doctor"
	"github.com/pybox-dev/pybox/internal/policy"
)

func cmdDoctor(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("doctor", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cf := addConfigFlags(fs)
	fs.StringVar(&cf.cfg.WarmMode, "warm-mode", cf.cfg.WarmMode, "how pybox serve makes warm sandboxes, to check: fork (from a fork server) or exec")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	cfg, err := cf.resolve(fs)
	if err != nil {
		return usageError(stderr, err)
	}
	lim, _ := cfg.Limits() // validated by resolve
	ctx := context.Background()
	log := logger(false, stderr)
	var checks []doctor.Check
	switch cfg.Backend {
	case "docker":
		checks = doctor.Docker(ctx, dockerConfig(cfg, log), lim)
	case "auto":
		nat := doctor.Run(ctx, nativeConfig(cfg, log), cfg.Python, lim, cfg.WarmMode)
		dock := doctor.Docker(ctx, dockerConfig(cfg, log), lim)
		choice := doctor.Choice(nat, dock)
		if doctor.OK(nat) {
			checks = append(nat, doctor.Demote(dock)...)
		} else {
			checks = append(doctor.Demote(nat), dock...)
		}
		checks = append(checks, choice)
	default:
		checks = doctor.Run(ctx, nativeConfig(cfg, log), cfg.Python, lim, cfg.WarmMode)
		if cfg.Backend == "native" {
			// Say whether docker would be there too, without failing on it.
			dock := doctor.Docker(ctx, dockerConfig(cfg, log), lim)
			checks = append(checks, doctor.Demote(dock[:1])...)
		}
	}
	checks = append(checks, frontChecks(cfg)...)
	doctor.Print(stdout, checks)
	if !doctor.OK(checks) {
		return 1
	}
	return 0
}

// frontChecks report the layers in front of the sandbox as configured.
func frontChecks(cfg *config.Config) []doctor.Check {
	rules := cfg.PolicyRules()
	detail := fmt.Sprintf("static policy %q checks code in pybox before any sandbox", rules.Profile)
	state := doctor.Active
	if rules.Profile == policy.Off {
		state, detail = doctor.Info, "--policy off: code is not checked before it runs (the sandbox still contains it)"
	}
	if cfg.Backend == "restricted" {
		state, detail = doctor.Active, "strict, forced by the restricted backend"
	}
	out := []doctor.Check{{Layer: "policy", State: state, Detail: detail}}
	switch {
	case cfg.Backend == "restricted":
		out = append(out, doctor.Check{Layer: "backend", State: doctor.Info, Detail: "restricted: NO kernel isolation (rlimits, a separate process and the strict policy only)"})
	case cfg.Fallback == "restricted":
		out = append(out, doctor.Check{Layer: "fallback", State: doctor.Info, Detail: "restricted, if the native backend is unavailable (not a sandbox)"})
	default:
		out = append(out, doctor.Check{Layer: "fallback", State: doctor.Info, Detail: "none: pybox refuses to run without kernel isolation"})
	}
	dir := cfg.AuditDir
	if dir == "" {
		dir = auditDirDefault()
	}
	if dir == "none" {
		out = append(out, doctor.Check{Layer: "audit log", State: doctor.Info, Detail: "--audit-dir none: executions are not recorded"})
	} else {
		out = append(out, doctor.Check{Layer: "audit log", State: doctor.Info, Detail: "pybox serve records every request in " + dir + " (pybox run only with --audit-dir)"})
	}
	return out
}
