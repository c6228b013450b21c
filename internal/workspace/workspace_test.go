package workspace

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckPath(t *testing.T) {
	long := strings.Repeat("x", MaxNameLen)
	deep := strings.Repeat("d/", MaxDepth-1) + "f"
	for _, tc := range []struct {
		name, path string
		ok         bool
		hint       string // part of the message a client acts on
	}{
		{"plain", "input.csv", true, ""},
		{"nested", "data/raw/input.csv", true, ""},
		{"unicode", "données/résumé 1.txt", true, ""},
		{"spaces", "my data/a b.txt", true, ""},
		{"dotfile", ".config", true, ""},
		{"dots in name", "a..b/...", true, ""},
		{"backslash", `a\b`, true, ""},
		{"longest name", long, true, ""},
		{"deepest", deep, true, ""},
		{"empty", "", false, "e.g. data/input.csv"},
		{"absolute", "/etc/passwd", false, "relative to the workspace"},
		{"root", "/", false, "relative"},
		{"dotdot", "..", false, `".."`},
		{"dotdot inside", "a/../../etc", false, `".."`},
		{"dotdot last", "a/..", false, `".."`},
		{"dot", ".", false, `"."`},
		{"dot inside", "a/./b", false, `"."`},
		{"double slash", "a//b", false, "empty component"},
		{"trailing slash", "a/", false, "empty component"},
		{"NUL", "a\x00b", false, "NUL"},
		{"name too long", long + "x", false, "255"},
		{"path too long", strings.Repeat(long+"/", 17), false, "4096"},
		{"too deep", deep + "/g", false, "components"},
		{"temp prefix", "a/" + tempPrefix + "123", false, "reserved"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckPath(tc.path)
			if tc.ok {
				if err != nil {
					t.Fatalf("CheckPath(%q) = %v, want nil", tc.path, err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidPath) {
				t.Fatalf("CheckPath(%q) = %v, want ErrInvalidPath", tc.path, err)
			}
			if !strings.Contains(err.Error(), tc.hint) {
				t.Errorf("CheckPath(%q) = %q, want it to mention %q", tc.path, err, tc.hint)
			}
		})
	}
}
