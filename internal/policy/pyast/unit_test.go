package pyast

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func mustParse(t *testing.T, src string) *Module {
	t.Helper()
	m, err := Parse([]byte(src))
	if err != nil {
		t.Fatalf("%q: %v", src, err)
	}
	return m
}

// identifiers lists every identifier Walk reaches, as "Type:name".
func identifiers(m *Module) []string {
	var out []string
	Walk(m, func(n Node) bool {
		switch n := n.(type) {
		case *Name:
			out = append(out, "Name:"+n.ID)
		case *Attribute:
			out = append(out, "Attribute:"+n.Attr)
		case *FunctionDef:
			out = append(out, "FunctionDef:"+n.Name)
		case *ClassDef:
			out = append(out, "ClassDef:"+n.Name)
		case *Arg:
			out = append(out, "Arg:"+n.Name)
		case *Alias:
			out = append(out, "Alias:"+n.Name+"/"+n.AsName)
		case *Keyword:
			out = append(out, "Keyword:"+n.Arg)
		}
		return true
	})
	return out
}

// TestNFKCIdentifiers: identifiers are NFKC-normalised like CPython's
// (checked against 3.13.0), so a fullwidth or ligature spelling cannot
// hide a name from the policy; keywords are matched before
// normalisation, so "ｉｆ" is the name "if".
func TestNFKCIdentifiers(t *testing.T) {
	m := mustParse(t, "ｅｖａｌ('1'); ﬁle = ｏｓ.ｓｙｓｔｅｍ\ndef ｆ(ａ, *, ｋ=1): pass\nimport ｏｓ.ｐａｔｈ as ｐ\nf(ｋｗ=1)\nℌ = 1; x = ｉｆ\nclass Ｃ: ｙ: int\n")
	want := []string{
		"Name:eval", "Name:file", "Attribute:system", "Name:os",
		"FunctionDef:f", "Arg:a", "Arg:k", "Alias:os.path/p",
		"Name:f", "Keyword:kw", "Name:H", "Name:x", "Name:if",
		"ClassDef:C", "Name:y", "Name:int",
	}
	if got := identifiers(m); !reflect.DeepEqual(got, want) {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

// TestSoftKeywords: match, case, _ and type are names except where the
// grammar makes them keywords.
func TestSoftKeywords(t *testing.T) {
	m := mustParse(t, "match = 1\nmatch(x)\ntype(x)\nprint(match.group())\ncase = _ = type = 2\nmatch.x = [match for match in case]\n")
	for _, s := range m.Body {
		switch s.(type) {
		case *Assign, *ExprStmt:
		default:
			t.Errorf("statement %T, want an ordinary one", s)
		}
	}
	m = mustParse(t, "match match:\n    case case:\n        type type = type\n")
	mt, ok := m.Body[0].(*Match)
	if !ok {
		t.Fatalf("got %T, want *Match", m.Body[0])
	}
	if as := mt.Cases[0].Pattern.(*MatchAs); as.Name != "case" {
		t.Errorf("capture %q, want case", as.Name)
	}
	if ta, ok := mt.Cases[0].Body[0].(*TypeAlias); !ok || ta.Name.ID != "type" {
		t.Errorf("got %#v, want type alias named type", mt.Cases[0].Body[0])
	}
}

func TestStringDecoding(t *testing.T) {
	cases := []struct{ src, kind, want string }{
		{`"o" "s"`, "str", "os"},
		{`"\x6fs"`, "str", "os"},
		{`'o' \` + "\n" + `'s'`, "str", "os"},
		{`b"\x41\101\x7f\xff"`, "bytes", "AA\x7f\xff"},
		{`"\u0041\U00000042\N{LATIN SMALL LETTER C}"`, "str", "ABc"},
		{`u"\N{latin small letter a}"`, "str", "a"},
		{`"\N{EM DASH}"`, "str", "—"},
		{`"\N{HANGUL SYLLABLE GAG}\N{CJK UNIFIED IDEOGRAPH-4E00}"`, "str", "각一"},
		{`r"\x41"`, "str", `\x41`},
		{`rb"\x00"`, "bytes", `\x00`},
		{`"\q"`, "str", `\q`},
		{"\"a\\\nb\"", "str", "ab"},
		{`"\0\7\777"`, "str", "\x00\x07ǿ"},
		{`"\a\b\f\n\r\t\v\\\'\""`, "str", "\a\b\f\n\r\t\v\\'\""},
		{`b"\u0041\N{X}"`, "bytes", `\u0041\N{X}`},
		{"'''a\r\nb'''", "str", "a\nb"},
		{`'\ud800'`, "str", "\xed\xa0\x80"}, // a lone surrogate, kept as CPython's surrogatepass bytes
		{`b'a' B'b' Rb'\\'`, "bytes", `ab\\`},
		{`'ä' "ö"`, "str", "äö"},
	}
	for _, c := range cases {
		m := mustParse(t, c.src)
		k, ok := m.Body[0].(*ExprStmt).Value.(*Constant)
		if !ok {
			t.Errorf("%s: got %T", c.src, m.Body[0].(*ExprStmt).Value)
			continue
		}
		if k.Kind != c.kind || k.Str != c.want {
			t.Errorf("%s: got %s %q, want %s %q", c.src, k.Kind, k.Str, c.kind, c.want)
		}
	}
}

// TestFStringConcatenation: literals next to an f-string merge into its
// JoinedStr, with escapes decoded in every part.
func TestFStringConcatenation(t *testing.T) {
	cases := []struct {
		src  string
		want []string // Constant values, or "{}" for a FormattedValue
	}{
		{`"o" f"s{x}"`, []string{"os", "{}"}},
		{`f"\x6f{s}"`, []string{"o", "{}"}},
		{`f"{{}}\{x}"`, []string{`{}\`, "{}"}},
		{`f"{x}" "" f""`, []string{"{}"}},
		{`f"a{x=}b"`, []string{"ax=", "{}", "b"}},
		{`f"{x!r:>{w}}" 'y'`, []string{"{}", "y"}},
		{`u'a' f'b'`, []string{"ab"}},
	}
	for _, c := range cases {
		m := mustParse(t, c.src)
		js, ok := m.Body[0].(*ExprStmt).Value.(*JoinedStr)
		if !ok {
			t.Errorf("%s: got %T", c.src, m.Body[0].(*ExprStmt).Value)
			continue
		}
		var got []string
		for _, v := range js.Values {
			if k, ok := v.(*Constant); ok {
				got = append(got, k.Str)
			} else {
				got = append(got, "{}")
			}
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: got %q, want %q", c.src, got, c.want)
		}
	}
	m := mustParse(t, `f"{x=!s:^{w}}"`)
	fv := m.Body[0].(*ExprStmt).Value.(*JoinedStr).Values[1].(*FormattedValue)
	if fv.Conversion != 's' || fv.FormatSpec == nil || len(fv.FormatSpec.Values) != 2 {
		t.Errorf("got conversion %q spec %v", fv.Conversion, fv.FormatSpec)
	}
}

// TestPositionsNonASCII: columns count code points, not bytes, and
// CRLF, CR and a BOM do not shift them.
func TestPositionsNonASCII(t *testing.T) {
	for _, src := range []string{
		"s = 'äöü'; t = 日本 + 語\n",
		"s = 'äöü'; t = 日本 + 語\r\n",
		"s = 'äöü'; t = 日本 + 語\r",
		"\ufeffs = 'äöü'; t = 日本 + 語",
	} {
		m := mustParse(t, src)
		a := m.Body[1].(*Assign)
		b := a.Value.(*BinOp)
		got := []Pos{a.P, a.Targets[0].Position(), b.P, b.Right.Position()}
		want := []Pos{{1, 12}, {1, 12}, {1, 16}, {1, 21}}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%q: got %v, want %v", src, got, want)
		}
	}
	m := mustParse(t, "x = '''ä\nö''' + é\n# ü\nif ß:\n\tpass")
	b := m.Body[0].(*Assign).Value.(*BinOp)
	if p := b.Right.Position(); p != (Pos{2, 8}) {
		t.Errorf("after a multi-line string: %v, want 2:8", p)
	}
	if p := m.Body[1].(*If).Body[0].Position(); p != (Pos{5, 2}) {
		t.Errorf("after a tab: %v, want 5:2", p)
	}
}

func TestWalk(t *testing.T) {
	m := mustParse(t, "@d\ndef f(a, b=1, *c, d=2, **e) -> r:\n    return g(x, k=1, *y, **z)[0].h if t else {1: 2, **u}\n")
	var got []string
	Walk(m, func(n Node) bool {
		got = append(got, strings.TrimPrefix(reflect.TypeOf(n).String(), "*pyast."))
		return true
	})
	want := strings.Fields(`Module FunctionDef Name Arguments Arg Arg Constant Arg Arg Constant Arg Name
		Return IfExp Attribute Subscript Call Name Name Keyword Constant Starred Name Keyword Name Constant
		Name Dict Constant Constant Name`)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %v\nwant %v", got, want)
	}

	// Returning false skips the children only.
	got = got[:0]
	Walk(m, func(n Node) bool {
		got = append(got, strings.TrimPrefix(reflect.TypeOf(n).String(), "*pyast."))
		_, isArgs := n.(*Arguments)
		_, isRet := n.(*Return)
		return !isArgs && !isRet
	})
	if want := []string{"Module", "FunctionDef", "Name", "Arguments", "Name", "Return"}; !reflect.DeepEqual(got, want) {
		t.Errorf("skipping: got %v, want %v", got, want)
	}

	// Nil children of hand-built trees, typed or not, are skipped.
	n := 0
	Walk(&FunctionDef{Args: &Arguments{Vararg: nil, KwDefaults: []Expr{nil}, KwOnly: []*Arg{nil}}, Body: []Stmt{nil, &Return{}}}, func(Node) bool { n++; return true })
	if n != 3 {
		t.Errorf("visited %d nodes, want 3", n)
	}
	Walk(nil, func(Node) bool { t.Error("visited nil"); return true })
	var typedNil *Module
	Walk(typedNil, func(Node) bool { t.Error("visited typed nil"); return true })
}

// TestWalkReachesEverything: every node type the parser builds is
// visited (a policy rule that looks for, say, Attribute must see all).
func TestWalkReachesEverything(t *testing.T) {
	srcs := validSnippets
	for _, c := range treeCases {
		srcs = append(srcs[:len(srcs):len(srcs)], c.src)
	}
	seen := map[string]bool{}
	for _, s := range srcs {
		m, err := Parse([]byte(s))
		if err != nil {
			t.Fatal(err)
		}
		Walk(m, func(n Node) bool { seen[reflect.TypeOf(n).Elem().Name()] = true; return true })
	}
	for _, name := range strings.Fields(`Module FunctionDef ClassDef Return Delete Assign TypeAlias AugAssign
		AnnAssign For While If With Match Raise Try Assert Import ImportFrom Global Nonlocal ExprStmt Pass
		Break BoolOp NamedExpr BinOp UnaryOp Lambda IfExp Dict Set ListComp SetComp DictComp
		GeneratorExp Await Yield YieldFrom Compare Call FormattedValue JoinedStr Constant Attribute
		Subscript Starred Name List Tuple Slice Arguments Arg Keyword Alias WithItem ExceptHandler
		Comprehension MatchCase TypeParam MatchValue MatchSingleton MatchSequence MatchMapping MatchClass
		MatchStar MatchAs MatchOr`) {
		if !seen[name] {
			t.Errorf("Walk never reached a %s", name)
		}
	}
}

// TestDeepNesting: hostile nesting is an error, never a crash.
func TestDeepNesting(t *testing.T) {
	for _, src := range []string{
		strings.Repeat("(", 300) + "1" + strings.Repeat(")", 300),
		strings.Repeat("[", 100000),
		strings.Repeat("-", 100000) + "1",
		strings.Repeat("not ", 100000) + "x",
		strings.Repeat("lambda: ", 100000) + "1",
		strings.Repeat("a if b else ", 100000) + "1",
		strings.Repeat("2 ** ", 100000) + "1",
		"x = a" + strings.Repeat(".b", 100000),
		"x = 1" + strings.Repeat(" + 1", 100000),
		"x = f" + strings.Repeat("()", 100000),
		strings.Repeat("f'{", 300) + "x" + strings.Repeat("}'", 300),
		strings.Repeat("if x:\n", 1) + func() string {
			var b strings.Builder
			for i := 1; i < 200; i++ {
				b.WriteString(strings.Repeat(" ", i) + "if x:\n")
			}
			return b.String()
		}(),
	} {
		_, err := Parse([]byte(src))
		var se *SyntaxError
		if !errors.As(err, &se) || strings.HasPrefix(se.Msg, "internal") {
			t.Errorf("%.30q...: got %v, want a SyntaxError", src, err)
		}
	}
	// What CPython itself accepts still parses.
	for _, src := range []string{
		strings.Repeat("(", 199) + "1" + strings.Repeat(")", 199),
		strings.Repeat("-", 2900) + "1",
		"x = a" + strings.Repeat(".b", 2900),
	} {
		if _, err := Parse([]byte(src)); err != nil {
			t.Errorf("%.30q...: %v", src, err)
		}
	}
}

func TestEncoding(t *testing.T) {
	for _, c := range []struct {
		src string
		ok  bool
	}{
		{"# -*- coding: utf-8 -*-\nx = 'ä'", true},
		{"#!/usr/bin/env python\n# vim: set fileencoding=utf8 :\nx = 'ä'", true},
		{"# coding: latin-1\nx = 'a'", true},              // pure ASCII: same in any ASCII codec
		{"# coding: latin-1\nx = 'ä'", false},             // CPython would read other characters
		{"# coding: utf-7\nx = 1 #+AAo-import os", false}, // CPython sees a second line
		{"x = 1\n# coding: utf-7\n", true},                // not a cookie on line 2 after code
		{"\ufeff# coding: latin-1\nx = 1", false},         // BOM and another codec
		{"x = 'a\x00'", false},
		{"x = '\xff'", false},
	} {
		_, err := Parse([]byte(c.src))
		if (err == nil) != c.ok {
			t.Errorf("%q: err %v, want ok=%v", c.src, err, c.ok)
		}
	}
}

// TestLinearTime: inputs that would be quadratic with naive column
// counting or name building parse quickly (the test's own timeout is the
// assertion; a quadratic version takes minutes).
func TestLinearTime(t *testing.T) {
	for _, src := range []string{
		"x = 'ä'" + strings.Repeat(" + a", 200000),
		"import a" + strings.Repeat(".b", 200000),
		"x = ['ö'" + strings.Repeat(", 'ü'", 100000) + "]",
	} {
		if _, err := Parse([]byte(src)); err != nil && !strings.Contains(err.Error(), "too many nested") {
			t.Errorf("%.20q...: %v", src, err)
		}
	}
}
