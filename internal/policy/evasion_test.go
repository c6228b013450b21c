package policy_test

import (
	"strings"
	"testing"

	"github.com/pybox-dev/pybox/internal/policy"
	"github.com/pybox-dev/pybox/internal/sandboxtest"
)

// The security suite's Python-level tricks (subclass walks, assembled
// names, format traversal, frames, gc, ctypes, encoding cookies, NFKC
// identifiers, obfuscated exec, marshal, pickle, _posixsubprocess) are run
// against the kernel sandbox with no policy at all, and contained there.
// Here the same programs go through the strict policy, which must reject
// every one before it could run: the direct forms are what it is for.
func TestStrictRejectsTheSecuritySuitesPythonTricks(t *testing.T) {
	strict := policy.MustNew(policy.Rules{Profile: policy.Strict})
	env := &sandboxtest.Env{Canaries: &sandboxtest.Canaries{Secret: "s3cret", File: "/root/canary", EnvVar: "PYBOX_CANARY", Port: 9, UnixPath: "/tmp/canary.sock", Abstract: "canary"}, BlockedErrno: 1}
	cases := sandboxtest.PythonCases()
	if len(cases) < 10 {
		t.Fatalf("only %d Python cases: the suite changed", len(cases))
	}
	for _, c := range cases {
		// Without the shared prelude (our helpers, which import os and
		// ctypes themselves): only the trick is judged.
		code := env.Expand(strings.ReplaceAll(c.Code, "{{PRELUDE}}", ""), "/tmp")
		// A trick that uses a module the prelude imported would have to
		// import it itself.
		for _, m := range []string{"ctypes", "os", "sys"} {
			if strings.Contains(code, m+".") && !strings.Contains(code, "import "+m) {
				code = "import " + m + "\n" + code
			}
		}
		v := strict.Check([]byte(code))
		if v.Allowed {
			t.Errorf("%s: strict let it through:\n%s", c.Name, code)
			continue
		}
		var rules []string
		for _, x := range v.Violations {
			rules = append(rules, x.Rule+"@"+strings.TrimSpace(x.Text))
		}
		t.Logf("%s: %d violations, first %s", c.Name, len(v.Violations), rules[0])
	}
}
