package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/pybox-dev/pybox/internal/backend/docker"
)

const imageUsage = `Usage: pybox image build [--tag T] [--with-science] [--suite S] [--mirror URL]

Builds a local image for the docker backend, for hosts that reach no
registry: a Debian root file system made by debootstrap (run as root) with
python3 and, with --with-science, Debian's numpy, pandas and matplotlib,
imported through the Docker Engine API.`

func cmdImage(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "build" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
			fmt.Fprintln(stdout, imageUsage)
			return 0
		}
		fmt.Fprintln(stderr, imageUsage)
		return exitUsage
	}
	fs := flag.NewFlagSet("image build", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o docker.BuildOptions
	fs.StringVar(&o.Tag, "tag", docker.DefaultImage, "the image's name:tag (what --docker-image names)")
	fs.BoolVar(&o.Science, "with-science", false, "include Debian's python3-numpy, python3-pandas and python3-matplotlib")
	fs.StringVar(&o.Suite, "suite", "bookworm", "the Debian suite")
	fs.StringVar(&o.Mirror, "mirror", "", "the Debian mirror (default: this host's apt sources, else deb.debian.org)")
	fs.StringVar(&o.Dir, "dir", "", "where to make the root file system (default: a temporary directory, removed afterwards)")
	if code, ok := parseFlags(fs, args[1:], imageUsage, stderr); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return usageError(stderr, fmt.Errorf("image build: unexpected argument %q", fs.Arg(0)))
	}
	o.Progress = stderr
	if f, ok := stderr.(*os.File); ok {
		st, err := f.Stat()
		o.TTY = err == nil && st.Mode()&os.ModeCharDevice != 0 && os.Getenv("TERM") != "dumb"
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	id, err := docker.BuildImage(ctx, o)
	if err != nil {
		fmt.Fprintf(stderr, "pybox: image build: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "%s %s\n", o.Tag, id)
	return 0
}
