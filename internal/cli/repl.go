package cli

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/pybox-dev/pybox/api"
	"github.com/pybox-dev/pybox/internal/sandbox"
	"github.com/pybox-dev/pybox/internal/session"
)

// cmdRepl runs an interactive session in the terminal: the same sandbox,
// driver and cell semantics as a server session.
func cmdRepl(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("repl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cf := addConfigFlags(fs)
	figures := fs.String("figures", "", "directory to save figures in (default: a new temporary directory)")
	if code, ok := parseFlags(fs, args, "Usage: pybox repl [flags]\n\nEach input is a cell; a compound statement ends with an empty line. Ctrl-D ends the session.", stderr); !ok {
		return code
	}
	cfg, err := cf.resolve(fs)
	if err != nil {
		return usageError(stderr, err)
	}
	limits, _ := cfg.Limits()
	b, err := newBackend(cfg, logger(false, stderr))
	if err != nil {
		fmt.Fprintf(stderr, "pybox: %v\n", err)
		return exitFailure
	}
	ctx := context.Background()
	conn, err := session.Dial(ctx, b.start(), limits, cfg.Python)
	if errors.Is(err, sandbox.ErrUnavailable) && b.fallback != nil {
		// The kernel refused the namespaces: the configured fallback
		// takes over, as for pybox run (and the policy becomes strict).
		if err = b.fallback(err); err == nil {
			conn, err = session.Dial(ctx, b.start(), limits, cfg.Python)
		}
	} else if errors.Is(err, sandbox.ErrUnavailable) {
		err = withFallbackHint(err)
	}
	if err != nil {
		fmt.Fprintf(stderr, "pybox: %v\n", err)
		return exitFailure
	}
	checker := runPolicy(cfg, b.Name())
	sess := session.New(conn, session.Options{})
	defer sess.Close("the repl ended")
	if b.restricted != nil {
		fmt.Fprintf(stdout, "Python %s under pybox's restricted backend: NO kernel isolation, rlimits and the strict policy only. Ctrl-D to quit.\n", conn.Python)
	} else {
		fmt.Fprintf(stdout, "Python %s in a pybox sandbox (%s). Ctrl-D to quit.\n", conn.Python, b.Name())
	}

	in := bufio.NewReader(stdin)
	for {
		code, ok := readCell(in, stdout)
		if !ok {
			fmt.Fprintln(stdout)
			return 0
		}
		if strings.TrimSpace(code) == "" {
			continue
		}
		if v := checker.Check([]byte(code)); !v.Allowed {
			for _, x := range v.Violations {
				fmt.Fprintf(stderr, "policy: line %d:%d: %s\n", x.Line, x.Col, x.Message)
			}
			continue
		}
		res, err := sess.Execute(ctx, code, 0, func(stream string, p []byte) {
			if stream == api.EventStderr {
				stderr.Write(p) //nolint:errcheck
			} else {
				stdout.Write(p) //nolint:errcheck
			}
		})
		if err != nil {
			fmt.Fprintf(stderr, "pybox: %v\n", err)
			return exitFailure
		}
		printCell(res, figures, stdout, stderr)
		if res.SessionEnded {
			return exitFailure
		}
	}
}

// readCell reads one input: a line, or, when the line opens a block or
// leaves a bracket open, every line up to an empty one.
func readCell(in *bufio.Reader, out io.Writer) (string, bool) {
	fmt.Fprint(out, ">>> ")
	var lines []string
	for {
		line, err := in.ReadString('\n')
		if err != nil && line == "" {
			if len(lines) > 0 {
				return strings.Join(lines, "\n"), true
			}
			return "", false
		}
		line = strings.TrimRight(line, "\r\n")
		if len(lines) > 0 && strings.TrimSpace(line) == "" {
			return strings.Join(lines, "\n"), true
		}
		lines = append(lines, line)
		if len(lines) == 1 && !continues(line) {
			return line, true
		}
		fmt.Fprint(out, "... ")
	}
}

// continues guesses, as the interactive interpreter would, whether a first
// line needs more: a block opener, a backslash, or an open bracket.
func continues(line string) bool {
	t := strings.TrimSpace(line)
	if strings.HasSuffix(t, ":") || strings.HasSuffix(t, "\\") || strings.HasPrefix(t, "@") {
		return true
	}
	depth := 0
	for _, r := range t {
		switch r {
		case '(', '[', '{':
			depth++
		case ')', ']', '}':
			depth--
		}
	}
	return depth > 0 || strings.Count(t, `"""`)%2 == 1 || strings.Count(t, `'''`)%2 == 1
}

func printCell(res *api.CellResult, figDir *string, stdout, stderr io.Writer) {
	if res.Stdout != "" && !strings.HasSuffix(res.Stdout, "\n") {
		fmt.Fprintln(stdout)
	}
	if v, ok := res.Value["text/plain"]; ok {
		fmt.Fprintln(stdout, v)
	}
	for i, d := range res.Display {
		if d.MIME != "image/png" {
			fmt.Fprintln(stdout, d.Data)
			continue
		}
		path, err := saveFigure(figDir, res.ExecutionCount, i, d.Data)
		if err != nil {
			fmt.Fprintf(stderr, "[figure not saved: %v]\n", err)
			continue
		}
		fmt.Fprintf(stdout, "[figure saved to %s]\n", path)
	}
	if res.Error != nil {
		fmt.Fprint(stderr, res.Error.Traceback)
	}
	if res.Status != api.StatusOK && res.Status != api.StatusError {
		fmt.Fprintf(stderr, "pybox: %s: %s\n", res.Status, res.Message)
	}
}

// saveFigure writes a PNG into *dir, made on first use if empty.
func saveFigure(dir *string, cell int64, i int, data string) (string, error) {
	png, err := base64.StdEncoding.DecodeString(data)
	if err != nil {
		return "", err
	}
	if *dir == "" {
		if *dir, err = os.MkdirTemp("", "pybox-figures-"); err != nil {
			return "", err
		}
	}
	path := filepath.Join(*dir, fmt.Sprintf("cell%d-figure%d.png", cell, i+1))
	return path, os.WriteFile(path, png, 0o644)
}
