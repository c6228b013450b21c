// Command pybox runs untrusted Python in a layered sandbox.
package main

import (
	"os"

	"github.com/pybox-dev/pybox/internal/cli"
	// The sandbox init, which this binary also is when re-executed inside
	// new namespaces, starts from this package's initialisation, before
	// the packages the command needs (see nsinit's init).
	_ "github.com/pybox-dev/pybox/internal/nsinit"
	"github.com/pybox-dev/pybox/internal/reexec"
)

func main() {
	if reexec.Init() {
		return
	}
	os.Exit(cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
