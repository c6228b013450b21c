// Package config is pybox's one configuration: defaults, an optional JSON
// file whose keys are the flag names, then flags, checked by Validate.
package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/pybox-dev/pybox/internal/policy"
	"github.com/pybox-dev/pybox/internal/sandbox"
)

// Config holds every setting. Sizes are strings such as "256MiB" so that
// the file reads like the command line.
type Config struct {
	// Backend is the isolation backend: "native" (the default on Linux),
	// "docker" (containers through the Docker Engine API), "auto" (native
	// where it works, else docker) or "restricted" (not a sandbox).
	Backend string `json:"backend"`
	// DockerImage is the docker backend's base image (anything with
	// python3; `pybox image build` makes one), DockerRuntime its OCI
	// runtime ("" the daemon's default, runc, or runsc for gVisor).
	DockerImage   string `json:"docker-image"`
	DockerRuntime string `json:"docker-runtime"`
	// Python is the interpreter: a path or a name on PATH.
	Python    string  `json:"python"`
	Memory    string  `json:"memory"`
	CPU       float64 `json:"cpu"`
	Timeout   string  `json:"timeout"`
	Pids      int     `json:"pids"`
	TmpfsSize string  `json:"tmpfs-size"`
	MaxOutput string  `json:"max-output"`
	// UIDBase and UIDSlots: the host id range for sandboxes in root mode.
	UIDBase  int `json:"uid-base"`
	UIDSlots int `json:"uid-slots"`
	// CgroupParent is where sandbox cgroups go, relative to the hierarchy
	// root; empty means "<pybox's own group>/pybox".
	CgroupParent string `json:"cgroup-parent"`
	StateDir     string `json:"state-dir"`
	CacheDir     string `json:"cache-dir"`
	// SeccompErrno is what denied syscalls return. Conformance tests set a
	// value no kernel path returns, to tell "blocked by the filter" from
	// "reached the kernel and failed"; users keep EPERM (1).
	SeccompErrno int `json:"seccomp-errno"`

	// The server (pybox serve).
	Listen        string `json:"listen"`
	MaxSessions   int    `json:"max-sessions"`
	MaxConcurrent int    `json:"max-concurrent"`
	QueueWait     string `json:"queue-wait"`
	// WarmPool sandboxes with the default limits are kept ready; they are
	// replaced after WarmMaxAge, and after WarmIdle without use the pool
	// shrinks to one.
	WarmPool int `json:"warm-pool"`
	// WarmMode is how warm sandboxes are made: "fork" (forked by a fork
	// server: milliseconds of CPU each) or "exec" (each starts its own
	// interpreter).
	WarmMode   string `json:"warm-mode"`
	WarmMaxAge string `json:"warm-max-age"`
	WarmIdle   string `json:"warm-idle"`
	SessionTTL string `json:"session-ttl"`
	// Grace is how long a cell has to stop after KeyboardInterrupt.
	Grace string `json:"grace"`
	// The maxima a request may ask for.
	MaxMemory   string  `json:"max-memory"`
	MaxTimeout  string  `json:"max-timeout"`
	MaxCPU      float64 `json:"max-cpu"`
	MaxFileSize string  `json:"max-file-size"`
	MaxFiles    int     `json:"max-files"`

	// The layers in front of the sandbox.
	//
	// Policy is the static policy profile: strict, standard, allowlist or
	// off; the lists adjust it (see package policy).
	Policy             string   `json:"policy"`
	PolicyDenyModules  []string `json:"policy-deny-modules"`
	PolicyAllowModules []string `json:"policy-allow-modules"`
	PolicyDenyCalls    []string `json:"policy-deny-calls"`
	// Fallback "restricted" lets pybox run without kernel isolation when
	// the configured backend is unavailable; "" refuses to run instead.
	Fallback string `json:"fallback"`
	// Request limits.
	MaxCodeSize       string  `json:"max-code-size"`
	MaxCodeLines      int     `json:"max-code-lines"`
	Rate              float64 `json:"rate"`
	Burst             int     `json:"burst"`
	SessionRate       float64 `json:"session-rate"`
	SessionBurst      int     `json:"session-burst"`
	MaxSessionsPerKey int     `json:"max-sessions-per-key"`
	// APIKeys are the keys pybox serve accepts (hashed), from the config
	// file and APIKeysFile. InsecureNoAuth serves without keys.
	APIKeys        []APIKey `json:"api-keys"`
	APIKeysFile    string   `json:"api-keys-file"`
	InsecureNoAuth bool     `json:"insecure-no-auth"`
	// AuditDir holds the audit log ("none": keep none, pybox serve
	// only); AuditKeepCode writes the code itself, not only its hash.
	AuditDir         string `json:"audit-dir"`
	AuditKeepCode    bool   `json:"audit-keep-code"`
	AuditMaxFileSize string `json:"audit-max-file-size"`
	// LogFormat is json or text; LogLevel debug, info, warn or error.
	LogFormat string `json:"log-format"`
	LogLevel  string `json:"log-level"`
}

// APIKey is one tenant's key, stored as its SHA-256 (pybox key new).
// Zero limits take the server's defaults.
type APIKey struct {
	Tenant      string        `json:"tenant"`
	SHA256      string        `json:"sha256"`
	Policy      *policy.Rules `json:"policy,omitempty"`
	Rate        float64       `json:"rate,omitempty"`
	Burst       int           `json:"burst,omitempty"`
	MaxSessions int           `json:"max-sessions,omitempty"`
}

// Keys returns the configured keys and those of APIKeysFile (a JSON
// array of the same objects).
func (c *Config) Keys() ([]APIKey, error) {
	keys := append([]APIKey(nil), c.APIKeys...)
	if c.APIKeysFile != "" {
		data, err := os.ReadFile(c.APIKeysFile)
		if err != nil {
			return nil, fmt.Errorf("--api-keys-file: %w", err)
		}
		var more []APIKey
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&more); err != nil {
			return nil, fmt.Errorf("--api-keys-file %s: %w", c.APIKeysFile, err)
		}
		keys = append(keys, more...)
	}
	for i, k := range keys {
		if k.Tenant == "" {
			return nil, fmt.Errorf("api-keys[%d]: tenant is empty", i)
		}
		if len(k.SHA256) != 64 || strings.Trim(strings.ToLower(k.SHA256), "0123456789abcdef") != "" {
			return nil, fmt.Errorf("api-keys[%d] (tenant %q): sha256 must be 64 hex digits, the hash pybox key new prints (never the key itself)", i, k.Tenant)
		}
		if k.Policy != nil {
			if _, err := policy.New(*k.Policy); err != nil {
				return nil, fmt.Errorf("api-keys[%d] (tenant %q): %w", i, k.Tenant, err)
			}
		}
		if k.Rate < 0 || k.Burst < 0 || k.MaxSessions < 0 {
			return nil, fmt.Errorf("api-keys[%d] (tenant %q): rate, burst and max-sessions must not be negative", i, k.Tenant)
		}
	}
	return keys, nil
}

// PolicyRules are the server-wide policy settings.
func (c *Config) PolicyRules() policy.Rules {
	return policy.Rules{Profile: policy.Profile(c.Policy), DenyModules: c.PolicyDenyModules,
		AllowModules: c.PolicyAllowModules, DenyCalls: c.PolicyDenyCalls}
}

// Default returns the product defaults.
func Default() Config {
	return Config{
		Backend:      "native",
		Python:       "python3",
		Memory:       "256MiB",
		CPU:          sandbox.DefaultCPU,
		Timeout:      "30s",
		Pids:         sandbox.DefaultPids,
		TmpfsSize:    "64MiB",
		MaxOutput:    "1MiB",
		UIDBase:      1_000_000_000,
		UIDSlots:     1024,
		SeccompErrno: 1,

		Listen:        "127.0.0.1:8080",
		MaxSessions:   64,
		MaxConcurrent: 16,
		QueueWait:     "2s",
		WarmPool:      4,
		WarmMode:      "fork",
		WarmMaxAge:    "10m",
		WarmIdle:      "5m",
		SessionTTL:    "10m",
		Grace:         "2s",
		MaxMemory:     "2GiB",
		MaxTimeout:    "10m",
		MaxCPU:        1,
		MaxFileSize:   "32MiB",
		MaxFiles:      1000,

		Policy:            "strict",
		MaxCodeSize:       "1MiB",
		MaxCodeLines:      20000,
		Rate:              20,
		Burst:             40,
		SessionRate:       10,
		SessionBurst:      20,
		MaxSessionsPerKey: 16,
		AuditMaxFileSize:  "64MiB",
		LogFormat:         "json",
		LogLevel:          "info",
	}
}

// Server holds the server settings in plain units.
type Server struct {
	Listen                          string
	MaxSessions, MaxConcurrent      int
	WarmPool, MaxFiles              int
	QueueWait, WarmMaxAge, WarmIdle time.Duration
	SessionTTL, Grace, MaxTimeout   time.Duration
	MaxMemoryBytes, MaxFileBytes    int64
	MaxCPU                          float64
}

// ServerSettings converts and checks the server settings, naming the flag
// of any bad value.
func (c *Config) ServerSettings() (Server, error) {
	s := Server{Listen: c.Listen, MaxSessions: c.MaxSessions, MaxConcurrent: c.MaxConcurrent,
		WarmPool: c.WarmPool, MaxFiles: c.MaxFiles, MaxCPU: c.MaxCPU}
	for _, d := range []struct {
		flag string
		v    string
		dst  *time.Duration
	}{
		{"queue-wait", c.QueueWait, &s.QueueWait}, {"warm-max-age", c.WarmMaxAge, &s.WarmMaxAge},
		{"warm-idle", c.WarmIdle, &s.WarmIdle}, {"session-ttl", c.SessionTTL, &s.SessionTTL},
		{"grace", c.Grace, &s.Grace}, {"max-timeout", c.MaxTimeout, &s.MaxTimeout},
	} {
		v, err := time.ParseDuration(d.v)
		if err != nil || v < 0 {
			return s, fmt.Errorf("--%s: %q is not a duration such as 30s or 10m", d.flag, d.v)
		}
		*d.dst = v
	}
	var err error
	if s.MaxMemoryBytes, err = ParseSize(c.MaxMemory); err != nil {
		return s, fmt.Errorf("--max-memory: %w", err)
	}
	if s.MaxFileBytes, err = ParseSize(c.MaxFileSize); err != nil {
		return s, fmt.Errorf("--max-file-size: %w", err)
	}
	switch {
	case s.Listen == "":
		return s, errors.New("--listen: give an address such as 127.0.0.1:8080")
	case s.MaxSessions < 0:
		return s, fmt.Errorf("--max-sessions: %d is negative", s.MaxSessions)
	case s.MaxConcurrent < 1:
		return s, fmt.Errorf("--max-concurrent: must be at least 1 (got %d)", s.MaxConcurrent)
	case c.WarmMode != "fork" && c.WarmMode != "exec":
		return s, fmt.Errorf("--warm-mode: %q is not fork or exec", c.WarmMode)
	case s.WarmPool < 0 || s.WarmPool > 256:
		return s, fmt.Errorf("--warm-pool: must be between 0 and 256 (got %d)", s.WarmPool)
	case s.MaxFiles < 1:
		return s, fmt.Errorf("--max-files: must be at least 1 (got %d)", s.MaxFiles)
	case s.SessionTTL <= 0:
		return s, errors.New("--session-ttl: must be positive")
	case s.Grace <= 0:
		return s, errors.New("--grace: must be positive")
	}
	return s, nil
}

// LoadFile overlays the JSON file at path on c. Unknown keys are errors:
// a misspelt limit must not silently fall back to a default.
func (c *Config) LoadFile(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("reading config: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(c); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("config %s: unexpected data after the JSON object", path)
	}
	return nil
}

// Limits converts the limit settings, naming the flag of any bad value.
func (c *Config) Limits() (sandbox.Limits, error) {
	var l sandbox.Limits
	var err error
	if l.MemoryBytes, err = ParseSize(c.Memory); err != nil {
		return l, fmt.Errorf("--memory: %w", err)
	}
	if l.TmpfsBytes, err = ParseSize(c.TmpfsSize); err != nil {
		return l, fmt.Errorf("--tmpfs-size: %w", err)
	}
	if l.MaxOutputBytes, err = ParseSize(c.MaxOutput); err != nil {
		return l, fmt.Errorf("--max-output: %w", err)
	}
	if l.Timeout, err = time.ParseDuration(c.Timeout); err != nil {
		return l, fmt.Errorf("--timeout: %q is not a duration such as 30s or 1m30s", c.Timeout)
	}
	l.CPU, l.Pids = c.CPU, c.Pids
	if err := l.Validate(); err != nil {
		return l, err // the message names the flag; errors.Unwrap(err) would return the bare ErrInvalidSpec
	}
	return l, nil
}

// Validate checks every setting.
func (c *Config) Validate() error {
	if _, err := c.Limits(); err != nil {
		return err
	}
	switch c.Backend {
	case "native", "docker", "auto", "restricted":
	default:
		return fmt.Errorf("--backend: %q is not available (this build has: native, docker, auto (native, else docker), and restricted, which is not a sandbox)", c.Backend)
	}
	if strings.ContainsAny(c.DockerImage, " \t\n\x00") || strings.HasPrefix(c.DockerImage, "-") {
		return fmt.Errorf("--docker-image: %q is not an image reference such as python:3.12-slim", c.DockerImage)
	}
	switch c.DockerRuntime {
	case "", "runc", "runsc", "crun", "kata", "kata-runtime", "youki":
	default:
		return fmt.Errorf("--docker-runtime: %q is not a runtime pybox knows (runc, runsc for gVisor, crun, kata, youki; empty: the daemon's default)", c.DockerRuntime)
	}
	if c.Fallback != "" && c.Fallback != "restricted" {
		return fmt.Errorf("--fallback: %q is not a fallback; the only one is restricted (no kernel isolation), or leave it empty to refuse to run", c.Fallback)
	}
	if _, err := policy.New(c.PolicyRules()); err != nil {
		return fmt.Errorf("--policy: %w", err)
	}
	if n, err := ParseSize(c.MaxCodeSize); err != nil || n < 1 {
		return fmt.Errorf("--max-code-size: %q is not a positive size such as 1MiB", c.MaxCodeSize)
	}
	if n, err := ParseSize(c.AuditMaxFileSize); err != nil || n < 4096 {
		return fmt.Errorf("--audit-max-file-size: %q is not a size of at least 4KiB", c.AuditMaxFileSize)
	}
	switch {
	case c.MaxCodeLines < 1:
		return fmt.Errorf("--max-code-lines: must be at least 1 (got %d)", c.MaxCodeLines)
	case c.Rate < 0 || c.SessionRate < 0:
		return errors.New("--rate and --session-rate: must not be negative (0: no limit)")
	case c.Burst < 0 || c.SessionBurst < 0:
		return errors.New("--burst and --session-burst: must not be negative")
	case c.MaxSessionsPerKey < 0:
		return fmt.Errorf("--max-sessions-per-key: %d is negative", c.MaxSessionsPerKey)
	case c.LogFormat != "json" && c.LogFormat != "text":
		return fmt.Errorf("--log-format: %q is not json or text", c.LogFormat)
	}
	if _, err := c.SlogLevel(); err != nil {
		return err
	}
	if _, err := c.Keys(); err != nil {
		return err
	}
	if c.Python == "" {
		return errors.New("--python: must name an interpreter")
	}
	if _, err := c.ServerSettings(); err != nil {
		return err
	}
	if c.SeccompErrno < 1 || c.SeccompErrno > 4095 {
		return fmt.Errorf("--seccomp-errno: %d is not an errno (1 to 4095)", c.SeccompErrno)
	}
	if c.UIDBase < 65536 {
		return fmt.Errorf("--uid-base: %d is too low; sandbox ids must not overlap the host's users (use at least 65536)", c.UIDBase)
	}
	if c.UIDSlots < 1 || int64(c.UIDSlots) > (1<<32-2-int64(c.UIDBase))/65536 { // no overflow for huge values
		return fmt.Errorf("--uid-slots: %d slots from --uid-base %d exceed the 32-bit id space", c.UIDSlots, c.UIDBase)
	}
	return nil
}

var units = []struct {
	suffix string
	mult   int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1000}, {"MB", 1000 * 1000}, {"GB", 1000 * 1000 * 1000},
	{"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"k", 1 << 10}, {"B", 1},
}

// ParseSize reads "256MiB", "1G", "64M" or a plain number of bytes.
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || !(f >= 0) { // also rejects NaN
		return 0, fmt.Errorf("%q is not a size such as 256MiB, 1G or 65536", s)
	}
	v := f * float64(mult)
	if v > 1<<50 {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return int64(v), nil
}

// SlogLevel is LogLevel as a slog level.
func (c *Config) SlogLevel() (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return l, fmt.Errorf("--log-level: %q is not debug, info, warn or error", c.LogLevel)
	}
	return l, nil
}
