package cli

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/pybox-dev/pybox/internal/config"
	"github.com/pybox-dev/pybox/internal/server"
)

const keyUsage = `Usage:
  pybox key new [--tenant NAME]   make a random API key and print it with its hash
  pybox key hash                  print the hash of a key read from standard input

pybox serve stores only a key's SHA-256: put the printed api-keys entry in
its config (or in --api-keys-file) and give the key to the client.`

func cmdKey(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, keyUsage)
		return exitUsage
	}
	switch args[0] {
	case "new":
		fs := flag.NewFlagSet("key new", flag.ContinueOnError)
		fs.SetOutput(stderr)
		tenant := fs.String("tenant", "default", "the tenant this key belongs to")
		if code, ok := parseFlags(fs, args[1:], keyUsage, stderr); !ok {
			return code
		}
		if fs.NArg() > 0 || strings.TrimSpace(*tenant) == "" {
			return usageError(stderr, fmt.Errorf("key new takes only --tenant NAME"))
		}
		key, sum := server.NewKey()
		entry, _ := json.Marshal(config.APIKey{Tenant: *tenant, SHA256: sum})
		fmt.Fprintf(stdout, "key: %s\nsha256: %s\napi-keys entry: %s\n", key, sum, entry)
		fmt.Fprintln(stderr, "pybox: the key is shown only now; the server keeps only its sha256")
		return 0
	case "hash":
		line, err := bufio.NewReader(io.LimitReader(stdin, 4096)).ReadString('\n')
		key := strings.TrimSpace(line)
		if key == "" {
			if err == nil || err == io.EOF {
				err = fmt.Errorf("no key on standard input")
			}
			return usageError(stderr, err)
		}
		fmt.Fprintln(stdout, server.HashKey(key))
		return 0
	}
	fmt.Fprintf(stderr, "pybox: unknown key command %q\n\n%s\n", args[0], keyUsage)
	return exitUsage
}
