package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/pybox-dev/pybox/api"
	"github.com/pybox-dev/pybox/internal/config"
	"github.com/pybox-dev/pybox/internal/mcp"
	"github.com/pybox-dev/pybox/internal/server"
)

const mcpUsage = `Usage: pybox mcp [flags]

Serves pybox's tools (run_python, reset_session, list_files, read_file,
write_file) over the Model Context Protocol on standard input and output,
for desktop agents and IDEs. The sandboxes run in this process, with the
limits and policy (--policy, default strict) of pybox serve, and every
tool call goes in an audit log (default: audit-mcp next to serve's).
Logs go to standard error. pybox serve offers the same tools over HTTP
at /mcp.`

// mcpTenant is the tenant of a `pybox mcp` process's one client, as the
// audit log names it.
const mcpTenant = "mcp-stdio"

func cmdMCP(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("mcp", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cf := addConfigFlags(fs)
	c := &cf.cfg
	// A desktop client needs a sandbox or two, not a server's pool.
	c.WarmPool = 1
	fs.IntVar(&c.WarmPool, "warm-pool", c.WarmPool, "sandboxes kept ready (0: none)")
	fs.StringVar(&c.WarmMode, "warm-mode", c.WarmMode, "how sandboxes are made: fork (from a fork server) or exec (a new interpreter each)")
	fs.IntVar(&c.MaxSessions, "max-sessions", c.MaxSessions, "maximum open sessions")
	fs.StringVar(&c.SessionTTL, "session-ttl", c.SessionTTL, "idle time after which a session expires")
	fs.StringVar(&c.MaxFileSize, "max-file-size", c.MaxFileSize, "largest file accepted into or served from a workspace")
	if code, ok := parseFlags(fs, args, mcpUsage, stderr); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return usageError(stderr, fmt.Errorf("mcp takes no arguments (got %q)", fs.Args()))
	}
	cfg, err := cf.resolve(fs)
	if err != nil {
		return usageError(stderr, err)
	}
	if cfg.AuditDir == "" {
		// Not pybox serve's directory: each log has one writer, and both
		// may run on one host.
		cfg.AuditDir = filepath.Join(filepath.Dir(auditDirDefault()), "audit-mcp")
	}
	// The process's one client is one tenant, with a key that never
	// leaves the process: its tool calls go through the API's handler,
	// checked and recorded exactly as /v1 requests.
	key, sum := server.NewKey()
	cfg.APIKeys = append(cfg.APIKeys, config.APIKey{Tenant: mcpTenant, SHA256: sum})
	log := serverLogger(cfg, stderr)
	st, err := newStack(cfg, log)
	if err != nil {
		log.Error("starting", "err", err)
		return exitFailure
	}
	defer st.close()
	h := st.server.Handler()
	srv := mcp.NewServer(mcpOptions(st, cfg, log), mcp.LocalCaller(h, key))

	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer cancel()
	log.Info("serving MCP on stdio", "warm_pool", st.settings.WarmPool, "policy", cfg.Policy)
	err = srv.Run(ctx, &sdk.IOTransport{Reader: io.NopCloser(stdin), Writer: nopWriteCloser{stdout}})
	if err != nil && ctx.Err() == nil && !errors.Is(err, io.EOF) {
		log.Error("serving MCP", "err", err)
		return exitFailure
	}
	st.server.Drain()
	wctx, wcancel := context.WithTimeout(context.Background(), st.limits.Timeout+st.settings.Grace)
	defer wcancel()
	st.server.Wait(wctx) //nolint:errcheck // whatever still runs is torn down by close
	log.Info("stopped")
	return 0
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }

// mcpHandler is the MCP endpoint of pybox serve: the tools over the
// streamable HTTP transport, only for requests with a valid API key, each
// tool call made through h with that key.
func mcpHandler(st *stack, cfg *config.Config, log *slog.Logger) http.Handler {
	h := st.server.Handler()
	srv := mcp.NewServer(mcpOptions(st, cfg, log), mcp.HTTPCaller(h))
	return st.server.RequireKey(mcp.HTTPHandler(srv, st.settings.SessionTTL, st.server.TenantOf))
}

// withMCP serves /mcp with m and everything else with api. (Not a
// ServeMux: it would redirect unclean paths that the API answers 400.)
func withMCP(apiHandler, m http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/mcp" {
			m.ServeHTTP(w, r)
			return
		}
		apiHandler.ServeHTTP(w, r)
	})
}

// mcpOptions describes the sandbox to the model: limits, policy, and the
// interpreter's packages.
func mcpOptions(st *stack, cfg *config.Config, log *slog.Logger) mcp.Options {
	l := st.limits
	o := mcp.Options{
		Version: Version, Policy: cfg.Policy, SessionTTL: st.settings.SessionTTL, Logger: log,
		Limits: api.Effective{MemoryBytes: l.MemoryBytes, CPU: l.CPU, TimeoutMS: l.Timeout.Milliseconds(),
			Pids: l.Pids, TmpfsBytes: l.TmpfsBytes, MaxOutputBytes: l.MaxOutputBytes},
	}
	python := cfg.Python
	if st.backend != nil {
		if in, err := st.backend.Interpreter(context.Background(), cfg.Python); err == nil {
			python = in.Real
		}
	}
	if v, pkgs, err := probePackages(python); err != nil {
		log.Warn("could not list the interpreter's packages for the MCP tool descriptions", "python", python, "err", err)
	} else {
		o.Python, o.Packages = v, pkgs
	}
	return o
}

// probePackages asks the sandbox's interpreter, on the host, which of the
// packages agents commonly reach for it has. It runs a fixed script of
// ours with -I, as the backend's own interpreter discovery does.
func probePackages(python string) (version string, pkgs []string, err error) {
	const script = `
import importlib.util, importlib.metadata, json, sys
found = []
for mod, dist in [("numpy", "numpy"), ("pandas", "pandas"), ("matplotlib", "matplotlib"), ("scipy", "scipy"),
                  ("sklearn", "scikit-learn"), ("sympy", "sympy"), ("statsmodels", "statsmodels"), ("seaborn", "seaborn"),
                  ("PIL", "Pillow"), ("networkx", "networkx"), ("pyarrow", "pyarrow"), ("polars", "polars"),
                  ("openpyxl", "openpyxl"), ("bs4", "beautifulsoup4"), ("yaml", "PyYAML")]:
    if importlib.util.find_spec(mod) is None:
        continue
    try:
        found.append("%s %s" % (dist, importlib.metadata.version(dist)))
    except Exception:
        found.append(dist)
print(json.dumps({"python": "%d.%d.%d" % sys.version_info[:3], "packages": found}))
`
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, "-I", "-c", script)
	cmd.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin"}
	out, err := cmd.Output()
	if err != nil {
		return "", nil, err
	}
	var r struct {
		Python   string   `json:"python"`
		Packages []string `json:"packages"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		return "", nil, fmt.Errorf("reading the probe's answer: %w", err)
	}
	return r.Python, r.Packages, nil
}
