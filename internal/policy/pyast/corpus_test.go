package pyast

import (
	"bufio"
	"crypto/sha1"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// cpythonRejectsWeAccept lists corpus files CPython refuses that pyast
// parses, each with the reason that is acceptable.
var cpythonRejectsWeAccept = map[string]string{}

type corpusRecord struct {
	Path  string   `json:"path"`
	OK    bool     `json:"ok"`
	UTF8  bool     `json:"utf8"`
	ASCII bool     `json:"ascii"`
	Enc   string   `json:"enc"` // the coding cookie's codec, or utf-8
	N     int      `json:"n"`
	Hash  string   `json:"hash"`
	Err   string   `json:"err"`
	Seq   []string `json:"seq"`
}

// python3 finds the CPython the corpus test compares against.
func python3(t testing.TB) string {
	if p := os.Getenv("PYAST_PYTHON"); p != "" {
		return p // another CPython, e.g. 3.13 with its own stdlib
	}
	for _, p := range []string{"python3", "/root/.pyenv/versions/3.11.7/bin/python3"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	t.Skip("python3 not found: the differential test needs CPython")
	return ""
}

// TestCPythonCorpus parses every .py file of CPython's standard library
// and test suite with both CPython (testdata/cpython_tree.py) and Parse,
// and requires the same verdict and, for accepted files, the same node
// sequence: types, positions, names, operators and literal values, in
// Walk order. Third-party packages (site-packages) are not part of it.
func TestCPythonCorpus(t *testing.T) {
	if testing.Short() {
		t.Skip("differential corpus test skipped in -short mode")
	}
	py := python3(t)
	out, err := exec.Command(py, "-c", "import sys, sysconfig; print(sysconfig.get_paths()['stdlib']); print(sys.version.split()[0])").Output()
	if err != nil {
		t.Skipf("python3 unusable: %v", err)
	}
	lines := strings.Fields(string(out))
	root := lines[0]
	if r := os.Getenv("PYAST_CORPUS"); r != "" {
		root = r // for one-off runs over other code, e.g. site-packages
	}
	t.Logf("corpus: %s (CPython %s)", root, lines[1])

	cmd := exec.Command(py, "testdata/cpython_tree.py", "hash", root)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}

	var (
		mu                                 sync.Mutex
		files, compared, nodes, bothReject int
		nonUTF8, excused                   int
		mismatched                         []string
		errs                               []string
		recs                               = make(chan corpusRecord, 64)
		wg                                 sync.WaitGroup
	)
	for w := 0; w < runtime.GOMAXPROCS(0); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range recs {
				rel := strings.TrimPrefix(r.Path, root+"/")
				src, err := os.ReadFile(r.Path)
				if err != nil {
					t.Error(err)
					continue
				}
				m, perr := Parse(src)
				mu.Lock()
				files++
				switch {
				case !r.OK && perr == nil:
					if _, ok := cpythonRejectsWeAccept[rel]; ok {
						excused++
					} else {
						errs = append(errs, fmt.Sprintf("%s: CPython rejects (%s), Parse accepts", rel, r.Err))
					}
				case !r.OK:
					bothReject++
				case !r.UTF8 || r.Enc != "utf-8" && r.Enc != "utf-8-sig" && !r.ASCII:
					// CPython decodes with the coding cookie's codec;
					// pyast reads UTF-8 only, so it must refuse.
					if perr == nil {
						errs = append(errs, fmt.Sprintf("%s: not UTF-8 (coding %s) but Parse accepts", rel, r.Enc))
					}
					nonUTF8++
				case perr != nil:
					se := perr.(*SyntaxError)
					errs = append(errs, fmt.Sprintf("%s:%d:%d: Parse: %s", rel, se.Pos.Line, se.Pos.Col, se.Msg))
				default:
					seq := corpusEntries(m)
					if len(seq) != r.N || seqHash(seq) != r.Hash {
						mismatched = append(mismatched, r.Path)
					} else {
						compared++
						nodes += len(seq)
					}
				}
				mu.Unlock()
			}
		}()
	}
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	for sc.Scan() {
		var r corpusRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("helper output: %v", err)
		}
		recs <- r
	}
	close(recs)
	wg.Wait()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("helper: %v", err)
	}
	for _, e := range errs {
		t.Error(e)
	}
	if len(mismatched) > 0 {
		t.Errorf("%d files parse to a different tree", len(mismatched))
		showMismatches(t, py, root, mismatched)
	}
	t.Logf("%d files: %d compared equal (%d nodes), %d rejected by both, %d not UTF-8 or with another coding cookie (rejected, as required), %d accepted despite CPython (listed with reasons), %d differ, %d other failures",
		files, compared, nodes, bothReject, nonUTF8, excused, len(mismatched), len(errs))
	if files < 1000 && os.Getenv("PYAST_CORPUS") == "" {
		t.Errorf("only %d files in the corpus", files)
	}
}

// showMismatches asks the helper for the full sequences of a few files
// and prints where each first differs.
func showMismatches(t *testing.T, py, root string, paths []string) {
	if len(paths) > 15 {
		paths = paths[:15]
	}
	out, err := exec.Command(py, append([]string{"testdata/cpython_tree.py", "full"}, paths...)...).Output()
	if err != nil {
		t.Fatalf("helper: %v", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var r corpusRecord
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatal(err)
		}
		src, _ := os.ReadFile(r.Path)
		m, err := Parse(src)
		if err != nil {
			t.Errorf("%s: %v", r.Path, err)
			continue
		}
		ours := corpusEntries(m)
		i := 0
		for i < len(ours) && i < len(r.Seq) && ours[i] == r.Seq[i] {
			i++
		}
		lo := max(0, i-4)
		t.Errorf("%s: first difference at node %d\n  cpython: %s\n  pyast:   %s", strings.TrimPrefix(r.Path, root+"/"), i,
			strings.Join(r.Seq[lo:min(i+4, len(r.Seq))], "  "), strings.Join(ours[lo:min(i+4, len(ours))], "  "))
	}
}

func seqHash(seq []string) string {
	h := sha1.New()
	for i, s := range seq {
		if i > 0 {
			h.Write([]byte{'\n'})
		}
		h.Write([]byte(s))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// corpusEntries renders a tree the way testdata/cpython_tree.py renders
// CPython's; keep the two in step.
func corpusEntries(m *Module) []string { return treeEntries(m, false) }

// treeEntries renders every node; allPos keeps the f-string parts'
// positions (which CPython 3.12+ records precisely).
func treeEntries(m *Module, allPos bool) []string {
	var out []string
	// Nodes whose CPython 3.11 position is not meaningful; see nopos in
	// testdata/cpython_tree.py.
	fparts := map[Node]bool{}
	Walk(m, func(n Node) bool {
		name, extra := corpusType(n)
		pos := "-"
		switch n.(type) {
		case *Module, *Arguments, *WithItem, *Comprehension, *MatchCase:
		default:
			if allPos || !fparts[n] {
				pos = fmt.Sprintf("%d:%d", n.Position().Line, n.Position().Col)
			}
		}
		switch n := n.(type) {
		case *JoinedStr:
			for _, v := range n.Values {
				fparts[v] = true
			}
		case *FormattedValue:
			if _, ok := n.Value.(*Tuple); ok {
				fparts[n.Value] = true
			}
			if n.FormatSpec != nil {
				fparts[n.FormatSpec] = true
			}
		}
		out = append(out, name+"@"+pos+"|"+extra)
		return true
	})
	return out
}

func corpusVal(s string) string {
	ok := len(s) <= 40
	for i := 0; ok && i < len(s); i++ {
		c := s[i]
		ok = c >= 0x21 && c <= 0x7e && c != '|' && c != '\\'
	}
	if ok {
		return s
	}
	h := sha1.Sum([]byte(s))
	return "#" + hex.EncodeToString(h[:])[:16]
}

func floatBits(s string) string {
	f, _ := strconv.ParseFloat(strings.ReplaceAll(s, "_", ""), 64)
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], math.Float64bits(f))
	return hex.EncodeToString(b[:])
}

func corpusType(n Node) (string, string) {
	switch n := n.(type) {
	case *Module:
		return "Module", ""
	case *FunctionDef:
		if n.Async {
			return "FunctionDef", n.Name + "/async"
		}
		return "FunctionDef", n.Name
	case *ClassDef:
		return "ClassDef", n.Name
	case *Return:
		return "Return", ""
	case *Delete:
		return "Delete", ""
	case *Assign:
		return "Assign", ""
	case *TypeAlias:
		return "TypeAlias", ""
	case *AugAssign:
		return "AugAssign", n.Op
	case *AnnAssign:
		return "AnnAssign", ""
	case *For:
		if n.Async {
			return "For", "async"
		}
		return "For", ""
	case *While:
		return "While", ""
	case *If:
		return "If", ""
	case *With:
		if n.Async {
			return "With", "async"
		}
		return "With", ""
	case *Match:
		return "Match", ""
	case *Raise:
		return "Raise", ""
	case *Try:
		if n.Star {
			return "Try", "star"
		}
		return "Try", ""
	case *Assert:
		return "Assert", ""
	case *Import:
		return "Import", ""
	case *ImportFrom:
		return "ImportFrom", n.Module + "/" + strconv.Itoa(n.Level)
	case *Global:
		return "Global", strings.Join(n.Names, ",")
	case *Nonlocal:
		return "Nonlocal", strings.Join(n.Names, ",")
	case *ExprStmt:
		return "ExprStmt", ""
	case *Pass:
		return "Pass", ""
	case *Break:
		return "Break", ""
	case *Continue:
		return "Continue", ""
	case *BoolOp:
		return "BoolOp", n.Op
	case *NamedExpr:
		return "NamedExpr", ""
	case *BinOp:
		return "BinOp", n.Op
	case *UnaryOp:
		return "UnaryOp", n.Op
	case *Lambda:
		return "Lambda", ""
	case *IfExp:
		return "IfExp", ""
	case *Dict:
		return "Dict", ""
	case *Set:
		return "Set", ""
	case *ListComp:
		return "ListComp", ""
	case *SetComp:
		return "SetComp", ""
	case *DictComp:
		return "DictComp", ""
	case *GeneratorExp:
		return "GeneratorExp", ""
	case *Await:
		return "Await", ""
	case *Yield:
		return "Yield", ""
	case *YieldFrom:
		return "YieldFrom", ""
	case *Compare:
		return "Compare", strings.Join(n.Ops, ",")
	case *Call:
		return "Call", ""
	case *FormattedValue:
		if n.Conversion != 0 {
			return "FormattedValue", string(n.Conversion)
		}
		return "FormattedValue", ""
	case *JoinedStr:
		return "JoinedStr", ""
	case *Constant:
		switch n.Kind {
		case "str", "bytes":
			return "Constant", n.Kind + ":" + corpusVal(n.Str)
		case "int":
			var b big.Int
			if _, ok := b.SetString(n.Str, 0); !ok {
				return "Constant", "int:?" + n.Str
			}
			return "Constant", "int:" + b.String()
		case "float":
			return "Constant", "float:" + floatBits(n.Str)
		case "complex":
			return "Constant", "complex:" + floatBits(n.Str[:len(n.Str)-1])
		case "bool":
			return "Constant", "bool:" + n.Str
		}
		return "Constant", n.Kind + ":"
	case *Attribute:
		return "Attribute", n.Attr
	case *Subscript:
		return "Subscript", ""
	case *Starred:
		return "Starred", ""
	case *Name:
		return "Name", n.ID
	case *List:
		return "List", ""
	case *Tuple:
		return "Tuple", ""
	case *Slice:
		return "Slice", ""
	case *Arguments:
		return "Arguments", ""
	case *Arg:
		return "Arg", n.Name
	case *Keyword:
		return "Keyword", n.Arg
	case *Alias:
		return "Alias", n.Name + "/" + n.AsName
	case *WithItem:
		return "WithItem", ""
	case *ExceptHandler:
		return "ExceptHandler", n.Name
	case *Comprehension:
		if n.Async {
			return "Comprehension", "async"
		}
		return "Comprehension", ""
	case *MatchCase:
		return "MatchCase", ""
	case *TypeParam:
		return "TypeParam", n.Kind + "/" + n.Name
	case *MatchValue:
		return "MatchValue", ""
	case *MatchSingleton:
		return "MatchSingleton", n.Value
	case *MatchSequence:
		return "MatchSequence", ""
	case *MatchMapping:
		return "MatchMapping", n.Rest
	case *MatchClass:
		return "MatchClass", strings.Join(n.KwdAttrs, ",")
	case *MatchStar:
		return "MatchStar", n.Name
	case *MatchAs:
		return "MatchAs", n.Name
	case *MatchOr:
		return "MatchOr", ""
	}
	return fmt.Sprintf("%T", n), ""
}
