package cli

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pybox-dev/pybox/internal/audit"
)

func auditLog(t *testing.T, n int) string {
	t.Helper()
	dir := t.TempDir()
	l, err := audit.Open(audit.Options{Dir: dir, MaxFileBytes: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if err := l.Append(&audit.Record{Event: audit.EventExecute, Outcome: audit.OutcomeExecuted, Tenant: "t", Message: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

func runAudit(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = Main(append([]string{"audit"}, args...), nil, &out, &errb)
	return code, out.String(), errb.String()
}

func TestAuditVerifyOK(t *testing.T) {
	dir := auditLog(t, 30)
	code, out, errs := runAudit("verify", "--dir", dir)
	if code != 0 || !strings.HasPrefix(out, "ok: 30 records (seq 1-30) in ") || !strings.Contains(out, "chain intact; last hash ") {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	t.Log(out)
}

func TestAuditVerifyBroken(t *testing.T) {
	dir := auditLog(t, 30)
	path := filepath.Join(dir, "audit-00000000000000000006.jsonl")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(data), "\n")
	lines[1] = strings.Replace(lines[1], `"tenant":"t"`, `"tenant":"x"`, 1)
	os.WriteFile(path, []byte(strings.Join(lines, "")), 0o600)

	code, out, errs := runAudit("verify", "--dir", dir)
	want := "audit log broken at audit-00000000000000000006.jsonl:2 (seq 7): record was changed after it was written"
	if code != 1 || !strings.HasPrefix(out, want) {
		t.Fatalf("exit %d\n%s%s\nwant %s", code, out, errs, want)
	}
	t.Log(out)
}

func TestAuditVerifyUsage(t *testing.T) {
	for _, args := range [][]string{{}, {"check"}, {"verify", "--nope"}, {"verify", "extra"}} {
		if code, out, errs := runAudit(args...); code != exitUsage {
			t.Errorf("pybox audit %q: exit %d\n%s%s", args, code, out, errs)
		}
	}
	if code, _, _ := runAudit("verify", "--dir", filepath.Join(t.TempDir(), "none")); code != exitFailure {
		t.Errorf("missing dir: exit %d", code)
	}
}
