package pyast

import (
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
)

// devDump renders a tree as "Type@line:col0 ..." for eyeballing; col0 is
// 0-based like CPython's col_offset (in code points).
func devDump(m Node) string {
	var out []string
	Walk(m, func(n Node) bool {
		t := reflect.TypeOf(n).Elem().Name()
		p := n.Position()
		extra := ""
		switch n := n.(type) {
		case *Name:
			extra = "=" + n.ID
		case *Constant:
			extra = fmt.Sprintf("=%q", n.Str)
		}
		out = append(out, fmt.Sprintf("%s@%d:%d%s", t, p.Line, p.Col-1, extra))
		return true
	})
	return strings.Join(out, " ")
}

// TestDevDump prints the tree of the file named by PYAST_DUMP.
func TestDevDump(t *testing.T) {
	f := os.Getenv("PYAST_DUMP")
	if f == "" {
		t.Skip("PYAST_DUMP not set")
	}
	src, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Parse(src)
	if err != nil {
		se := err.(*SyntaxError)
		fmt.Printf("ERR %d:%d %s\n", se.Pos.Line, se.Pos.Col, se.Msg)
		return
	}
	fmt.Println(devDump(m))
}
