// Command coldstart measures a cold `pybox run` side by side with bare
// python3 and with other ways of isolating the same interpreter (bwrap,
// unshare, docker run when a daemon and image are present), interleaving
// the candidates round by round so that machine noise hits them alike.
// It prints a Markdown table of latencies and ratios to bare python3, and
// the sandbox's own breakdown of where its setup time goes.
//
//	go run ./bench/coldstart -n 100
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"github.com/pybox-dev/pybox/bench/internal/benchutil"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"
)

type candidate struct {
	name string
	argv []string
	took []time.Duration
}

func main() {
	n := flag.Int("n", 60, "runs per candidate")
	python := flag.String("python", "", "interpreter (default: the real executable behind python3 on PATH)")
	pybox := flag.String("pybox", "", "pybox binary (default: build one)")
	code := flag.String("code", "print(1+1)", "program to run")
	image := flag.String("docker-image", "pybox-python:bench", "docker image for the docker run candidate")
	flag.Parse()

	if *python == "" {
		out, err := exec.Command("python3", "-I", "-c", "import sys; print(sys.executable)").Output()
		check(err)
		*python = strings.TrimSpace(string(out))
	}
	if *pybox == "" {
		dir, err := os.MkdirTemp("", "pybox-bench-")
		check(err)
		defer os.RemoveAll(dir)
		*pybox = filepath.Join(dir, "pybox")
		build := exec.Command("go", "build", "-o", *pybox, "./cmd/pybox")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		build.Stderr = os.Stderr
		check(build.Run())
	}

	cands := []*candidate{
		{name: "python3 -I (bare)", argv: []string{*python, "-I", "-c", *code}},
		{name: "pybox run", argv: []string{*pybox, "run", "--python", *python, "-c", *code}},
	}
	if bw, err := exec.LookPath("bwrap"); err == nil {
		cands = append(cands, &candidate{name: "bwrap (same namespaces, ro binds)", argv: bwrapArgv(bw, *python, *code)})
	}
	if un, err := exec.LookPath("unshare"); err == nil {
		cands = append(cands, &candidate{name: "unshare -Urmpin --fork", argv: []string{un, "-Urmpin", "--fork", "--mount-proc", *python, "-I", "-c", *code}})
	}
	if dk, err := exec.LookPath("docker"); err == nil && exec.Command(dk, "image", "inspect", *image).Run() == nil {
		cands = append(cands, &candidate{name: "docker run --rm --network none", argv: []string{dk, "run", "--rm", "--network", "none", *image, "python3", "-I", "-c", *code}})
	}

	// Warm-up: fill page caches and pybox's interpreter cache.
	for _, c := range cands {
		for i := 0; i < 3; i++ {
			runOnce(c.argv)
		}
	}
	for i := 0; i < *n; i++ {
		for _, c := range cands {
			d, err := runOnce(c.argv)
			if err != nil {
				fmt.Fprintf(os.Stderr, "%s: %v\n", c.name, err)
				os.Exit(1)
			}
			c.took = append(c.took, d)
		}
	}

	host, _ := os.Hostname()
	fmt.Printf("Cold start of `%s`, %d runs each, interleaved; %s, %d CPUs, %s, %s\n\n", *code, *n, runtime.GOARCH, runtime.NumCPU(), benchutil.Kernel(), host)
	fmt.Println("| candidate | p50 ms | p90 ms | mean ms | p50 ratio to bare |")
	fmt.Println("|---|---:|---:|---:|---:|")
	base := benchutil.Pct(cands[0].took, 50)
	for _, c := range cands {
		fmt.Printf("| %s | %.1f | %.1f | %.1f | %.2fx |\n", c.name, benchutil.MS(benchutil.Pct(c.took, 50)), benchutil.MS(benchutil.Pct(c.took, 90)), benchutil.MS(benchutil.Mean(c.took)), float64(benchutil.Pct(c.took, 50))/float64(base))
	}
	breakdown(*pybox, *python, *code, *n)
}

func bwrapArgv(bw, python, code string) []string {
	argv := []string{bw, "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
		"--ro-bind", "/usr", "/usr", "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"}
	for _, l := range []string{"/lib", "/lib64", "/bin"} {
		if t, err := os.Readlink(l); err == nil {
			argv = append(argv, "--symlink", t, l)
		}
	}
	// An interpreter outside /usr (pyenv) is bound where it lives.
	if !strings.HasPrefix(python, "/usr/") {
		prefix := filepath.Dir(filepath.Dir(python))
		argv = append(argv, "--ro-bind", prefix, prefix)
	}
	return append(argv, python, "-I", "-c", code)
}

func runOnce(argv []string) (time.Duration, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	t := time.Now()
	err := cmd.Run()
	d := time.Since(t)
	if err != nil {
		return d, fmt.Errorf("%v: %s", err, out.String())
	}
	return d, nil
}

var (
	preparedRe = regexp.MustCompile(`msg=prepared sandbox_id=\S+ us=(\d+)`)
	execRe     = regexp.MustCompile(`step="(\d+) starting the program \(report at (\d+)µs\)"`)
)

// breakdown runs pybox with --debug and --json to show where the time of a
// sandboxed run goes: the sandbox's own setup until the program's
// interpreter is started (host preparation, clone into new namespaces, the
// init and its steps), and the whole life of the sandbox.
func breakdown(pybox, python, code string, n int) {
	var setup, steps, start, wall []float64
	for i := 0; i < n; i++ {
		cmd := exec.Command(pybox, "run", "--json", "--debug", "--python", python, "-c", code)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		check(cmd.Run())
		var res struct {
			WallMS  float64 `json:"wall_ms"`
			SetupMS float64 `json:"setup_ms"`
		}
		check(json.Unmarshal(stdout.Bytes(), &res))
		p := preparedRe.FindStringSubmatch(stderr.String())
		e := execRe.FindStringSubmatch(stderr.String())
		if p == nil || e == nil {
			check(fmt.Errorf("no timings in --debug output:\n%s", stderr.String()))
		}
		prep, _ := strconv.ParseFloat(p[1], 64)
		stepUS, _ := strconv.ParseFloat(e[1], 64)
		execAt, _ := strconv.ParseFloat(e[2], 64)
		setup = append(setup, (prep+execAt)/1000)
		steps = append(steps, stepUS/1000)
		start, wall = append(start, res.SetupMS), append(wall, res.WallMS)
	}
	fmt.Printf("\nInside `pybox run` (medians of %d runs): the sandbox is set up and the program's interpreter started %.1f ms "+
		"after Run begins (host preparation, clone into new namespaces, the init's start-up and its steps, which take %.2f ms from "+
		"mounts to the fork of the program); setup_ms reports %.1f ms from the clone; the sandbox is gone %.1f ms after the clone.\n",
		n, median(setup), median(steps), median(start), median(wall))
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[len(s)/2]
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "coldstart:", err)
		os.Exit(1)
	}
}
