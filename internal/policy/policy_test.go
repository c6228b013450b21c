package policy

import (
	"fmt"
	"strings"
	"testing"
)

// rules lists the rule ids a check reported, in order.
func rules(v Verdict) []string {
	var out []string
	for _, x := range v.Violations {
		out = append(out, x.Rule)
	}
	return out
}

func checkCode(t *testing.T, r Rules, code string) Verdict {
	t.Helper()
	c, err := New(r)
	if err != nil {
		t.Fatal(err)
	}
	return c.Check([]byte(code))
}

// The origin document's own examples of attacks are each rejected by
// strict, with a readable reason.
func TestStrictRejectsOriginExamples(t *testing.T) {
	cases := []struct {
		code, rule, says string
	}{
		{"import os\nos.system('rm -rf /')", "import-denied", `Importing "os" is not allowed`},
		{"import subprocess\nsubprocess.run(['ls'])", "import-denied", "cannot start other programs"},
		{"import sys\nsys.exit(0)", "import-denied", `Importing "sys"`},
		{"import shutil\nshutil.rmtree('/')", "import-denied", `Importing "shutil"`},
		{"import socket\ns = socket.socket()", "import-denied", "the sandbox has no network. Remove the import."},
		{"import requests\nrequests.get('http://example.com')", "import-denied", "no network"},
		{"eval('1+1')", "call-denied", "Using eval() is not allowed"},
		{"exec('print(1)')", "call-denied", "Using exec() is not allowed"},
		{"compile('1', 'x', 'eval')", "call-denied", "Using compile()"},
		{"__import__('os')", "name-denied", `Using "__import__" is not allowed`},
		{"open('/etc/passwd').read()", "call-denied", "Using open() is not allowed"},
	}
	for _, tc := range cases {
		v := checkCode(t, Rules{Profile: Strict}, tc.code)
		if v.Allowed || len(v.Violations) == 0 {
			t.Errorf("%q allowed", tc.code)
			continue
		}
		x := v.Violations[0]
		if x.Rule != tc.rule || !strings.Contains(x.Message, tc.says) {
			t.Errorf("%q: got %s %q, want %s containing %q", tc.code, x.Rule, x.Message, tc.rule, tc.says)
		}
		if x.Line < 1 || x.Col < 1 || x.Text == "" {
			t.Errorf("%q: position or text missing: %+v", tc.code, x)
		}
	}
}

// Every evasion the issue names is caught in its direct form, with the
// rule that explains it.
func TestStrictCatchesEvasions(t *testing.T) {
	cases := []struct{ name, code, rule string }{
		{"__import__", "m = __import__('o' + 's')", "name-denied"},
		{"importlib", "import importlib\nimportlib.import_module('os')", "import-denied"},
		{"from importlib", "from importlib import import_module", "import-denied"},
		{"getattr computed", "n = 'sys' + 'tem'\ngetattr(obj, n)()", "dynamic-attribute"},
		{"setattr computed", "setattr(obj, name, 1)", "dynamic-attribute"},
		{"getattr dunder const", "getattr(f, '__globals__')", "dunder-access"},
		{"__builtins__", "__builtins__['eval']('1')", "name-denied"},
		{"__globals__", "def f(): pass\nf.__globals__", "dunder-access"},
		{"__subclasses__", "().__class__.__bases__[0].__subclasses__()", "dunder-access"},
		{"__code__", "(lambda: 0).__code__", "dunder-access"},
		{"gi_frame", "g = (x for x in [1])\ng.gi_frame.f_back", "dunder-access"},
		{"f_back", "frame.f_back.f_globals", "dunder-access"},
		{"format traversal", "'{0.__globals__}'.format(f)", "format-traversal"},
		{"format traversal nested", "'{x.__init__.__globals__[os]}'.format(x=obj)", "format-traversal"},
		{"sys._getframe", "import sys\nsys._getframe(1)", "import-denied"},
		{"_getframe attr", "s._getframe(1).f_globals", "dunder-access"},
		{"nfkc eval", "ｅｖａｌ('1')", "call-denied"},
		{"nfkc exec ligature-free", "ｅｘｅｃ('x=1')", "call-denied"},
		{"nfkc import", "import ｓｏｃｋｅｔ", "import-denied"},
		{"eval aliased", "f = eval\nf('1')", "call-denied"},
		{"exec obfuscated", "g = globals()\ng['__builtins__']", "call-denied"},
		{"dunder string key", "d['__builtins__']", "dunder-string"},
		{"ctypes", "import ctypes", "import-denied"},
		{"ctypes submodule", "import ctypes.util", "import-denied"},
		{"from os import", "from os import system", "import-denied"},
		{"os.path", "import os.path", "import-denied"},
		{"gc", "import gc\ngc.get_objects()", "import-denied"},
		{"inspect", "import inspect", "import-denied"},
		{"builtins", "import builtins\nbuiltins.eval('1')", "import-denied"},
		{"marshal", "import marshal", "import-denied"},
		{"pty", "import pty", "import-denied"},
		{"signal", "import signal", "import-denied"},
		{"multiprocessing", "from multiprocessing import Pool", "import-denied"},
		{"from urllib.request", "from urllib.request import urlopen", "import-denied"},
		{"in f-string", "f'{eval(\"1\")}'", "call-denied"},
		{"in lambda default", "f = lambda x=__import__('os'): x", "name-denied"},
		{"in decorator", "@exec\ndef f(): pass", "call-denied"},
		{"in match guard", "match x:\n    case 1 if eval('1'):\n        pass", "call-denied"},
		{"walrus", "(e := eval)", "call-denied"},
		{"vars", "vars(obj)['x']", "call-denied"},
		{"mro walk", "int.__mro__", "dunder-access"},
		{"class dict", "C.__dict__", "dunder-access"},
		{"tb_frame", "e.__traceback__.tb_frame", "dunder-access"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := checkCode(t, Rules{Profile: Strict}, tc.code)
			if v.Allowed {
				t.Fatalf("%q allowed", tc.code)
			}
			for _, x := range v.Violations {
				if x.Rule == tc.rule {
					return
				}
			}
			t.Errorf("%q: rules %v, want %s", tc.code, rules(v), tc.rule)
		})
	}
}

// Ordinary data-analysis code passes strict: the policy must not get in
// the way of what agents legitimately write.
func TestStrictAllowsOrdinaryCode(t *testing.T) {
	code := `
import math, json, re, statistics, collections, itertools, functools, datetime
from io import StringIO
import numpy as np
import pandas as pd
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
from dataclasses import dataclass

@dataclass
class Point:
    x: float
    y: float

    def norm(self) -> float:
        return math.hypot(self.x, self.y)

class Base:
    def __init__(self, n):
        self.n = n
    def __repr__(self):
        return f"{type(self).__name__}({self.n!r})"

class Child(Base):
    def __init__(self, n):
        super().__init__(n)

def describe(df: pd.DataFrame) -> str:
    return "{0} rows, {1:.2f} mean".format(len(df), df["v"].mean())

df = pd.read_csv(StringIO("v\n1\n2\n3"))
pattern = re.compile(r"\d+")
total = df.eval("v * 2").sum()
getattr(df, "shape")
print(describe(df), total, Child(3), Point(3, 4).norm())
match total:
    case 12 if total > 0:
        print("twelve")
    case _:
        pass
if __name__ == "__main__":
    print(f"{'nested'} {total:>{10}}")
`
	v := checkCode(t, Rules{Profile: Strict}, code)
	if !v.Allowed {
		t.Fatalf("ordinary code rejected: %+v", v.Violations)
	}
}

func TestAllViolationsReportedAtOnce(t *testing.T) {
	v := checkCode(t, Rules{Profile: Strict}, "import os\nimport socket\n\neval('1')\n")
	got := fmt.Sprint(rules(v))
	if got != "[import-denied import-denied call-denied]" {
		t.Fatalf("rules %s", got)
	}
	wantPos := [][2]int{{1, 8}, {2, 8}, {4, 1}} // an import is reported at the module name
	for i, x := range v.Violations {
		if x.Line != wantPos[i][0] || x.Col != wantPos[i][1] {
			t.Errorf("violation %d at %d:%d, want %v", i, x.Line, x.Col, wantPos[i])
		}
	}
	if v.Violations[1].Text != "import socket" {
		t.Errorf("text %q", v.Violations[1].Text)
	}
	if s := v.Summary(); !strings.Contains(s, "3 violations") || !strings.Contains(s, "line 4:1") {
		t.Errorf("summary %q", s)
	}
}

func TestColumnsCountCodePoints(t *testing.T) {
	v := checkCode(t, Rules{Profile: Strict}, "s = 'ééé'; eval(s)")
	if len(v.Violations) != 1 || v.Violations[0].Col != 12 {
		t.Fatalf("violations %+v, want one at column 12", v.Violations)
	}
}

func TestStandardProfile(t *testing.T) {
	for _, code := range []string{
		"import os\nprint(os.listdir('.'))",
		"import sys\nprint(sys.version)",
		"import shutil\nshutil.copy('a', 'b')",
		"with open('data.csv') as f:\n    print(f.read())",
	} {
		if v := checkCode(t, Rules{Profile: Standard}, code); !v.Allowed {
			t.Errorf("standard rejected %q: %+v", code, v.Violations)
		}
	}
	for code, rule := range map[string]string{
		"import socket":                     "import-denied",
		"import subprocess":                 "import-denied",
		"eval('1')":                         "call-denied",
		"import sys\nsys._getframe()":       "dunder-access",
		"import sys\nsys.modules['socket']": "dunder-access",
		"f.__globals__":                     "dunder-access",
	} {
		v := checkCode(t, Rules{Profile: Standard}, code)
		if v.Allowed || !containsRule(v, rule) {
			t.Errorf("standard on %q: %v, want %s", code, rules(v), rule)
		}
	}
}

func containsRule(v Verdict, rule string) bool {
	for _, x := range v.Violations {
		if x.Rule == rule {
			return true
		}
	}
	return false
}

func TestAllowlistProfile(t *testing.T) {
	r := Rules{Profile: Allowlist, AllowModules: []string{"math", "numpy", "pandas"}}
	if v := checkCode(t, r, "import math\nimport numpy.linalg\nfrom pandas import DataFrame"); !v.Allowed {
		t.Fatalf("allowed modules rejected: %+v", v.Violations)
	}
	v := checkCode(t, r, "import json")
	if v.Allowed || v.Violations[0].Rule != "import-not-allowed" || !strings.Contains(v.Violations[0].Message, "math, numpy, pandas") {
		t.Fatalf("json: %+v", v.Violations)
	}
	// The call and attribute rules still apply.
	if v := checkCode(t, r, "eval('1')"); v.Allowed {
		t.Fatal("eval allowed under allowlist")
	}
	if _, err := New(Rules{Profile: Allowlist}); err == nil {
		t.Fatal("allowlist without modules accepted")
	}
}

func TestConfiguredLists(t *testing.T) {
	r := Rules{Profile: Strict, DenyModules: []string{"numpy"}, AllowModules: []string{"sys"}, DenyCalls: []string{"input"}}
	if v := checkCode(t, r, "import numpy"); v.Allowed || !strings.Contains(v.Violations[0].Message, "configuration denies") {
		t.Errorf("configured deny: %+v", v)
	}
	if v := checkCode(t, r, "import sys"); !v.Allowed {
		t.Errorf("configured allow of sys: %+v", v.Violations)
	}
	if v := checkCode(t, r, "input()"); v.Allowed {
		t.Error("configured call deny ignored")
	}
	for _, bad := range []Rules{{Profile: "lax"}, {DenyModules: []string{"os; rm"}}, {AllowModules: []string{""}}} {
		if _, err := New(bad); err == nil {
			t.Errorf("rules %+v accepted", bad)
		}
	}
}

func TestOffChecksNothing(t *testing.T) {
	if v := checkCode(t, Rules{Profile: Off}, "import os\neval(')"); !v.Allowed {
		t.Fatalf("off rejected: %+v", v)
	}
}

// Code the parser cannot read is rejected: fail closed.
func TestUnparsableRejected(t *testing.T) {
	for _, code := range []string{"def f(:\n  pass", "x = = 1", "print('unterminated)", "if x:\nprint(1)"} {
		v := checkCode(t, Rules{Profile: Standard}, code)
		if v.Allowed || v.Violations[0].Rule != "syntax" || !strings.Contains(v.Violations[0].Message, "could not be parsed") {
			t.Errorf("%q: %+v", code, v)
		}
	}
}

func TestNonUTF8EncodingRejected(t *testing.T) {
	for _, code := range []string{
		"# -*- coding: latin-1 -*-\nprint('x')",
		"#!/usr/bin/python\n# vim: set fileencoding=utf-7 :\nprint(1)",
	} {
		v := checkCode(t, Rules{Profile: Standard}, code)
		if v.Allowed || v.Violations[0].Rule != "encoding" {
			t.Errorf("%q: %+v", code, v)
		}
	}
	for _, code := range []string{"# coding: utf-8\nprint(1)", "# -*- coding: UTF_8 -*-\nprint(1)", "x = 1\n# coding: latin-1\n"} {
		if v := checkCode(t, Rules{Profile: Standard}, code); !v.Allowed {
			t.Errorf("%q rejected: %+v", code, v)
		}
	}
}

func TestFormatFields(t *testing.T) {
	got := fmt.Sprint(formatFields("{0.a.b[1].c} {{x.y}} {k!r} {m.n:>{w.z}}"))
	if got != "[[a b c] [n] [z]]" {
		t.Fatalf("fields %s", got)
	}
}

func BenchmarkCheck200Lines(b *testing.B) {
	var sb strings.Builder
	for i := 0; i < 20; i++ {
		fmt.Fprintf(&sb, `import pandas as pd
import numpy as np
def summarize_%d(df, column="value"):
    """Mean and spread of one column."""
    values = [float(v) for v in df[column] if v is not None]
    mean = sum(values) / max(len(values), 1)
    spread = np.std(values) if values else 0.0
    label = f"{column}: mean={mean:.2f} sd={spread:.3f}"
    return {"mean": mean, "sd": spread, "label": label}
frame_%d = pd.DataFrame({"value": np.arange(10) * %d})
`, i, i, i)
	}
	src := []byte(sb.String())
	c := MustNew(Rules{Profile: Strict})
	if v := c.Check(src); !v.Allowed {
		b.Fatalf("benchmark code rejected: %+v", v.Violations)
	}
	b.SetBytes(int64(len(src)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c.Check(src)
	}
}
