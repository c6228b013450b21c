//go:build linux

package native

import (
	"context"
	"testing"
	"time"

	"github.com/pybox-dev/pybox/internal/driver"
	"github.com/pybox-dev/pybox/internal/sandbox"
	"golang.org/x/sys/unix"
)

// runForked runs code as a one-shot in a sandbox forked by z, through the
// driver's run request, and returns the result.
func runForked(t *testing.T, z *Zygote, code string) *sandbox.Result {
	t.Helper()
	stdout := sandbox.NewCapture(z.limits.MaxOutputBytes, nil)
	stderr := sandbox.NewCapture(z.limits.MaxOutputBytes, nil)
	sb, err := z.Spawn(context.Background(), &sandbox.Spec{Driver: true, Limits: z.limits}, stdout, stderr)
	if err != nil {
		t.Fatalf("spawn: %v", err)
	}
	w, r := sb.Control()
	var ready driver.Reply
	if err := driver.ReadFrame(r, &ready); err != nil || ready.Type != "ready" {
		t.Fatalf("driver not ready: %v %+v (stderr %q)", err, ready, stderr.Output().Text)
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
	b := newBackend(t, unix.EPERM)
	lim := sandbox.DefaultLimits()
	lim.Timeout = 10 * time.Second
	z, err := b.StartZygote(context.Background(), lim, "python3")
	if err != nil {
		t.Fatalf("StartZygote: %v", err)
	}
	defer z.Close()
	res := runForked(t, z, "import os\nprint(os.getpid(), os.getuid(), sorted(p for p in os.listdir('/proc') if p.isdigit()))\nprint(open('/proc/self/cgroup').read().strip())")
	t.Logf("%+v", res)
	if res.Status != sandbox.StatusOK {
		t.Fatalf("status %s: %s %s", res.Status, res.Message, res.Stderr)
	}
}

// BenchmarkZygoteSpawn: a forked sandbox, from the request to its driver's
// ready frame, then torn down (what a pool refill costs).
func BenchmarkZygoteSpawn(b *testing.B) {
	bk, err := New(Config{CacheDir: "/tmp/pybox-test-cache", UIDBase: testUIDBase, CgroupParent: "pybox-test"})
	if err != nil {
		b.Fatal(err)
	}
	z, err := bk.StartZygote(context.Background(), sandbox.DefaultLimits(), "python3")
	if err != nil {
		b.Fatal(err)
	}
	defer z.Close()
	spec := &sandbox.Spec{Driver: true, Limits: sandbox.DefaultLimits()}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		sb, err := z.Spawn(context.Background(), spec, nil, nil)
		if err != nil {
			b.Fatal(err)
		}
		_, r := sb.Control()
		var ready driver.Reply
		if err := driver.ReadFrame(r, &ready); err != nil {
			b.Fatal(err)
		}
		sb.Kill(sandbox.StatusKilled)
		<-sb.Done()
	}
}

// BenchmarkForkedRun: a warm one-shot in a forked sandbox, from the run
// request to the result (the sandbox is made before the timer runs).
func BenchmarkForkedRun(b *testing.B) {
	bk, err := New(Config{CacheDir: "/tmp/pybox-test-cache", UIDBase: testUIDBase, CgroupParent: "pybox-test"})
	if err != nil {
		b.Fatal(err)
	}
	z, err := bk.StartZygote(context.Background(), sandbox.DefaultLimits(), "python3")
	if err != nil {
		b.Fatal(err)
	}
	defer z.Close()
	spec := &sandbox.Spec{Driver: true, Limits: sandbox.DefaultLimits()}
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		stdout := sandbox.NewCapture(1<<20, nil)
		sb, err := z.Spawn(context.Background(), spec, stdout, nil)
		if err != nil {
			b.Fatal(err)
		}
		w, r := sb.Control()
		var ready driver.Reply
		if err := driver.ReadFrame(r, &ready); err != nil {
			b.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
		b.StartTimer()
		driver.WriteFrame(w, &driver.Request{Op: "run", Code: "print(1+1)", Filename: "main.py"}) //nolint:errcheck
		w.Close()
		if res, err := sb.Wait(); err != nil || res.Stdout != "2\n" {
			b.Fatal(err, res)
		}
	}
}

// BenchmarkZygoteSpawnParallel: how many forked sandboxes per second one
// fork server makes with eight requests in flight.
func BenchmarkZygoteSpawnParallel(b *testing.B) {
	bk, err := New(Config{CacheDir: "/tmp/pybox-test-cache", UIDBase: testUIDBase, CgroupParent: "pybox-test"})
	if err != nil {
		b.Fatal(err)
	}
	z, err := bk.StartZygote(context.Background(), sandbox.DefaultLimits(), "python3")
	if err != nil {
		b.Fatal(err)
	}
	defer z.Close()
	spec := &sandbox.Spec{Driver: true, Limits: sandbox.DefaultLimits()}
	b.SetParallelism(4) // 4 × GOMAXPROCS(2) = 8 in flight
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			sb, err := z.Spawn(context.Background(), spec, nil, nil)
			if err != nil {
				b.Error(err)
				return
			}
			_, r := sb.Control()
			var ready driver.Reply
			driver.ReadFrame(r, &ready) //nolint:errcheck
			sb.Kill(sandbox.StatusKilled)
			<-sb.Done()
		}
	})
}
