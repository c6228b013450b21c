//go:build linux

package native

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/pybox-dev/pybox/internal/driver"
	"github.com/pybox-dev/pybox/internal/sandbox"
	"golang.org/x/sys/unix"
)

// startZygote starts a fork server for the test, ended at its cleanup.
func startZygote(tb testing.TB, lim sandbox.Limits) *Zygote {
	tb.Helper()
	z, err := newBackend(tb, unix.EPERM).StartZygote(context.Background(), lim, "python3")
	if err != nil {
		tb.Fatalf("StartZygote: %v", err)
	}
	tb.Cleanup(z.Close)
	return z
}

// spawnReady forks a driver sandbox and waits for its driver's ready
// frame; w is where requests go.
func spawnReady(z *Zygote, stdout, stderr io.Writer) (sb *Sandbox, w io.WriteCloser, err error) {
	sb, err = z.Spawn(context.Background(), &sandbox.Spec{Driver: true, Limits: z.limits}, stdout, stderr)
	if err != nil {
		return nil, nil, fmt.Errorf("spawn: %w", err)
	}
	w, r := sb.Control()
	var ready driver.Reply
	if err := driver.ReadFrame(r, &ready); err != nil || ready.Type != "ready" {
		sb.Kill(sandbox.StatusKilled)
		return nil, nil, fmt.Errorf("driver not ready: %v %+v", err, ready)
	}
	return sb, w, nil
}

// runForked runs code as a one-shot in a sandbox forked by z, through the
// driver's run request, and returns the result.
func runForked(t *testing.T, z *Zygote, code string) *sandbox.Result {
	t.Helper()
	stdout := sandbox.NewCapture(z.limits.MaxOutputBytes, nil)
	stderr := sandbox.NewCapture(z.limits.MaxOutputBytes, nil)
	sb, w, err := spawnReady(z, stdout, stderr)
	if err != nil {
		t.Fatalf("%v (stderr %q)", err, stderr.Output().Text)
	}
	sb.SetDeadline(z.limits.Timeout)
	if err := driver.WriteFrame(w, &driver.Request{Op: "run", Code: code, Filename: "main.py"}); err != nil {
		t.Fatal(err)
	}
	w.Close()
	res, err := sb.Wait()
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestZygoteSpawns(t *testing.T) {
	lim := sandbox.DefaultLimits()
	lim.Timeout = 10 * time.Second
	z := startZygote(t, lim)
	res := runForked(t, z, "import os\nprint(os.getpid(), os.getuid(), sorted(p for p in os.listdir('/proc') if p.isdigit()))\nprint(open('/proc/self/cgroup').read().strip())")
	t.Logf("%+v", res)
	if res.Status != sandbox.StatusOK {
		t.Fatalf("status %s: %s %s", res.Status, res.Message, res.Stderr)
	}
}

// spawnAndEnd makes one forked sandbox up to its driver's ready frame and
// tears it down again: what a pool refill costs.
func spawnAndEnd(z *Zygote) error {
	sb, _, err := spawnReady(z, nil, nil)
	if err != nil {
		return err
	}
	sb.Kill(sandbox.StatusKilled)
	<-sb.Done()
	return nil
}

// BenchmarkZygoteSpawn: a forked sandbox, from the request to its driver's
// ready frame, then torn down.
func BenchmarkZygoteSpawn(b *testing.B) {
	z := startZygote(b, sandbox.DefaultLimits())
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := spawnAndEnd(z); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkZygoteSpawnParallel: how many forked sandboxes per second one
// fork server makes with eight requests in flight.
func BenchmarkZygoteSpawnParallel(b *testing.B) {
	z := startZygote(b, sandbox.DefaultLimits())
	b.SetParallelism(4) // 4 × GOMAXPROCS(2) = 8 in flight
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := spawnAndEnd(z); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkForkedRun: a warm one-shot in a forked sandbox, from the run
// request to the result (the sandbox is made before the timer runs).
func BenchmarkForkedRun(b *testing.B) {
	z := startZygote(b, sandbox.DefaultLimits())
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		stdout := sandbox.NewCapture(1<<20, nil)
		sb, w, err := spawnReady(z, stdout, nil)
		if err != nil {
			b.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond) // let the sandbox's start-up settle
		b.StartTimer()
		driver.WriteFrame(w, &driver.Request{Op: "run", Code: "print(1+1)", Filename: "main.py"}) //nolint:errcheck
		w.Close()
		if res, err := sb.Wait(); err != nil || res.Stdout != "2\n" {
			b.Fatal(err, res)
		}
	}
}
