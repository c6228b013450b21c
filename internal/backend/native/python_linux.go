package native

import (
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Interpreter describes a host Python installation: what must be visible
// inside the sandbox for it to start and import its standard library and
// site-packages.
type Interpreter struct {
	// Executable is sys.executable (possibly a symlink); Real is where the
	// chain of links ends.
	Executable string   `json:"executable"`
	Real       string   `json:"real"`
	Prefixes   []string `json:"prefixes"`
	Path       []string `json:"path"`
	Version    string   `json:"version"`
	// Loader is the ELF interpreter (ld.so) of Real, which the kernel
	// opens for execution too.
	Loader string `json:"loader"`
	// stamp identifies the file the description was made from.
	Stamp string `json:"stamp"`
}

// discoverScript prints what the sandbox needs to know about the
// interpreter. It runs once per interpreter (then cached), on the host,
// with the operator's chosen interpreter: not user code.
const discoverScript = `import sys, os, json
ex = sys.executable
print(json.dumps({"executable": ex, "real": os.path.realpath(ex),
  "prefixes": sorted({sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}),
  "path": [p for p in sys.path if p and os.path.exists(p)],
  "version": sys.version.split()[0]}))`

type interpCache struct {
	dir string // on-disk cache; "" disables it
	mu  sync.Mutex
	mem map[string]*Interpreter
}

// resolve finds the interpreter named by python (a path or a name on the
// host's PATH) and describes it. Start-up cost matters (every cold run
// pays it), so descriptions are cached in memory and on disk, keyed by the
// file's identity and re-checked against the real executable.
func (c *interpCache) resolve(ctx context.Context, python string) (*Interpreter, error) {
	if python == "" {
		python = "python3"
	}
	path, err := exec.LookPath(python)
	if err != nil {
		return nil, fmt.Errorf("--python %s: not found on PATH: %w", python, err)
	}
	path, err = filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	stamp, err := fileStamp(path)
	if err != nil {
		return nil, fmt.Errorf("--python %s: %w", python, err)
	}
	key := path + "\x00" + stamp + "\x00" + os.Getenv("PYENV_VERSION")
	c.mu.Lock()
	defer c.mu.Unlock()
	if in, ok := c.mem[key]; ok && in.valid() {
		return in, nil
	}
	cacheFile := ""
	if c.dir != "" {
		sum := sha256.Sum256([]byte(key))
		cacheFile = filepath.Join(c.dir, "interp-"+hex.EncodeToString(sum[:12])+".json")
		if data, err := readTrusted(cacheFile); err == nil {
			var in Interpreter
			if json.Unmarshal(data, &in) == nil && in.valid() {
				c.mem[key] = &in
				return &in, nil
			}
		}
	}
	in, err := discover(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("--python %s: %w", python, err)
	}
	c.mem[key] = in
	if cacheFile != "" {
		if data, err := json.Marshal(in); err == nil {
			if os.MkdirAll(c.dir, 0o755) == nil {
				tmp := cacheFile + ".tmp" + fmt.Sprint(os.Getpid())
				if os.WriteFile(tmp, data, 0o644) == nil {
					os.Rename(tmp, cacheFile)
				}
			}
		}
	}
	return in, nil
}

// readTrusted reads a cache file only if this user owns it and nobody else
// can write it: its contents become bind mounts.
func readTrusted(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); !ok || int(sys.Uid) != os.Geteuid() || st.Mode().Perm()&0o022 != 0 {
		return nil, fmt.Errorf("cache file %s is not owned by this user or is writable by others", path)
	}
	return io.ReadAll(f)
}

func fileStamp(path string) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%d-%d-%d", st.Size(), st.ModTime().UnixNano(), st.Sys().(*syscall.Stat_t).Ino), nil
}

func (in *Interpreter) valid() bool {
	s, err := fileStamp(in.Real)
	return err == nil && s == in.Stamp
}

func discover(ctx context.Context, path string) (*Interpreter, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, "-I", "-c", discoverScript)
	cmd.Env = append(os.Environ(), "PYTHONIOENCODING=utf-8")
	out, err := cmd.Output()
	if err != nil {
		msg := err.Error()
		if ee, ok := err.(*exec.ExitError); ok && len(ee.Stderr) > 0 {
			msg += ": " + strings.TrimSpace(string(ee.Stderr))
		}
		return nil, fmt.Errorf("asking the interpreter about itself: %s", msg)
	}
	var in Interpreter
	if err := json.Unmarshal(out, &in); err != nil {
		return nil, fmt.Errorf("parsing interpreter description %q: %w", out, err)
	}
	if !filepath.IsAbs(in.Executable) || !filepath.IsAbs(in.Real) {
		return nil, fmt.Errorf("interpreter reports a relative sys.executable %q", in.Executable)
	}
	if in.Stamp, err = fileStamp(in.Real); err != nil {
		return nil, err
	}
	f, err := elf.Open(in.Real)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w (pybox needs a native Python executable)", in.Real, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			buf := make([]byte, p.Filesz)
			if _, err := p.ReadAt(buf, 0); err == nil {
				in.Loader = strings.TrimRight(string(buf), "\x00")
			}
		}
	}
	return &in, nil
}
