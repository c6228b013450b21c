package session

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pybox-dev/pybox/internal/backend/native"
	_ "github.com/pybox-dev/pybox/internal/nsinit" // the sandbox init starts from its initialisation
	"github.com/pybox-dev/pybox/internal/reexec"
	"github.com/pybox-dev/pybox/internal/sandbox"
)

func TestMain(m *testing.M) {
	if reexec.Init() {
		return
	}
	os.Exit(m.Run())
}

func backend(t testing.TB) StartFunc {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	b, err := native.New(native.Config{CacheDir: filepath.Join(os.TempDir(), "pybox-test-cache")})
	if err != nil {
		t.Fatal(err)
	}
	return Adapt(b.Start)
}

// BenchmarkWarmRun measures the request path of a warm one-shot: the
// sandbox is made (untimed) before each execution, as the pool does.
func BenchmarkWarmRun(b *testing.B) {
	start := backend(b)
	spec := &sandbox.Spec{Code: []byte("print(1+1)"), Limits: sandbox.DefaultLimits()}
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		c, err := Dial(context.Background(), start, sandbox.DefaultLimits(), "python3")
		if err != nil {
			b.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond) // let the sandbox's start-up settle
		b.StartTimer()
		res, err := c.Run(context.Background(), spec)
		if err != nil || res.Stdout != "2\n" {
			b.Fatal(err, res)
		}
	}
}

// BenchmarkCell measures a session cell (x += 1).
func BenchmarkCell(b *testing.B) {
	c, err := Dial(context.Background(), backend(b), sandbox.DefaultLimits(), "python3")
	if err != nil {
		b.Fatal(err)
	}
	s := New(c, Options{})
	defer s.Close("benchmark done")
	s.Execute(context.Background(), "x = 0", 0, nil) //nolint:errcheck
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if r, err := s.Execute(context.Background(), "x += 1", 0, nil); err != nil || r.Status != "ok" {
			b.Fatal(err, r)
		}
	}
}

// BenchmarkForkedWarmRun is BenchmarkWarmRun with sandboxes forked by the
// fork server, as pybox serve makes them by default.
func BenchmarkForkedWarmRun(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root")
	}
	nb, err := native.New(native.Config{CacheDir: filepath.Join(os.TempDir(), "pybox-test-cache")})
	if err != nil {
		b.Fatal(err)
	}
	f := nb.NewForker(sandbox.DefaultLimits(), "python3")
	defer f.Close()
	start := Adapt(f.Start)
	spec := &sandbox.Spec{Code: []byte("print(1+1)"), Limits: sandbox.DefaultLimits()}
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		c, err := Dial(context.Background(), start, sandbox.DefaultLimits(), "python3")
		if err != nil {
			b.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond) // let the sandbox's start-up settle
		b.StartTimer()
		if res, err := c.Run(context.Background(), spec); err != nil || res.Stdout != "2\n" {
			b.Fatal(err, res)
		}
	}
}
