package pyast

import (
	"errors"
	"os"
	"strings"
	"testing"
)

// FuzzParse checks that no input panics or reaches the internal-error
// fallback, that errors are *SyntaxError with a position, and that Walk
// visits every tree.
func FuzzParse(f *testing.F) {
	for _, s := range validSnippets {
		f.Add([]byte(s))
	}
	for _, c := range invalidSnippets {
		f.Add([]byte(c.src))
	}
	for _, c := range treeCases {
		f.Add([]byte(c.src))
	}
	if cell, err := os.ReadFile("testdata/cell200.py"); err == nil {
		f.Add(cell)
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		m, err := Parse(src)
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("error %T, want *SyntaxError", err)
			}
			if strings.HasPrefix(se.Msg, "internal") {
				t.Fatalf("%q: %s", src, se.Msg)
			}
			if se.Pos.Line < 1 || se.Pos.Col < 1 {
				t.Fatalf("%q: error position %v", src, se.Pos)
			}
			return
		}
		Walk(m, func(n Node) bool {
			if p := n.Position(); p.Line < 1 || p.Col < 1 {
				t.Fatalf("%q: %T at %v", src, n, p)
			}
			return true
		})
	})
}
