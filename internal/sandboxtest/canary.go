package sandboxtest

import (
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Canaries are host secrets and listeners that no sandboxed program may
// see or reach. Any appearance of Secret in sandbox output, or any
// connection accepted by a listener, fails the case that caused it.
type Canaries struct {
	Secret   string
	File     string // root-only file containing Secret
	EnvVar   string // variable set in this process's environment to Secret
	Port     int    // TCP listener on 127.0.0.1
	UnixPath string // unix socket listener
	Abstract string // abstract unix socket listener (name without NUL)
	accepted atomic.Int64
}

// PlantCanaries sets up every canary for the life of the test.
func PlantCanaries(t *testing.T) *Canaries {
	t.Helper()
	var b [12]byte
	rand.Read(b[:]) //nolint:errcheck
	c := &Canaries{Secret: "PYBOX-CANARY-" + hex.EncodeToString(b[:])}

	dir, err := os.MkdirTemp("/root", "pybox-canary-")
	if err != nil {
		dir = t.TempDir()
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o700)
	c.File = filepath.Join(dir, "secret")
	if err := os.WriteFile(c.File, []byte(c.Secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	c.EnvVar = "PYBOX_CANARY_SECRET"
	t.Setenv(c.EnvVar, c.Secret)

	serve := func(l net.Listener) {
		t.Cleanup(func() { l.Close() })
		go func() {
			for {
				conn, err := l.Accept()
				if err != nil {
					return
				}
				c.accepted.Add(1)
				conn.Write([]byte(c.Secret + "\n")) //nolint:errcheck
				conn.Close()
			}
		}()
	}
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c.Port = tcp.Addr().(*net.TCPAddr).Port
	serve(tcp)

	c.UnixPath = filepath.Join(os.TempDir(), "pybox-canary-"+hex.EncodeToString(b[:4])+".sock")
	os.Remove(c.UnixPath)
	ux, err := net.Listen("unix", c.UnixPath)
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(c.UnixPath, 0o777) // reachable by any uid, so only isolation stops it
	serve(ux)
	t.Cleanup(func() { os.Remove(c.UnixPath) })

	c.Abstract = "pybox-canary-" + hex.EncodeToString(b[4:8])
	ab, err := net.Listen("unix", "@"+c.Abstract)
	if err != nil {
		t.Fatal(err)
	}
	serve(ab)
	return c
}

// Accepted counts connections the listeners accepted.
func (c *Canaries) Accepted() int64 { return c.accepted.Load() }

// settle waits until a control's connections have all been accepted (the
// listeners run in their own goroutines) and returns the count.
func (c *Canaries) settle() int64 {
	n := c.accepted.Load()
	for i := 0; i < 10; i++ {
		time.Sleep(10 * time.Millisecond)
		m := c.accepted.Load()
		if m == n {
			return m
		}
		n = m
	}
	return n
}

// Find reports which canary appears in s, if any.
func (c *Canaries) Find(s string) string {
	if strings.Contains(s, c.Secret) {
		return "secret string"
	}
	return ""
}
