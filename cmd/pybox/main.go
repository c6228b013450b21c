// Command pybox runs untrusted Python in a layered sandbox.
package main

import (
	"os"

	"github.com/pybox-dev/pybox/internal/cli"
	"github.com/pybox-dev/pybox/internal/nsinit"
	"github.com/pybox-dev/pybox/internal/reexec"
)

func main() {
	reexec.Register(nsinit.Name, nsinit.Main)
	if reexec.Init() {
		return
	}
	os.Exit(cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
