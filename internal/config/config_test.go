package config

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pybox-dev/pybox/internal/policy"
	"github.com/pybox-dev/pybox/internal/sandbox"
)

func TestParseSize(t *testing.T) {
	cases := []struct {
		in      string
		want    int64
		wantErr string // substring; "" means success
	}{
		{"256MiB", 256 << 20, ""},
		{"1G", 1 << 30, ""},
		{"64M", 64 << 20, ""},
		{"1.5GiB", 3 << 29, ""},
		{"65536", 65536, ""},
		{"10KB", 10_000, ""},
		{"10KiB", 10 << 10, ""},
		{"10K", 10 << 10, ""},
		{"10k", 10 << 10, ""},
		{"2MB", 2_000_000, ""},
		{"3GB", 3_000_000_000, ""},
		{"1TiB", 1 << 40, ""},
		{"512B", 512, ""},
		{"0", 0, ""},
		{"0.5K", 512, ""},
		{" 64 MiB ", 64 << 20, ""},
		{"1024TiB", 1 << 50, ""},
		{"", 0, "is not a size"},
		{"   ", 0, "is not a size"},
		{"abc", 0, "is not a size"},
		{"-1M", 0, "is not a size"},
		{"-1", 0, "is not a size"},
		{"1XB", 0, "is not a size"},
		{"MiB", 0, "is not a size"},
		{"1 2M", 0, "is not a size"},
		{"1MiBB", 0, "is not a size"},
		{"NaN", 0, "is not a size"},
		{"NaNM", 0, "is not a size"},
		{"1025TiB", 0, "too large"},
		{"Inf", 0, "too large"},
		{"1e400", 0, "is not a size"},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			got, err := ParseSize(c.in)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("ParseSize(%q) = %d, %v; want an error containing %q", c.in, got, err, c.wantErr)
				}
				if !strings.Contains(err.Error(), `"`+c.in+`"`) {
					t.Errorf("error %q does not quote the input", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseSize(%q): %v", c.in, err)
			}
			if got != c.want {
				t.Errorf("ParseSize(%q) = %d, want %d", c.in, got, c.want)
			}
		})
	}
}

func TestDefaultIsValid(t *testing.T) {
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatalf("Default().Validate() = %v", err)
	}
	l, err := c.Limits()
	if err != nil {
		t.Fatal(err)
	}
	if l != sandbox.DefaultLimits() {
		t.Errorf("Default().Limits() = %+v, want sandbox.DefaultLimits() %+v", l, sandbox.DefaultLimits())
	}
}

func TestLimits(t *testing.T) {
	cases := []struct {
		name    string
		modify  func(*Config)
		want    *sandbox.Limits // checked when non-nil
		wantErr []string        // substrings; nil means success
	}{
		{
			name: "converted",
			modify: func(c *Config) {
				c.Memory, c.CPU, c.Timeout, c.Pids, c.TmpfsSize, c.MaxOutput = "1GiB", 2, "1m30s", 64, "16M", "4KiB"
			},
			want: &sandbox.Limits{MemoryBytes: 1 << 30, CPU: 2, Timeout: 90 * time.Second, Pids: 64, TmpfsBytes: 16 << 20, MaxOutputBytes: 4096},
		},
		{name: "memory unparsable", modify: func(c *Config) { c.Memory = "lots" }, wantErr: []string{"--memory", `"lots"`}},
		{name: "tmpfs unparsable", modify: func(c *Config) { c.TmpfsSize = "1XB" }, wantErr: []string{"--tmpfs-size", `"1XB"`}},
		{name: "max-output unparsable", modify: func(c *Config) { c.MaxOutput = "-1K" }, wantErr: []string{"--max-output"}},
		{name: "timeout unparsable", modify: func(c *Config) { c.Timeout = "30" }, wantErr: []string{"--timeout", `"30"`}},
		{name: "timeout empty", modify: func(c *Config) { c.Timeout = "" }, wantErr: []string{"--timeout"}},
		// Parsable but out of range: Validate's message, which names the flag.
		{name: "memory too small", modify: func(c *Config) { c.Memory = "1MiB" }, wantErr: []string{"--memory", "at least 16MiB"}},
		{name: "cpu out of range", modify: func(c *Config) { c.CPU = 0 }, wantErr: []string{"--cpu"}},
		{name: "cpu NaN", modify: func(c *Config) { c.CPU = math.NaN() }, wantErr: []string{"--cpu"}},
		{name: "timeout too long", modify: func(c *Config) { c.Timeout = "25h" }, wantErr: []string{"--timeout", "24h"}},
		{name: "pids zero", modify: func(c *Config) { c.Pids = 0 }, wantErr: []string{"--pids"}},
		{name: "tmpfs too small", modify: func(c *Config) { c.TmpfsSize = "1KiB" }, wantErr: []string{"--tmpfs-size"}},
		{name: "max-output too small", modify: func(c *Config) { c.MaxOutput = "100" }, wantErr: []string{"--max-output"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := Default()
			c.modify(&cfg)
			l, err := cfg.Limits()
			if c.wantErr == nil {
				if err != nil {
					t.Fatalf("Limits() = %v", err)
				}
				if c.want != nil && l != *c.want {
					t.Errorf("Limits() = %+v, want %+v", l, *c.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("Limits() = %+v, nil; want an error naming %s", l, c.wantErr[0])
			}
			for _, w := range c.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			// Validate reports the same error.
			if verr := cfg.Validate(); verr == nil || verr.Error() != err.Error() {
				t.Errorf("Validate() = %v, want the Limits error %v", verr, err)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	cases := []struct {
		name    string
		modify  func(*Config)
		wantErr string // "" means valid
	}{
		{"defaults", func(c *Config) {}, ""},
		{"unknown backend", func(c *Config) { c.Backend = "lxc" }, `--backend: "lxc" is not available`},
		{"bad docker image", func(c *Config) { c.Backend = "docker"; c.DockerImage = "-x" }, "--docker-image"},
		{"bad docker runtime", func(c *Config) { c.Backend = "docker"; c.DockerRuntime = "sh -c" }, "--docker-runtime"},
		{"empty backend", func(c *Config) { c.Backend = "" }, "--backend"},
		{"empty python", func(c *Config) { c.Python = "" }, "--python"},
		{"python path", func(c *Config) { c.Python = "/usr/bin/python3.12" }, ""},
		{"uid-base at minimum", func(c *Config) { c.UIDBase = 65536 }, ""},
		{"uid-base too low", func(c *Config) { c.UIDBase = 65535 }, "--uid-base: 65535 is too low"},
		{"uid-base zero", func(c *Config) { c.UIDBase = 0 }, "--uid-base"},
		{"uid-base negative", func(c *Config) { c.UIDBase = -1 }, "--uid-base"},
		{"uid-slots zero", func(c *Config) { c.UIDSlots = 0 }, "--uid-slots"},
		{"uid-slots negative", func(c *Config) { c.UIDSlots = -3 }, "--uid-slots"},
		// 1e9 + 50277*65536 = 4294952448 fits below 2^32-2; one more slot does not.
		{"uid-slots at the 32-bit edge", func(c *Config) { c.UIDSlots = 50277 }, ""},
		{"uid-slots past the 32-bit edge", func(c *Config) { c.UIDSlots = 50278 }, "--uid-slots: 50278 slots from --uid-base 1000000000 exceed the 32-bit id space"},
		{"uid-base past the 32-bit space", func(c *Config) { c.UIDBase, c.UIDSlots = 1<<32, 1 }, "--uid-slots"},
		// Multiplying by 65536 must not wrap around int64 and pass.
		{"uid-slots overflowing int64", func(c *Config) { c.UIDSlots = 1 << 48 }, "--uid-slots"},
		{"uid-slots max int", func(c *Config) { c.UIDSlots = math.MaxInt }, "--uid-slots"},
		{"uid-base max int", func(c *Config) { c.UIDBase, c.UIDSlots = math.MaxInt, 1 }, "--uid-slots"},
		{"limits checked first", func(c *Config) { c.Memory = "x"; c.Backend = "lxc" }, "--memory"},
		{"restricted backend", func(c *Config) { c.Backend = "restricted" }, ""},
		{"fallback restricted", func(c *Config) { c.Fallback = "restricted" }, ""},
		{"unknown fallback", func(c *Config) { c.Fallback = "none" }, `--fallback: "none" is not a fallback`},
		{"unknown policy", func(c *Config) { c.Policy = "lax" }, `--policy: policy profile "lax"`},
		{"allowlist without modules", func(c *Config) { c.Policy = "allowlist" }, "--policy: policy profile allowlist needs allow-modules"},
		{"allowlist with modules", func(c *Config) { c.Policy, c.PolicyAllowModules = "allowlist", []string{"math"} }, ""},
		{"bad module name", func(c *Config) { c.PolicyDenyModules = []string{"os;x"} }, `--policy: policy: "os;x" is not a module`},
		{"bad code size", func(c *Config) { c.MaxCodeSize = "0" }, "--max-code-size"},
		{"bad code lines", func(c *Config) { c.MaxCodeLines = 0 }, "--max-code-lines"},
		{"negative rate", func(c *Config) { c.Rate = -1 }, "--rate"},
		{"negative burst", func(c *Config) { c.SessionBurst = -1 }, "--burst"},
		{"negative key quota", func(c *Config) { c.MaxSessionsPerKey = -1 }, "--max-sessions-per-key"},
		{"bad log format", func(c *Config) { c.LogFormat = "xml" }, `--log-format: "xml"`},
		{"bad log level", func(c *Config) { c.LogLevel = "loud" }, `--log-level: "loud"`},
		{"small audit files", func(c *Config) { c.AuditMaxFileSize = "1KiB" }, "--audit-max-file-size"},
		{"key without tenant", func(c *Config) { c.APIKeys = []APIKey{{SHA256: strings.Repeat("a", 64)}} }, "api-keys[0]: tenant is empty"},
		{"key stored in clear", func(c *Config) { c.APIKeys = []APIKey{{Tenant: "a", SHA256: "pbx_secret"}} }, `api-keys[0] (tenant "a"): sha256 must be 64 hex digits`},
		{"key with bad policy", func(c *Config) {
			c.APIKeys = []APIKey{{Tenant: "a", SHA256: strings.Repeat("a", 64), Policy: &policy.Rules{Profile: "x"}}}
		}, `api-keys[0] (tenant "a"): policy profile "x"`},
		{"good key", func(c *Config) { c.APIKeys = []APIKey{{Tenant: "a", SHA256: strings.Repeat("a", 64)}} }, ""},
		{"missing keys file", func(c *Config) { c.APIKeysFile = "/nonexistent/keys.json" }, "--api-keys-file"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := Default()
			c.modify(&cfg)
			err := cfg.Validate()
			if c.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Fatalf("Validate() = %v, want an error containing %q", err, c.wantErr)
			}
		})
	}
}

func TestLoadFile(t *testing.T) {
	cases := []struct {
		name    string
		json    string
		want    func(Config) Config // expected result from Default(); nil when an error is expected
		wantErr []string
	}{
		{
			name: "every key by its flag name",
			json: `{
				"backend": "native", "python": "/opt/py/bin/python3",
				"memory": "512MiB", "cpu": 1.5, "timeout": "10s", "pids": 64,
				"tmpfs-size": "128MiB", "max-output": "2MiB",
				"uid-base": 2000000000, "uid-slots": 16,
				"cgroup-parent": "pybox.slice/sandboxes",
				"state-dir": "/var/lib/pybox", "cache-dir": "/var/cache/pybox",
				"seccomp-errno": 4000,
				"listen": "0.0.0.0:9000", "max-sessions": 8, "max-concurrent": 4, "queue-wait": "1s",
				"warm-pool": 2, "warm-mode": "exec", "warm-max-age": "1m", "warm-idle": "30s",
				"session-ttl": "5m", "grace": "3s", "max-memory": "1GiB", "max-timeout": "2m",
				"max-cpu": 2, "max-file-size": "8MiB", "max-files": 100,
				"policy": "allowlist", "policy-deny-modules": ["pickle"], "policy-allow-modules": ["math"],
				"policy-deny-calls": ["input"], "fallback": "restricted",
				"max-code-size": "64KiB", "max-code-lines": 500, "rate": 2.5, "burst": 5,
				"session-rate": 1, "session-burst": 3, "max-sessions-per-key": 2,
				"api-keys": [{"tenant": "a", "sha256": "00000000000000000000000000000000000000000000000000000000000000aa",
					"policy": {"profile": "standard", "deny-modules": ["numpy"]}, "rate": 1, "burst": 2, "max-sessions": 1}],
				"api-keys-file": "/etc/pybox/keys.json", "insecure-no-auth": true,
				"audit-dir": "/var/lib/pybox/audit", "audit-keep-code": true, "audit-max-file-size": "8MiB",
				"log-format": "text", "log-level": "debug"
			}`,
			want: func(Config) Config {
				return Config{
					Backend: "native", Python: "/opt/py/bin/python3",
					Memory: "512MiB", CPU: 1.5, Timeout: "10s", Pids: 64,
					TmpfsSize: "128MiB", MaxOutput: "2MiB",
					UIDBase: 2_000_000_000, UIDSlots: 16,
					CgroupParent: "pybox.slice/sandboxes",
					StateDir:     "/var/lib/pybox", CacheDir: "/var/cache/pybox",
					SeccompErrno: 4000,
					Listen:       "0.0.0.0:9000", MaxSessions: 8, MaxConcurrent: 4, QueueWait: "1s",
					WarmPool: 2, WarmMode: "exec", WarmMaxAge: "1m", WarmIdle: "30s",
					SessionTTL: "5m", Grace: "3s", MaxMemory: "1GiB", MaxTimeout: "2m",
					MaxCPU: 2, MaxFileSize: "8MiB", MaxFiles: 100,
					Policy: "allowlist", PolicyDenyModules: []string{"pickle"}, PolicyAllowModules: []string{"math"},
					PolicyDenyCalls: []string{"input"}, Fallback: "restricted",
					MaxCodeSize: "64KiB", MaxCodeLines: 500, Rate: 2.5, Burst: 5,
					SessionRate: 1, SessionBurst: 3, MaxSessionsPerKey: 2,
					APIKeys: []APIKey{{Tenant: "a", SHA256: "00000000000000000000000000000000000000000000000000000000000000aa",
						Policy: &policy.Rules{Profile: "standard", DenyModules: []string{"numpy"}}, Rate: 1, Burst: 2, MaxSessions: 1}},
					APIKeysFile: "/etc/pybox/keys.json", InsecureNoAuth: true,
					AuditDir: "/var/lib/pybox/audit", AuditKeepCode: true, AuditMaxFileSize: "8MiB",
					LogFormat: "text", LogLevel: "debug",
				}
			},
		},
		{
			name: "overlay keeps unset keys",
			json: `{"memory": "1GiB", "tmpfs-size": "8MiB"}`,
			want: func(c Config) Config { c.Memory, c.TmpfsSize = "1GiB", "8MiB"; return c },
		},
		{
			name: "empty object",
			json: `{}`,
			want: func(c Config) Config { return c },
		},
		{name: "misspelt key", json: `{"memroy": "1GiB"}`, wantErr: []string{`unknown field "memroy"`}},
		{name: "Go field name instead of flag name", json: `{"TmpfsSize": "8MiB"}`, wantErr: []string{`unknown field "TmpfsSize"`}},
		{name: "underscore instead of dash", json: `{"max_output": "8MiB"}`, wantErr: []string{`unknown field "max_output"`}},
		{name: "unknown key after known ones", json: `{"memory": "1GiB", "network": true}`, wantErr: []string{`unknown field "network"`}},
		{name: "wrong type", json: `{"cpu": "0.5"}`, wantErr: []string{"cpu"}},
		{name: "size as number", json: `{"memory": 268435456}`, wantErr: []string{"memory"}},
		{name: "not JSON", json: `memory = "1GiB"`, wantErr: []string{"invalid character"}},
		{name: "truncated", json: `{"memory": "1GiB"`, wantErr: []string{"EOF"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "pybox.json")
			if err := os.WriteFile(path, []byte(c.json), 0o644); err != nil {
				t.Fatal(err)
			}
			cfg := Default()
			err := cfg.LoadFile(path)
			if c.want == nil {
				if err == nil {
					t.Fatalf("LoadFile accepted %s; got %+v", c.json, cfg)
				}
				if !strings.Contains(err.Error(), path) {
					t.Errorf("error %q does not name the file", err)
				}
				for _, w := range c.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not contain %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("LoadFile: %v", err)
			}
			if want := c.want(Default()); !reflect.DeepEqual(cfg, want) {
				t.Errorf("after LoadFile:\n got %+v\nwant %+v", cfg, want)
			}
		})
	}
	t.Run("missing file", func(t *testing.T) {
		cfg := Default()
		err := cfg.LoadFile(filepath.Join(t.TempDir(), "absent.json"))
		if err == nil || !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "reading config") {
			t.Errorf("LoadFile(missing) = %v, want 'reading config' wrapping ErrNotExist", err)
		}
		if !reflect.DeepEqual(cfg, Default()) {
			t.Errorf("a failed load changed the config: %+v", cfg)
		}
	})
	t.Run("loaded values are validated", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "pybox.json")
		if err := os.WriteFile(path, []byte(`{"pids": 0}`), 0o644); err != nil {
			t.Fatal(err)
		}
		cfg := Default()
		if err := cfg.LoadFile(path); err != nil {
			t.Fatal(err)
		}
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "--pids") {
			t.Errorf("Validate after loading pids 0 = %v, want an error naming --pids", err)
		}
	})
}

func TestLoadFileRejectsTrailingData(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c.json")
	if err := os.WriteFile(p, []byte(`{"memory":"512MiB"} {"memroy":"1GiB","pids":0}`), 0o644); err != nil {
		t.Fatal(err)
	}
	c := Default()
	if err := c.LoadFile(p); err == nil {
		t.Fatal("a second JSON value after the first was silently ignored")
	}
}

func TestValidateSeccompErrno(t *testing.T) {
	for _, v := range []int{0, -1, 4096} {
		c := Default()
		c.SeccompErrno = v
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "--seccomp-errno") {
			t.Errorf("seccomp-errno %d: err = %v, want an error naming --seccomp-errno", v, err)
		}
	}
	c := Default()
	c.SeccompErrno = 4000
	if err := c.Validate(); err != nil {
		t.Errorf("seccomp-errno 4000: %v", err)
	}
}

// Every server setting is checked, and the message names its flag.
func TestServerSettings(t *testing.T) {
	good := Default()
	st, err := good.ServerSettings()
	if err != nil || st.QueueWait.String() != "2s" || st.MaxMemoryBytes != 2<<30 || st.WarmPool != 4 {
		t.Fatalf("defaults: %+v %v", st, err)
	}
	for flag, mod := range map[string]func(*Config){
		"--listen":         func(c *Config) { c.Listen = "" },
		"--max-concurrent": func(c *Config) { c.MaxConcurrent = 0 },
		"--warm-pool":      func(c *Config) { c.WarmPool = -1 },
		"--warm-mode":      func(c *Config) { c.WarmMode = "spawn" },
		"--queue-wait":     func(c *Config) { c.QueueWait = "soon" },
		"--session-ttl":    func(c *Config) { c.SessionTTL = "0s" },
		"--grace":          func(c *Config) { c.Grace = "0s" },
		"--max-memory":     func(c *Config) { c.MaxMemory = "lots" },
		"--max-file-size":  func(c *Config) { c.MaxFileSize = "big" },
		"--max-files":      func(c *Config) { c.MaxFiles = 0 },
	} {
		c := Default()
		mod(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), flag) {
			t.Errorf("%s: got %v, want an error naming the flag", flag, err)
		}
	}
}
