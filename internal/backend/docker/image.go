package docker

import (
	"archive/tar"
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/moby/moby/client"
)

// BuildOptions describe `pybox image build`: a Debian root filesystem made
// by debootstrap, with python3, imported as an image through the Engine
// API, for hosts that reach no registry.
type BuildOptions struct {
	Tag     string // default DefaultImage
	Suite   string // default bookworm
	Mirror  string // default: the host's first Debian mirror in its apt sources, else deb.debian.org
	Science bool   // add Debian's numpy, pandas and matplotlib
	// Dir is where the root filesystem is made (and removed); default a
	// fresh directory under os.TempDir().
	Dir  string
	Host string // the daemon, as Config.Host
	// Progress receives one line per step (and, on a terminal, a live
	// status line).
	Progress io.Writer
	TTY      bool
}

// SciencePackages are Debian's packages behind --with-science.
var SciencePackages = []string{"python3-numpy", "python3-pandas", "python3-matplotlib"}

// BuildImage makes the image and returns its id. It runs debootstrap (an
// external tool, as root) as a subprocess; everything else goes through the
// API.
func BuildImage(ctx context.Context, o BuildOptions) (string, error) {
	if o.Tag == "" {
		o.Tag = DefaultImage
	}
	if o.Suite == "" {
		o.Suite = "bookworm"
	}
	if o.Mirror == "" {
		o.Mirror = HostMirror()
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	p := &progress{w: o.Progress, tty: o.TTY, t0: time.Now()}
	cli, err := Connect(o.Host)
	if err != nil {
		return "", err
	}
	defer cli.Close()
	if _, err := cli.Ping(ctx, client.PingOptions{}); err != nil {
		return "", unavailable(cli, err)
	}
	if _, err := exec.LookPath("debootstrap"); err != nil {
		return "", errors.New("debootstrap is not installed (apt-get install debootstrap)")
	}
	dir := o.Dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "pybox-rootfs-"); err != nil {
			return "", err
		}
	}
	defer os.RemoveAll(dir)

	include := []string{"python3"}
	if o.Science {
		include = append(include, SciencePackages...)
	}
	p.step("debootstrap %s (%s) from %s into %s", o.Suite, strings.Join(include, ", "), o.Mirror, dir)
	cmd := exec.CommandContext(ctx, "debootstrap", "--variant=minbase", "--include="+strings.Join(include, ","), o.Suite, dir, o.Mirror)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", err
	}
	var tail strings.Builder
	cmd.Stderr = &limitedWriter{b: &tail, n: 8 << 10}
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("starting debootstrap: %w", err)
	}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		fmt.Fprintln(&limitedWriter{b: &tail, n: 8 << 10}, line)
		if msg, ok := strings.CutPrefix(line, "I: "); ok {
			p.status("debootstrap: %s", msg)
		}
	}
	if err := cmd.Wait(); err != nil {
		return "", fmt.Errorf("debootstrap: %w\n%s", err, lastLines(tail.String(), 15))
	}
	p.step("debootstrap done")

	// Stream the tree as a tar archive straight into ImageImport.
	pr, pw := io.Pipe()
	var sent atomic.Int64
	go func() { pw.CloseWithError(writeTar(dir, &countWriter{w: pw, n: &sent})) }()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	stopTick := make(chan struct{})
	go func() {
		for {
			select {
			case <-tick.C:
				p.status("importing %s: %d MiB sent", o.Tag, sent.Load()>>20)
			case <-stopTick:
				return
			}
		}
	}()
	res, err := cli.ImageImport(ctx, client.ImageImportSource{Source: pr, SourceName: "-"}, o.Tag, client.ImageImportOptions{
		Message: "pybox image build: debootstrap " + o.Suite + " with " + strings.Join(include, ", "),
		Changes: []string{
			"ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
			"ENV LANG=C.UTF-8",
			`CMD ["python3"]`,
			"LABEL org.opencontainers.image.description=" + fmt.Sprintf("%q", "Debian "+o.Suite+" with "+strings.Join(include, ", ")+", made by pybox image build"),
		},
	})
	if err != nil {
		close(stopTick)
		pr.CloseWithError(err)
		return "", fmt.Errorf("importing the image: %w", err)
	}
	defer res.Close()
	var id string
	dec := json.NewDecoder(res)
	for {
		var m struct {
			Status      string `json:"status"`
			ErrorDetail *struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		if err := dec.Decode(&m); err != nil {
			if err == io.EOF {
				break
			}
			close(stopTick)
			return "", fmt.Errorf("importing the image: %w", err)
		}
		if m.ErrorDetail != nil {
			close(stopTick)
			return "", fmt.Errorf("importing the image: %s", m.ErrorDetail.Message)
		}
		if strings.HasPrefix(m.Status, "sha256:") {
			id = m.Status
		}
	}
	close(stopTick)
	p.step("imported %s (%d MiB) as %s", o.Tag, sent.Load()>>20, short(id))
	return id, nil
}

func short(id string) string {
	if len(id) > 19 {
		return id[:19]
	}
	return id
}

// HostMirror is the first Debian mirror of this host's apt sources (the
// archive it is meant to reach), or deb.debian.org.
func HostMirror() string {
	files, _ := filepath.Glob("/etc/apt/sources.list.d/*.sources")
	for _, f := range files {
		data, _ := os.ReadFile(f)
		for _, line := range strings.Split(string(data), "\n") {
			if u, ok := strings.CutPrefix(line, "URIs:"); ok {
				for _, m := range strings.Fields(u) {
					if strings.HasSuffix(strings.TrimSuffix(m, "/"), "/debian") {
						return m
					}
				}
			}
		}
	}
	lists, _ := filepath.Glob("/etc/apt/sources.list.d/*.list")
	for _, f := range append([]string{"/etc/apt/sources.list"}, lists...) {
		data, _ := os.ReadFile(f)
		for _, line := range strings.Split(string(data), "\n") {
			if f := strings.Fields(line); len(f) > 2 && f[0] == "deb" && strings.HasSuffix(strings.TrimSuffix(f[1], "/"), "/debian") {
				return f[1]
			}
		}
	}
	return "http://deb.debian.org/debian"
}

// skipInImage are parts of a fresh debootstrap tree an image does not need.
var skipInImage = []string{"var/cache/apt/archives/", "var/lib/apt/lists/", "dev/", "proc/", "sys/", "debootstrap/"}

// writeTar writes dir as a tar stream: owners, modes, links and hard links
// kept; device nodes, caches and package lists left out.
func writeTar(dir string, w io.Writer) error {
	tw := tar.NewWriter(w)
	seen := map[[2]uint64]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			return nil
		}
		name := filepath.ToSlash(rel)
		for _, s := range skipInImage {
			if strings.HasPrefix(name+"/", s) && name+"/" != s {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if info.Mode()&(fs.ModeDevice|fs.ModeCharDevice|fs.ModeSocket|fs.ModeNamedPipe) != 0 {
			return nil
		}
		link := ""
		if info.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		hdr, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return err
		}
		hdr.Name = name
		if d.IsDir() {
			hdr.Name += "/"
		}
		hdr.Uname, hdr.Gname = "", ""
		if key, nlink, ok := inode(info); ok && info.Mode().IsRegular() && nlink > 1 {
			if first, ok := seen[key]; ok {
				hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeLink, first, 0
				return tw.WriteHeader(hdr)
			}
			seen[key] = name
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if info.Mode().IsRegular() {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			if _, err := io.Copy(tw, f); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

type countWriter struct {
	w io.Writer
	n *atomic.Int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n.Add(int64(n))
	return n, err
}

type limitedWriter struct {
	b *strings.Builder
	n int
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if l.b.Len() > l.n {
		s := l.b.String()
		l.b.Reset()
		l.b.WriteString(s[len(s)-l.n/2:])
	}
	l.b.Write(p)
	return len(p), nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// progress prints steps as lines and, on a terminal, the current status on
// one line that is redrawn.
type progress struct {
	w   io.Writer
	tty bool
	t0  time.Time
	// on a non-terminal: the kinds of step printed, and when the last line was
	seen   map[string]bool
	lastAt time.Time
}

func (p *progress) elapsed() string { return fmt.Sprintf("[%3.0fs]", time.Since(p.t0).Seconds()) }

func (p *progress) step(format string, args ...any) {
	if p.tty {
		fmt.Fprint(p.w, "\r\033[K")
	}
	fmt.Fprintf(p.w, "%s %s\n", p.elapsed(), fmt.Sprintf(format, args...))
}

func (p *progress) status(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if p.tty {
		if len(msg) > 100 {
			msg = msg[:100] + "…"
		}
		fmt.Fprintf(p.w, "\r\033[K%s %s", p.elapsed(), msg)
		return
	}
	// Not a terminal: a line for each kind of step the first time it
	// comes (debootstrap retrieves, validates, extracts, unpacks and
	// configures hundreds of packages), and otherwise one every 10 s.
	kind := msg
	if rest, ok := strings.CutPrefix(msg, "debootstrap: "); ok {
		kind, _, _ = strings.Cut(rest, " ")
	}
	if !p.seen[kind] || time.Since(p.lastAt) > 10*time.Second {
		if p.seen == nil {
			p.seen = map[string]bool{}
		}
		p.seen[kind], p.lastAt = true, time.Now()
		fmt.Fprintf(p.w, "%s %s\n", p.elapsed(), msg)
	}
}
