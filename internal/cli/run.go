package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/pybox-dev/pybox/internal/backend/native"
	"github.com/pybox-dev/pybox/internal/config"
	"github.com/pybox-dev/pybox/internal/sandbox"
)

// processStart approximates when pybox started, for --debug timings.
var processStart = time.Now()

// maxCodeBytes bounds the source accepted by `run` (a script, not data:
// data goes in with --file).
const maxCodeBytes = 16 << 20

func cmdRun(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cf := addConfigFlags(fs)
	code := fs.String("c", "", "program passed in as a string")
	asJSON := fs.Bool("json", false, "print one JSON result object instead of streaming output")
	debug := fs.Bool("debug", false, "log what pybox does (and the init's step timings) to stderr")
	var files multiFlag
	fs.Var(&files, "file", "HOST:SANDBOX: place a host file read-only at an absolute sandbox path (repeatable)")
	if code, ok := parseFlags(fs, args, "Usage: pybox run [flags] (-c CODE | FILE | -) [ARGS...]", stderr); !ok {
		return code
	}
	cfg, err := cf.resolve(fs)
	if err != nil {
		return usageError(stderr, err)
	}
	limits, _ := cfg.Limits()
	spec := &sandbox.Spec{Python: cfg.Python, Limits: limits}

	rest := fs.Args()
	codeSet := false
	fs.Visit(func(f *flag.Flag) { codeSet = codeSet || f.Name == "c" })
	switch {
	case codeSet:
		spec.Code, spec.Args = []byte(*code), rest
	case len(rest) == 0:
		return usageError(stderr, errNoCode)
	case rest[0] == "-":
		if spec.Code, err = readLimited(stdin, "standard input"); err != nil {
			return usageError(stderr, err)
		}
		spec.Args = rest[1:]
	default:
		f, err := os.Open(rest[0])
		if err != nil {
			return usageError(stderr, fmt.Errorf("reading script: %w", err))
		}
		spec.Code, err = readLimited(f, rest[0])
		f.Close()
		if err != nil {
			return usageError(stderr, err)
		}
		spec.Filename = filepath.Base(rest[0])
		if !strings.HasSuffix(spec.Filename, ".py") {
			spec.Filename += ".py"
		}
		spec.Args = rest[1:]
	}
	for _, f := range files {
		host, box, ok := strings.Cut(f, ":")
		if !ok || host == "" || box == "" {
			return usageError(stderr, fmt.Errorf("--file %q: want HOST:SANDBOX, e.g. data.csv:/data/data.csv", f))
		}
		abs, err := filepath.Abs(host)
		if err != nil {
			return usageError(stderr, fmt.Errorf("--file %q: %w", f, err))
		}
		spec.Files = append(spec.Files, sandbox.File{HostPath: abs, SandboxPath: box})
	}
	if !*asJSON {
		spec.Stdout, spec.Stderr = stdout, stderr
	}

	log := logger(*debug, stderr)
	log.Debug("flags parsed", "us_since_start", time.Since(processStart).Microseconds())
	backend, err := newBackend(cfg, log)
	log.Debug("backend ready", "us_since_start", time.Since(processStart).Microseconds())
	if err != nil {
		fmt.Fprintf(stderr, "pybox: %v\n", err)
		return exitFailure
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := backend.Run(ctx, spec)
	if err != nil {
		fmt.Fprintf(stderr, "pybox: %v\n", err)
		if errors.Is(err, sandbox.ErrInvalidSpec) {
			return exitUsage
		}
		return exitFailure
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			return exitFailure
		}
		return 0
	}
	if res.Status != sandbox.StatusOK && res.Status != sandbox.StatusError {
		fmt.Fprintf(stderr, "pybox: %s: %s\n", res.Status, res.Message)
	}
	return res.ExitCode
}

func readLimited(r io.Reader, what string) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxCodeBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", what, err)
	}
	if len(data) > maxCodeBytes {
		return nil, fmt.Errorf("%s is larger than %d MiB; pass data with --file instead", what, maxCodeBytes>>20)
	}
	return data, nil
}

func logger(debug bool, w io.Writer) *slog.Logger {
	if !debug {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func newBackend(cfg *config.Config, log *slog.Logger) (*native.Backend, error) {
	return native.New(nativeConfig(cfg, log))
}

func nativeConfig(cfg *config.Config, log *slog.Logger) native.Config {
	return native.Config{
		Logger:       log,
		UIDBase:      cfg.UIDBase,
		UIDSlots:     cfg.UIDSlots,
		CgroupParent: cfg.CgroupParent,
		StateDir:     cfg.StateDir,
		CacheDir:     cfg.CacheDir,
		SeccompErrno: syscall.Errno(cfg.SeccompErrno),
	}
}
