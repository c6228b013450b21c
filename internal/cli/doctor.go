package cli

import (
	"context"
	"flag"
	"io"

	"github.com/pybox-dev/pybox/internal/doctor"
)

func cmdDoctor(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("doctor", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cf := addConfigFlags(fs)
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	cfg, err := cf.resolve(fs)
	if err != nil {
		return usageError(stderr, err)
	}
	lim, _ := cfg.Limits() // validated by resolve
	checks := doctor.Run(context.Background(), nativeConfig(cfg, logger(false, stderr)), cfg.Python, lim)
	doctor.Print(stdout, checks)
	if !doctor.OK(checks) {
		return 1
	}
	return 0
}
