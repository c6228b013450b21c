// Command docker benchmarks pybox's docker backend against the Docker CLI,
// side by side in one run, with the same snippet and image:
//
//   - a session cell on the docker backend (a request frame to a running
//     container's driver over the attached connection), against
//     `docker exec` of the snippet in a running container;
//   - a one-shot from the warm pool (a container made ahead, its driver
//     ready; the measured part is what a request waits for), against
//     `docker run --rm` of the snippet.
//
// It needs a running daemon and the image (pybox image build, or
// bench/docker-image.sh). Numbers are wall-clock latencies on this machine;
// the docker CLI candidates pay the CLI's own start-up too, as a user's
// shell would.
//
//	go run ./bench/docker [-n 200] [-runs 20] [-image pybox-python:latest]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"github.com/pybox-dev/pybox/bench/internal/benchutil"
	"github.com/pybox-dev/pybox/internal/backend/docker"
	"github.com/pybox-dev/pybox/internal/sandbox"
	"github.com/pybox-dev/pybox/internal/session"
)

const code = "print(1+1)"

func main() {
	n := flag.Int("n", 200, "session cells and docker execs")
	oneshots := flag.Int("oneshots", 60, "warm one-shots")
	runs := flag.Int("runs", 20, "docker run --rm containers")
	image := flag.String("image", docker.DefaultImage, "base image for every candidate")
	flag.Parse()
	if err := run(*n, *oneshots, *runs, *image); err != nil {
		fmt.Fprintln(os.Stderr, "bench/docker:", err)
		os.Exit(1)
	}
}

type series struct {
	name string
	d    []time.Duration
}

func (s *series) add(d time.Duration) { s.d = append(s.d, d) }

func (s *series) line() string {
	return fmt.Sprintf("| %s | %d | %.2f | %.2f | %.2f |", s.name, len(s.d),
		benchutil.MS(benchutil.Pct(s.d, 50)), benchutil.MS(benchutil.Pct(s.d, 90)), benchutil.MS(benchutil.Mean(s.d)))
}

func run(n, oneshots, runs int, image string) error {
	ctx := context.Background()
	b, err := docker.New(ctx, docker.Config{Image: image})
	if err != nil {
		return err
	}
	defer b.Close()
	lim := sandbox.DefaultLimits()
	start := session.Adapt(b.Start)

	// Session cells.
	conn, err := session.Dial(ctx, start, lim, "")
	if err != nil {
		return err
	}
	sess := session.New(conn, session.Options{})
	cells := &series{name: "docker backend: session cell"}
	for i := 0; i < n+10; i++ {
		t0 := time.Now()
		r, err := sess.Execute(ctx, code, 10*time.Second, nil)
		d := time.Since(t0)
		if err != nil || r.Status != "ok" || r.Stdout != "2\n" {
			return fmt.Errorf("cell: %v %+v", err, r)
		}
		if i >= 10 { // warm-up
			cells.add(d)
		}
	}
	sess.Close("bench done")

	// Warm one-shots: containers made ahead, as the server's pool does,
	// then one request each. "quiet": each request comes after the
	// previous sandbox's teardown; "back-to-back": the daemon is still
	// removing the previous container (its CPU competes with the request).
	warm := &series{name: "docker backend: warm one-shot (quiet)"}
	churn := &series{name: "docker backend: warm one-shot (back-to-back)"}
	const batch = 10
	for done := 0; done < 2*oneshots; done += batch {
		s := warm
		if done >= oneshots {
			s = churn
		}
		var ready []*session.Conn
		for i := 0; i < batch; i++ {
			c, err := session.Dial(ctx, start, lim, "")
			if err != nil {
				return err
			}
			ready = append(ready, c)
		}
		time.Sleep(500 * time.Millisecond) // let the last one's start-up settle
		for _, c := range ready {
			t0 := time.Now()
			res, err := c.Run(ctx, &sandbox.Spec{Code: []byte(code), Limits: lim})
			d := time.Since(t0)
			if err != nil || res.Status != sandbox.StatusOK || res.Stdout != "2\n" {
				return fmt.Errorf("one-shot: %v %+v", err, res)
			}
			s.add(d)
			if s == warm {
				<-c.Box().Done()
			}
		}
		for _, c := range ready {
			<-c.Box().Done()
		}
	}

	// The CLI peers, same image and snippet.
	name := fmt.Sprintf("pybox-bench-exec-%d", os.Getpid())
	if out, err := exec.Command("docker", "run", "-d", "--rm", "--network", "none", "--name", name, image, "sleep", "infinity").CombinedOutput(); err != nil {
		// The image may have no sleep: keep python3 waiting instead.
		if out2, err2 := exec.Command("docker", "run", "-d", "--rm", "--network", "none", "--name", name, image,
			"python3", "-c", "import time; time.sleep(1e9)").CombinedOutput(); err2 != nil {
			return fmt.Errorf("docker run -d: %v: %s / %s", err2, out, out2)
		}
	}
	defer exec.Command("docker", "rm", "-f", name).Run() //nolint:errcheck
	dexec := &series{name: "`docker exec` (running container)"}
	for i := 0; i < n+3; i++ {
		d, err := timeCmd("docker", "exec", name, "python3", "-I", "-c", code)
		if err != nil {
			return err
		}
		if i >= 3 {
			dexec.add(d)
		}
	}
	drun := &series{name: "`docker run --rm --network none`"}
	for i := 0; i < runs+1; i++ {
		d, err := timeCmd("docker", "run", "--rm", "--network", "none", image, "python3", "-I", "-c", code)
		if err != nil {
			return err
		}
		if i >= 1 {
			drun.add(d)
		}
	}

	ver, _ := exec.Command("docker", "version", "--format", "{{.Server.Version}}").Output()
	fmt.Printf("Machine: %d CPUs, %s, docker %s, image %s; snippet %q.\n\n", runtime.NumCPU(), benchutil.Kernel(), strings.TrimSpace(string(ver)), image, code)
	fmt.Println("| candidate | n | p50 ms | p90 ms | mean ms |")
	fmt.Println("|---|---|---|---|---|")
	for _, s := range []*series{cells, dexec, warm, churn, drun} {
		fmt.Println(s.line())
	}
	p50 := func(s *series) float64 { return benchutil.MS(benchutil.Pct(s.d, 50)) }
	fmt.Printf("\nSession cell vs docker exec: %.0f× faster at p50 (%.2f vs %.1f ms).\n", p50(dexec)/p50(cells), p50(cells), p50(dexec))
	fmt.Printf("Warm one-shot vs docker run: %.0f× faster at p50 (%.2f vs %.1f ms); back-to-back %.0f× (%.2f ms).\n",
		p50(drun)/p50(warm), p50(warm), p50(drun), p50(drun)/p50(churn), p50(churn))
	return nil
}

func timeCmd(argv ...string) (time.Duration, error) {
	t0 := time.Now()
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	d := time.Since(t0)
	if err != nil || strings.TrimSpace(string(out)) != "2" {
		return 0, fmt.Errorf("%s: %v: %s", strings.Join(argv[:2], " "), err, benchutil.Trim(string(out), 300))
	}
	return d, nil
}
