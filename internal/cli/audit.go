package cli

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"

	"github.com/pybox-dev/pybox/internal/audit"
)

const auditUsage = `Usage: pybox audit verify [--dir DIR] [--json]

Checks the audit log's hash chain and reports the first broken, missing or
reordered record. Exit status: 0 intact, 1 damaged, 2 usage, 125 the log
could not be read.`

func cmdAudit(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, auditUsage)
		return exitUsage
	}
	switch args[0] {
	case "verify":
		return cmdAuditVerify(args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprintln(stdout, auditUsage)
		return 0
	}
	fmt.Fprintf(stderr, "pybox audit: unknown command %q\n\n%s\n", args[0], auditUsage)
	return exitUsage
}

func cmdAuditVerify(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("audit verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", auditDirDefault(), "directory of the audit log (the default of pybox serve's --audit-dir)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if code, ok := parseFlags(fs, args, auditUsage, stderr); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return usageError(stderr, fmt.Errorf("audit verify takes no arguments, got %q", fs.Args()))
	}
	rep, err := audit.Verify(*dir)
	if err != nil {
		fmt.Fprintf(stderr, "pybox: %v\n", err)
		return exitFailure
	}
	code := 0
	if !rep.OK() {
		code = 1
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return exitFailure
		}
		return code
	}
	for _, n := range rep.Notes {
		fmt.Fprintf(stdout, "note: %s\n", n)
	}
	for _, w := range rep.Warnings {
		fmt.Fprintf(stdout, "warning: %v\n", &w)
	}
	if p := rep.Problem; p != nil {
		fmt.Fprintf(stdout, "audit log broken at %v\n", p)
		if rep.Records > 0 {
			fmt.Fprintf(stdout, "the %d records before it are intact (seq %d-%d)\n", rep.Records, rep.FirstSeq, rep.LastSeq)
		}
		return code
	}
	if rep.Records == 0 {
		fmt.Fprintf(stdout, "ok: no records in %s\n", *dir)
		return 0
	}
	files := "files"
	if rep.Files == 1 {
		files = "file"
	}
	fmt.Fprintf(stdout, "ok: %d records (seq %d-%d) in %d %s; chain intact; last hash %s\n",
		rep.Records, rep.FirstSeq, rep.LastSeq, rep.Files, files, rep.LastHash)
	return 0
}
