package pyast

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
	"sync"
	"unicode/utf8"
)

// maxDepth bounds recursion and left-nested chains. Each unit is at least
// one level of CPython's tree, and CPython cannot compile trees deeper
// than about 3000 ("maximum recursion depth exceeded"), so nothing it
// runs is refused; the bound keeps hostile input from exhausting the stack.
const maxDepth = 4000

// Parse parses a Python 3 module. A failure is a *SyntaxError.
func Parse(src []byte) (mod *Module, err error) {
	defer func() {
		if r := recover(); r != nil {
			se, ok := r.(*SyntaxError)
			if !ok {
				// A bug, not the input's fault; still fail closed.
				se = &SyntaxError{Pos: Pos{1, 1}, Msg: fmt.Sprintf("internal parser error: %v", r)}
			}
			mod, err = nil, se
		}
	}()
	if len(src) > maxSource {
		return nil, &SyntaxError{Pos: Pos{1, 1}, Msg: "source too large"}
	}
	s, ascii := prepare(src)
	// The tree holds no tokens, so their buffer is reused across calls.
	// It is not cleared: a parse reads only the tokens it wrote, and the
	// pool drops its buffers at the next garbage collections.
	buf := tokPool.Get().(*[]token)
	defer func() {
		if cap(*buf) <= maxPooledTokens {
			tokPool.Put(buf)
		}
	}()
	toks, vals := tokenize(s, ascii, *buf)
	*buf = toks
	p := &parser{src: s, toks: toks, vals: vals, es: make([]Expr, 0, 32), ss: make([]Stmt, 0, 32)}
	return p.module(), nil
}

const (
	maxSource       = 1 << 30 // token offsets are int32
	maxPooledTokens = 1 << 16
)

var tokPool = sync.Pool{New: func() any { return new([]token) }}

// prepare validates the encoding and translates CR and CRLF line endings
// to LF, as CPython's tokenizer does. It also reports whether the source
// is all ASCII, when columns are simply byte offsets.
func prepare(src []byte) (string, bool) {
	bom := bytes.HasPrefix(src, []byte("\xef\xbb\xbf"))
	if bom {
		src = src[3:]
	}
	if i := bytes.IndexByte(src, 0); i >= 0 {
		panic(&SyntaxError{Pos: offsetPos(src, i), Msg: "source code cannot contain null bytes"})
	}
	ascii := isASCII(src)
	if !ascii && !utf8.Valid(src) {
		i := 0
		for i < len(src) {
			r, n := utf8.DecodeRune(src[i:])
			if r == utf8.RuneError && n <= 1 {
				break
			}
			i += n
		}
		panic(&SyntaxError{Pos: offsetPos(src, i), Msg: fmt.Sprintf("(unicode error) 'utf-8' codec can't decode byte 0x%02x: invalid utf-8", src[i])})
	}
	checkCoding(src, bom)
	if bytes.IndexByte(src, '\r') < 0 {
		return string(src), ascii
	}
	out := make([]byte, 0, len(src))
	for i := 0; i < len(src); i++ {
		if src[i] == '\r' {
			out = append(out, '\n')
			if i+1 < len(src) && src[i+1] == '\n' {
				i++
			}
			continue
		}
		out = append(out, src[i])
	}
	return string(out), ascii
}

func isASCII(b []byte) bool {
	i := 0
	for ; i+8 <= len(b); i += 8 {
		if binary.LittleEndian.Uint64(b[i:])&0x8080808080808080 != 0 {
			return false
		}
	}
	for ; i < len(b); i++ {
		if b[i] >= 0x80 {
			return false
		}
	}
	return true
}

func offsetPos(src []byte, off int) Pos {
	line := 1 + bytes.Count(src[:off], []byte("\n"))
	start := bytes.LastIndexByte(src[:off], '\n') + 1
	return Pos{line, utf8.RuneCount(src[start:off]) + 1}
}

type parser struct {
	src   string
	toks  []token
	vals  []string
	i     int
	depth int
	a     arena
	// Lists are built on these stacks and copied out at their final
	// size: one allocation per list instead of one per doubling.
	es []Expr
	ss []Stmt
}

// push appends e to the expression stack and returns the stack's length
// before it, the mark to pop back to. Callers push only after the nested
// parse that produced e has returned.
func (p *parser) push(e Expr) int {
	p.es = append(p.es, e)
	return len(p.es) - 1
}

func (p *parser) pop(mark int) []Expr {
	if len(p.es) == mark {
		return nil
	}
	out := make([]Expr, len(p.es)-mark)
	copy(out, p.es[mark:])
	p.es = p.es[:mark]
	return out
}

func (p *parser) popStmts(mark int) []Stmt {
	if len(p.ss) == mark {
		return nil
	}
	out := make([]Stmt, len(p.ss)-mark)
	copy(out, p.ss[mark:])
	p.ss = p.ss[:mark]
	return out
}

// arena hands out the most common nodes from slabs, cutting the number
// of allocations per parse by about half. The tree keeps the slabs alive.
type arena struct {
	names  []Name
	consts []Constant
	attrs  []Attribute
	calls  []Call
	binops []BinOp
	kws    []Keyword
}

func slab[T any](s *[]T) *T {
	if len(*s) == cap(*s) {
		// Chunks grow, so a rare type wastes little.
		*s = make([]T, 0, min(2*cap(*s)+4, 128))
	}
	*s = (*s)[:len(*s)+1]
	return &(*s)[len(*s)-1]
}

func (a *arena) name() *Name           { return slab(&a.names) }
func (a *arena) constant() *Constant   { return slab(&a.consts) }
func (a *arena) attribute() *Attribute { return slab(&a.attrs) }
func (a *arena) call() *Call           { return slab(&a.calls) }
func (a *arena) binOp() *BinOp         { return slab(&a.binops) }
func (a *arena) keyword() *Keyword     { return slab(&a.kws) }

// val is a token's value: a name's identifier, a literal's decoded text.
func (p *parser) val(t *token) string {
	if t.vi >= 0 {
		return p.vals[t.vi]
	}
	return p.src[t.off:t.end]
}

func (p *parser) tok() *token   { return &p.toks[p.i] }
func (p *parser) kind() tokKind { return p.toks[p.i].kind }
func (p *parser) pos() Pos      { return p.toks[p.i].pos }
func (p *parser) peek(n int) tokKind {
	if p.i+n < len(p.toks) {
		return p.toks[p.i+n].kind
	}
	return tEOF
}

func (p *parser) advance() *token {
	t := &p.toks[p.i]
	if t.kind != tEOF {
		p.i++
	}
	return t
}

func (p *parser) failAt(pos Pos, format string, args ...any) {
	panic(&SyntaxError{Pos: pos, Msg: fmt.Sprintf(format, args...)})
}

func (p *parser) syntaxError() {
	t := p.tok()
	switch t.kind {
	case tIndent:
		p.failAt(t.pos, "unexpected indent")
	case tEOF:
		p.failAt(t.pos, "unexpected EOF while parsing")
	}
	p.failAt(t.pos, "invalid syntax")
}

// lastPos is where the last real token ended up: the position of the
// newline before any dedents, which CPython reports for a missing block.
func (p *parser) lastPos() Pos {
	i := p.i - 1
	for i > 0 && p.toks[i].kind == tDedent {
		i--
	}
	if i < 0 {
		return p.pos()
	}
	return p.toks[i].pos
}

func (p *parser) expect(k tokKind) *token {
	if p.kind() != k {
		switch k {
		case tColon:
			if p.kind() != tIndent {
				p.failAt(p.pos(), "expected ':'")
			}
		case tLPar:
			p.failAt(p.pos(), "expected '('")
		}
		p.syntaxError()
	}
	return p.advance()
}

func (p *parser) expectName() *token {
	if p.kind() != tName {
		p.syntaxError()
	}
	return p.advance()
}

// isSoft reports whether the current token is the soft keyword w, matched
// on its source text as CPython does.
func (p *parser) isSoft(w string) bool {
	t := &p.toks[p.i]
	return t.kind == tName && p.src[t.off:t.end] == w
}

func (p *parser) enter() {
	p.depth++
	if p.depth > maxDepth {
		p.failAt(p.pos(), "too many nested expressions")
	}
}

func (p *parser) chain(n int) {
	if p.depth+n > maxDepth {
		p.failAt(p.pos(), "too many nested expressions")
	}
}

// speculate runs f and reports whether it parsed; on a syntax error it
// rewinds, for the grammar's few ordered choices that need more than one
// token of lookahead (match statements, parenthesised with items).
func (p *parser) speculate(f func()) (ok bool) {
	save, depth := p.i, p.depth
	defer func() {
		if r := recover(); r != nil {
			if _, is := r.(*SyntaxError); !is {
				panic(r)
			}
			p.i, p.depth, ok = save, depth, false
		}
	}()
	f()
	return true
}

func (p *parser) module() *Module {
	m := &Module{Base: Base{Pos{1, 1}}}
	for p.kind() != tEOF {
		p.ss = p.statement(p.ss)
	}
	m.Body = p.popStmts(0)
	return m
}

// ---- statements ----

func (p *parser) statement(body []Stmt) []Stmt {
	t := p.tok()
	switch t.kind {
	case kDef:
		return append(body, p.funcDef(nil, t.pos, false))
	case kClass:
		return append(body, p.classDef(nil))
	case kIf:
		return append(body, p.ifStmt())
	case kWhile:
		return append(body, p.whileStmt())
	case kFor:
		return append(body, p.forStmt(t.pos, false))
	case kWith:
		return append(body, p.withStmt(t.pos, false))
	case kTry:
		return append(body, p.tryStmt())
	case tAt:
		return append(body, p.decorated())
	case kAsync:
		switch p.peek(1) {
		case kDef:
			p.advance()
			return append(body, p.funcDef(nil, t.pos, true))
		case kFor:
			p.advance()
			return append(body, p.forStmt(t.pos, true))
		case kWith:
			p.advance()
			return append(body, p.withStmt(t.pos, true))
		}
		p.syntaxError()
	case tName:
		if p.isSoft("match") {
			if s := p.matchStmt(); s != nil {
				return append(body, s)
			}
		}
	case tIndent:
		p.failAt(t.pos, "unexpected indent")
	}
	return p.simpleStmts(body)
}

func (p *parser) simpleStmts(body []Stmt) []Stmt {
	for {
		body = append(body, p.simpleStmt())
		if p.kind() != tSemi {
			break
		}
		p.advance()
		if p.kind() == tNewline {
			break
		}
	}
	if p.kind() != tNewline {
		p.syntaxError()
	}
	p.advance()
	return body
}

// block parses an indented block, or simple statements on the same line.
func (p *parser) block(what string, line int) []Stmt {
	if p.kind() != tNewline {
		return p.simpleStmts(nil)
	}
	p.advance()
	if p.kind() != tIndent {
		p.failAt(p.pos(), "expected an indented block after %s on line %d", what, line)
	}
	p.advance()
	mark := len(p.ss)
	for p.kind() != tDedent && p.kind() != tEOF {
		p.ss = p.statement(p.ss)
	}
	p.advance()
	return p.popStmts(mark)
}

func (p *parser) simpleStmt() Stmt {
	t := p.tok()
	pos := t.pos
	switch t.kind {
	case kPass:
		p.advance()
		return &Pass{Base{pos}}
	case kBreak:
		p.advance()
		return &Break{Base{pos}}
	case kContinue:
		p.advance()
		return &Continue{Base{pos}}
	case kReturn:
		p.advance()
		s := &Return{Base: Base{pos}}
		if p.kind().canStartExpr() {
			s.Value = p.starExpressions()
		}
		return s
	case kRaise:
		p.advance()
		s := &Raise{Base: Base{pos}}
		if p.kind().canStartExpr() {
			s.Exc = p.expression()
			if p.kind() == kFrom {
				p.advance()
				s.Cause = p.expression()
			}
		}
		return s
	case kGlobal, kNonlocal:
		p.advance()
		var names []string
		for {
			names = append(names, p.val(p.expectName()))
			if p.kind() != tComma {
				break
			}
			p.advance()
		}
		if t.kind == kGlobal {
			return &Global{Base{pos}, names}
		}
		return &Nonlocal{Base{pos}, names}
	case kDel:
		p.advance()
		s := &Delete{Base: Base{pos}}
		for {
			e := p.binary()
			p.checkTarget(e, true)
			s.Targets = append(s.Targets, e)
			if p.kind() != tComma {
				break
			}
			p.advance()
			if !p.kind().canStartExpr() {
				break
			}
		}
		if k := p.kind(); k != tSemi && k != tNewline {
			p.syntaxError()
		}
		return s
	case kAssert:
		p.advance()
		s := &Assert{Base: Base{pos}, Test: p.expression()}
		if p.kind() == tComma {
			p.advance()
			s.Msg = p.expression()
		}
		return s
	case kImport:
		return p.importName()
	case kFrom:
		return p.importFrom()
	case tName:
		if p.isSoft("type") && p.peek(1) == tName {
			return p.typeAlias()
		}
	}
	return p.exprStmt()
}

func (p *parser) rhs() Expr {
	if p.kind() == kYield {
		return p.yieldExpr()
	}
	return p.starExpressions()
}

func (p *parser) exprStmt() Stmt {
	first := p.tok()
	pos := first.pos
	e := p.rhs()
	k := p.kind()
	switch {
	case k == tEqual:
		targets := []Expr{e}
		var value Expr
		for p.kind() == tEqual {
			p.advance()
			v := p.rhs()
			if p.kind() == tEqual {
				targets = append(targets, v)
			} else {
				value = v
			}
		}
		for _, t := range targets {
			p.checkTarget(t, false)
		}
		return &Assign{Base{pos}, targets, value}
	case k == tColon:
		switch e.(type) {
		case *Name, *Attribute, *Subscript:
		case *Tuple:
			p.failAt(e.Position(), "only single target (not tuple) can be annotated")
		case *List:
			p.failAt(e.Position(), "only single target (not list) can be annotated")
		default:
			p.failAt(e.Position(), "illegal target for annotation")
		}
		p.advance()
		s := &AnnAssign{Base: Base{pos}, Target: e, Annotation: p.expression()}
		if p.kind() == tEqual {
			p.advance()
			s.Value = p.rhs()
		}
		return s
	case k.isAugAssign():
		switch e.(type) {
		case *Name, *Attribute, *Subscript:
		default:
			p.failAt(e.Position(), "'%s' is an illegal expression for augmented assignment", exprName(e))
		}
		p.advance()
		return &AugAssign{Base{pos}, e, opStrings[k], p.rhs()}
	}
	return &ExprStmt{Base{pos}, e}
}

// checkTarget refuses what cannot be assigned to (or deleted).
func (p *parser) checkTarget(e Expr, del bool) {
	switch e := e.(type) {
	case *Name, *Attribute, *Subscript:
		return
	case *Starred:
		if !del {
			p.checkTarget(e.Value, del)
			return
		}
	case *Tuple:
		for _, x := range e.Elts {
			p.checkTarget(x, del)
		}
		return
	case *List:
		for _, x := range e.Elts {
			p.checkTarget(x, del)
		}
		return
	}
	verb := "assign to"
	if del {
		verb = "delete"
	}
	p.failAt(e.Position(), "cannot %s %s", verb, exprName(e))
}

func exprName(e Expr) string {
	switch e := e.(type) {
	case *Call:
		return "function call"
	case *Constant:
		switch e.Kind {
		case "None", "bool":
			return e.Str
		case "Ellipsis":
			return "ellipsis"
		}
		return "literal"
	case *Compare:
		return "comparison"
	case *BoolOp, *BinOp, *UnaryOp:
		return "expression"
	case *Lambda:
		return "lambda"
	case *IfExp:
		return "conditional expression"
	case *NamedExpr:
		return "named expression"
	case *Starred:
		return "starred"
	case *Yield, *YieldFrom:
		return "yield expression"
	case *Await:
		return "await expression"
	case *JoinedStr:
		return "f-string expression"
	case *Tuple:
		return "tuple"
	case *List:
		return "list"
	case *Dict:
		return "dict literal"
	case *Set:
		return "set display"
	case *ListComp:
		return "list comprehension"
	case *SetComp:
		return "set comprehension"
	case *DictComp:
		return "dict comprehension"
	case *GeneratorExp:
		return "generator expression"
	}
	return "expression"
}

func (p *parser) typeAlias() Stmt {
	t := p.advance()
	n := p.expectName()
	s := &TypeAlias{Base: Base{t.pos}, Name: &Name{Base{n.pos}, p.val(n)}}
	s.TypeParams = p.typeParams()
	p.expect(tEqual)
	s.Value = p.expression()
	return s
}

func (p *parser) importName() Stmt {
	t := p.advance()
	s := &Import{Base: Base{t.pos}}
	for {
		n := p.expectName()
		a := &Alias{Base: Base{n.pos}, Name: p.dotted(p.val(n))}
		if p.kind() == kAs {
			p.advance()
			a.AsName = p.val(p.expectName())
		}
		s.Names = append(s.Names, a)
		if p.kind() != tComma {
			return s
		}
		p.advance()
	}
}

func (p *parser) dotted(name string) string {
	if p.kind() != tDot {
		return name
	}
	var b strings.Builder
	b.WriteString(name)
	for p.kind() == tDot {
		p.advance()
		b.WriteByte('.')
		b.WriteString(p.val(p.expectName()))
	}
	return b.String()
}

func (p *parser) importFrom() Stmt {
	t := p.advance()
	s := &ImportFrom{Base: Base{t.pos}}
	for {
		if p.kind() == tDot {
			s.Level++
		} else if p.kind() == tEllipsis {
			s.Level += 3
		} else {
			break
		}
		p.advance()
	}
	if p.kind() != kImport || s.Level == 0 {
		s.Module = p.dotted(p.val(p.expectName()))
	}
	p.expect(kImport)
	if p.kind() == tStar {
		st := p.advance()
		s.Names = []*Alias{{Base: Base{st.pos}, Name: "*"}}
		return s
	}
	paren := p.kind() == tLPar
	if paren {
		p.advance()
	}
	for {
		n := p.expectName()
		a := &Alias{Base: Base{n.pos}, Name: p.val(n)}
		if p.kind() == kAs {
			p.advance()
			a.AsName = p.val(p.expectName())
		}
		s.Names = append(s.Names, a)
		if p.kind() != tComma {
			break
		}
		p.advance()
		if paren && p.kind() == tRPar {
			break
		}
		if !paren && p.kind() != tName {
			p.failAt(p.pos(), "trailing comma not allowed without surrounding parentheses")
		}
	}
	if paren {
		p.expect(tRPar)
	}
	return s
}

func (p *parser) decorated() Stmt {
	var decos []Expr
	for p.kind() == tAt {
		p.advance()
		decos = append(decos, p.namedExpression())
		if p.kind() != tNewline {
			p.syntaxError()
		}
		p.advance()
	}
	t := p.tok()
	switch t.kind {
	case kDef:
		return p.funcDef(decos, t.pos, false)
	case kAsync:
		if p.peek(1) == kDef {
			p.advance()
			return p.funcDef(decos, t.pos, true)
		}
	case kClass:
		return p.classDef(decos)
	}
	p.syntaxError()
	return nil
}

func (p *parser) funcDef(decos []Expr, pos Pos, async bool) Stmt {
	p.expect(kDef)
	f := &FunctionDef{Base: Base{pos}, Async: async, Decorators: decos}
	f.Name = p.val(p.expectName())
	f.TypeParams = p.typeParams()
	p.expect(tLPar)
	f.Args = p.params(false, tRPar)
	p.expect(tRPar)
	if p.kind() == tRArrow {
		p.advance()
		f.Returns = p.expression()
	}
	p.expect(tColon)
	f.Body = p.block("function definition", pos.Line)
	return f
}

func (p *parser) classDef(decos []Expr) Stmt {
	t := p.advance()
	c := &ClassDef{Base: Base{t.pos}, Decorators: decos}
	c.Name = p.val(p.expectName())
	c.TypeParams = p.typeParams()
	if p.kind() == tLPar {
		lp := p.advance()
		c.Bases, c.Keywords = p.arguments(lp.pos, false)
	}
	p.expect(tColon)
	c.Body = p.block("class definition", t.pos.Line)
	return c
}

func (p *parser) typeParams() []*TypeParam {
	if p.kind() != tLSqb {
		return nil
	}
	lb := p.advance()
	var tps []*TypeParam
	for p.kind() != tRSqb {
		t := p.tok()
		tp := &TypeParam{Base: Base{t.pos}, Kind: "TypeVar"}
		switch t.kind {
		case tStar:
			p.advance()
			tp.Kind = "TypeVarTuple"
		case tDoubleStar:
			p.advance()
			tp.Kind = "ParamSpec"
		}
		tp.Name = p.val(p.expectName())
		if p.kind() == tColon {
			if tp.Kind != "TypeVar" {
				p.failAt(p.pos(), "cannot use bound with %s", tp.Kind)
			}
			p.advance()
			tp.Bound = p.expression()
		}
		if p.kind() == tEqual {
			p.advance()
			if tp.Kind == "TypeVarTuple" {
				tp.Default = p.starExpression()
			} else {
				tp.Default = p.expression()
			}
		}
		tps = append(tps, tp)
		if p.kind() != tComma {
			break
		}
		p.advance()
	}
	if len(tps) == 0 {
		p.failAt(lb.pos, "Type parameter list cannot be empty")
	}
	p.expect(tRSqb)
	return tps
}

// params parses parameters up to end (')' for def, ':' for lambda).
func (p *parser) params(lambda bool, end tokKind) *Arguments {
	a := &Arguments{Base: Base{p.pos()}}
	var pos []*Arg
	seenSlash, seenStar, bareStar, seenDefault := false, false, false, false
loop:
	for p.kind() != end {
		t := p.tok()
		switch t.kind {
		case tSlash:
			switch {
			case seenStar:
				p.failAt(t.pos, "/ must be ahead of *")
			case seenSlash:
				p.failAt(t.pos, "/ may appear only once")
			case len(pos) == 0:
				p.failAt(t.pos, "at least one argument must precede /")
			}
			p.advance()
			seenSlash = true
			a.PosOnly, pos = pos, nil
		case tStar:
			if seenStar {
				p.failAt(t.pos, "* argument may appear only once")
			}
			p.advance()
			seenStar = true
			if k := p.kind(); k == tComma || k == end {
				bareStar = true
			} else {
				a.Vararg = p.param(lambda, true)
				if p.kind() == tEqual {
					p.failAt(p.pos(), "var-positional argument cannot have default value")
				}
			}
		case tDoubleStar:
			p.advance()
			a.Kwarg = p.param(lambda, false)
			if p.kind() == tEqual {
				p.failAt(p.pos(), "var-keyword argument cannot have default value")
			}
			if p.kind() == tComma {
				p.advance()
			}
			if p.kind() != end {
				p.failAt(p.pos(), "arguments cannot follow var-keyword argument")
			}
			break loop
		default:
			arg := p.param(lambda, false)
			var d Expr
			if p.kind() == tEqual {
				p.advance()
				d = p.expression()
			}
			if seenStar {
				a.KwOnly = append(a.KwOnly, arg)
				a.KwDefaults = append(a.KwDefaults, d)
			} else {
				if d != nil {
					a.Defaults = append(a.Defaults, d)
					seenDefault = true
				} else if seenDefault {
					p.failAt(arg.P, "non-default argument follows default argument")
				}
				pos = append(pos, arg)
			}
		}
		if p.kind() != tComma {
			break
		}
		p.advance()
	}
	if bareStar && len(a.KwOnly) == 0 {
		p.failAt(p.pos(), "named arguments must follow bare *")
	}
	a.Args = pos
	return a
}

func (p *parser) param(lambda, starAnnotation bool) *Arg {
	t := p.expectName()
	arg := &Arg{Base: Base{t.pos}, Name: p.val(t)}
	if !lambda && p.kind() == tColon {
		p.advance()
		if starAnnotation && p.kind() == tStar {
			st := p.advance()
			arg.Annotation = &Starred{Base{st.pos}, p.binary()}
		} else {
			arg.Annotation = p.expression()
		}
	}
	return arg
}

func (p *parser) ifStmt() Stmt {
	t := p.advance()
	p.enter()
	s := &If{Base: Base{t.pos}, Test: p.namedExpression()}
	p.expect(tColon)
	what := "'if' statement"
	if t.kind == kElif {
		what = "'elif' statement"
	}
	s.Body = p.block(what, t.pos.Line)
	switch p.kind() {
	case kElif:
		s.Orelse = []Stmt{p.ifStmt()}
	case kElse:
		s.Orelse = p.elseBlock()
	}
	p.depth--
	return s
}

func (p *parser) elseBlock() []Stmt {
	e := p.advance()
	p.expect(tColon)
	return p.block("'else' statement", e.pos.Line)
}

func (p *parser) whileStmt() Stmt {
	t := p.advance()
	s := &While{Base: Base{t.pos}, Test: p.namedExpression()}
	p.expect(tColon)
	s.Body = p.block("'while' statement", t.pos.Line)
	if p.kind() == kElse {
		s.Orelse = p.elseBlock()
	}
	return s
}

func (p *parser) forStmt(pos Pos, async bool) Stmt {
	p.expect(kFor)
	s := &For{Base: Base{pos}, Async: async, Target: p.starTargets()}
	p.expect(kIn)
	s.Iter = p.starExpressions()
	p.expect(tColon)
	s.Body = p.block("'for' statement", pos.Line)
	if p.kind() == kElse {
		s.Orelse = p.elseBlock()
	}
	return s
}

func (p *parser) withStmt(pos Pos, async bool) Stmt {
	p.expect(kWith)
	s := &With{Base: Base{pos}, Async: async}
	// CPython tries the parenthesised item list first: "with (a, b):" is
	// two items, "with (a, b) as c:" one tuple.
	if p.kind() == tLPar {
		var items []*WithItem
		if p.speculate(func() {
			p.advance()
			items = p.withItems(true)
			p.expect(tRPar)
			if p.kind() != tColon {
				p.syntaxError()
			}
		}) {
			s.Items = items
		}
	}
	if s.Items == nil {
		s.Items = p.withItems(false)
	}
	p.expect(tColon)
	s.Body = p.block("'with' statement", pos.Line)
	return s
}

func (p *parser) withItems(paren bool) []*WithItem {
	var items []*WithItem
	for {
		pos := p.pos()
		it := &WithItem{Base: Base{pos}, Context: p.expression()}
		if p.kind() == kAs {
			p.advance()
			it.Vars = p.starTarget()
			if k := p.kind(); k != tComma && k != tColon && k != tRPar {
				p.syntaxError()
			}
		}
		items = append(items, it)
		if p.kind() != tComma {
			return items
		}
		p.advance()
		if paren && p.kind() == tRPar {
			return items
		}
	}
}

func (p *parser) tryStmt() Stmt {
	t := p.advance()
	p.expect(tColon)
	s := &Try{Base: Base{t.pos}}
	s.Body = p.block("'try' statement", t.pos.Line)
	for p.kind() == kExcept {
		et := p.advance()
		star := false
		if p.kind() == tStar {
			p.advance()
			star = true
		}
		if len(s.Handlers) > 0 && star != s.Star {
			p.failAt(et.pos, "cannot have both 'except' and 'except*' on the same 'try'")
		}
		s.Star = star
		h := &ExceptHandler{Base: Base{et.pos}}
		if p.kind() != tColon {
			h.Type = p.expression()
			if p.kind() == tComma {
				p.failAt(h.Type.Position(), "multiple exception types must be parenthesized")
			}
			if p.kind() == kAs {
				p.advance()
				h.Name = p.val(p.expectName())
			}
		} else if star {
			p.failAt(p.pos(), "expected one or more exception types")
		}
		p.expect(tColon)
		what := "'except' statement"
		if star {
			what = "'except*' statement"
		}
		h.Body = p.block(what, et.pos.Line)
		s.Handlers = append(s.Handlers, h)
	}
	if p.kind() == kElse {
		if len(s.Handlers) == 0 {
			p.syntaxError()
		}
		s.Orelse = p.elseBlock()
	}
	if p.kind() == kFinally {
		ft := p.advance()
		p.expect(tColon)
		s.Finalbody = p.block("'finally' statement", ft.pos.Line)
	}
	if len(s.Handlers) == 0 && s.Finalbody == nil {
		p.failAt(p.lastPos(), "expected 'except' or 'finally' block")
	}
	return s
}

// ---- match statements ----

// matchStmt parses a match statement, or returns nil when the line is an
// ordinary statement that starts with the name "match".
func (p *parser) matchStmt() Stmt {
	t := p.tok()
	var subject Expr
	if !p.speculate(func() {
		p.advance()
		subject = p.subjectExpr()
		p.expect(tColon)
		p.expect(tNewline)
		if p.kind() != tIndent {
			p.syntaxError()
		}
	}) {
		return nil
	}
	p.advance()
	m := &Match{Base: Base{t.pos}, Subject: subject}
	for p.kind() != tDedent && p.kind() != tEOF {
		if !p.isSoft("case") {
			p.syntaxError()
		}
		ct := p.advance()
		c := &MatchCase{Base: Base{ct.pos}, Pattern: p.patterns()}
		if p.kind() == kIf {
			p.advance()
			c.Guard = p.namedExpression()
		}
		p.expect(tColon)
		c.Body = p.block("'case' statement", ct.pos.Line)
		m.Cases = append(m.Cases, c)
	}
	p.advance()
	return m
}

func (p *parser) subjectExpr() Expr {
	pos := p.pos()
	e := p.starNamedExpression()
	if p.kind() != tComma {
		if _, ok := e.(*Starred); ok {
			p.syntaxError()
		}
		return e
	}
	mark := p.push(e)
	for p.kind() == tComma {
		p.advance()
		if !p.kind().canStartExpr() {
			break
		}
		p.push(p.starNamedExpression())
	}
	return &Tuple{Base{pos}, p.pop(mark)}
}

func (p *parser) patterns() Pattern {
	pos := p.pos()
	first := p.maybeStarPattern()
	if p.kind() != tComma {
		if _, ok := first.(*MatchStar); ok {
			p.syntaxError()
		}
		return first
	}
	pats := []Pattern{first}
	for p.kind() == tComma {
		p.advance()
		if k := p.kind(); k == tColon || k == kIf {
			break
		}
		pats = append(pats, p.maybeStarPattern())
	}
	return &MatchSequence{Base{pos}, pats}
}

func (p *parser) maybeStarPattern() Pattern {
	if p.kind() == tStar {
		t := p.advance()
		n := p.expectName()
		name := p.val(n)
		if p.src[n.off:n.end] == "_" {
			name = ""
		}
		return &MatchStar{Base{t.pos}, name}
	}
	return p.pattern()
}

func (p *parser) captureName() string {
	n := p.expectName()
	if p.src[n.off:n.end] == "_" {
		p.failAt(n.pos, "cannot use '_' as a target")
	}
	return p.val(n)
}

func (p *parser) pattern() Pattern {
	pos := p.pos()
	o := p.orPattern()
	if p.kind() == kAs {
		p.advance()
		return &MatchAs{Base{pos}, o, p.captureName()}
	}
	return o
}

func (p *parser) orPattern() Pattern {
	pos := p.pos()
	first := p.closedPattern()
	if p.kind() != tVbar {
		return first
	}
	pats := []Pattern{first}
	for p.kind() == tVbar {
		p.advance()
		pats = append(pats, p.closedPattern())
	}
	return &MatchOr{Base{pos}, pats}
}

func (p *parser) closedPattern() Pattern {
	t := p.tok()
	switch t.kind {
	case tNumber, tMinus:
		return &MatchValue{Base{t.pos}, p.signedNumber()}
	case tString, tFStart:
		return &MatchValue{Base{t.pos}, p.patternString()}
	case kNone, kTrue, kFalse:
		p.advance()
		return &MatchSingleton{Base{t.pos}, p.src[t.off:t.end]}
	case tName:
		p.advance()
		var e Expr = &Name{Base{t.pos}, p.val(t)}
		dotted := false
		for p.kind() == tDot {
			p.advance()
			e = &Attribute{Base{t.pos}, e, p.val(p.expectName())}
			dotted = true
		}
		if p.kind() == tLPar {
			return p.classPattern(t.pos, e)
		}
		if dotted {
			return &MatchValue{Base{t.pos}, e}
		}
		if p.src[t.off:t.end] == "_" {
			return &MatchAs{Base: Base{t.pos}}
		}
		return &MatchAs{Base: Base{t.pos}, Name: p.val(t)}
	case tLPar:
		p.advance()
		if p.kind() == tRPar {
			p.advance()
			return &MatchSequence{Base: Base{t.pos}}
		}
		first := p.maybeStarPattern()
		if p.kind() == tRPar {
			if _, ok := first.(*MatchStar); ok {
				p.syntaxError()
			}
			p.advance()
			return first
		}
		return p.sequencePattern(t.pos, first, tRPar)
	case tLSqb:
		p.advance()
		if p.kind() == tRSqb {
			p.advance()
			return &MatchSequence{Base: Base{t.pos}}
		}
		first := p.maybeStarPattern()
		if p.kind() == tRSqb {
			p.advance()
			return &MatchSequence{Base{t.pos}, []Pattern{first}}
		}
		return p.sequencePattern(t.pos, first, tRSqb)
	case tLBrace:
		return p.mappingPattern()
	}
	p.syntaxError()
	return nil
}

func (p *parser) sequencePattern(pos Pos, first Pattern, end tokKind) Pattern {
	pats := []Pattern{first}
	if p.kind() != tComma {
		p.syntaxError()
	}
	for p.kind() == tComma {
		p.advance()
		if p.kind() == end {
			break
		}
		pats = append(pats, p.maybeStarPattern())
	}
	p.expect(end)
	return &MatchSequence{Base{pos}, pats}
}

func (p *parser) classPattern(pos Pos, cls Expr) Pattern {
	p.advance()
	c := &MatchClass{Base: Base{pos}, Cls: cls}
	for p.kind() != tRPar {
		if p.kind() == tName && p.peek(1) == tEqual {
			n := p.advance()
			p.advance()
			c.KwdAttrs = append(c.KwdAttrs, p.val(n))
			c.KwdPatterns = append(c.KwdPatterns, p.pattern())
		} else {
			if len(c.KwdAttrs) > 0 {
				p.failAt(p.pos(), "positional patterns follow keyword patterns")
			}
			c.Patterns = append(c.Patterns, p.pattern())
		}
		if p.kind() != tComma {
			break
		}
		p.advance()
	}
	p.expect(tRPar)
	return c
}

func (p *parser) mappingPattern() Pattern {
	lb := p.advance()
	m := &MatchMapping{Base: Base{lb.pos}}
	for p.kind() != tRBrace {
		if p.kind() == tDoubleStar {
			p.advance()
			m.Rest = p.captureName()
			if p.kind() == tComma {
				p.advance()
			}
			if p.kind() != tRBrace {
				p.syntaxError()
			}
			break
		}
		m.Keys = append(m.Keys, p.mappingKey())
		p.expect(tColon)
		m.Patterns = append(m.Patterns, p.pattern())
		if p.kind() != tComma {
			break
		}
		p.advance()
	}
	p.expect(tRBrace)
	return m
}

func (p *parser) mappingKey() Expr {
	t := p.tok()
	switch t.kind {
	case tNumber, tMinus:
		return p.signedNumber()
	case tString, tFStart:
		return p.patternString()
	case kNone, kTrue, kFalse:
		return p.atom()
	case tName:
		p.advance()
		var e Expr = &Name{Base{t.pos}, p.val(t)}
		if p.kind() != tDot {
			p.syntaxError()
		}
		for p.kind() == tDot {
			p.advance()
			e = &Attribute{Base{t.pos}, e, p.val(p.expectName())}
		}
		return e
	}
	p.syntaxError()
	return nil
}

// patternString parses a string pattern. An f-string is refused only by
// CPython's compiler, not its parser, so it is accepted here too.
func (p *parser) patternString() Expr { return p.strings() }

func isImaginary(c *Constant) bool { return c.Kind == "complex" }

// signedNumber parses a literal number pattern: 1, -1, 1+2j, -1-2j.
func (p *parser) signedNumber() Expr {
	pos := p.pos()
	num := func() *Constant {
		t := p.tok()
		if t.kind != tNumber {
			p.syntaxError()
		}
		p.advance()
		return &Constant{Base{t.pos}, numberKind(p.val(t)), p.val(t)}
	}
	var real Expr
	var realNum *Constant
	if p.kind() == tMinus {
		m := p.advance()
		realNum = num()
		real = &UnaryOp{Base{m.pos}, "-", realNum}
	} else {
		realNum = num()
		real = realNum
	}
	if k := p.kind(); k == tPlus || k == tMinus {
		p.advance()
		imag := num()
		if isImaginary(realNum) {
			p.failAt(realNum.P, "real number required in complex literal")
		}
		if !isImaginary(imag) {
			p.failAt(imag.P, "imaginary number required in complex literal")
		}
		return &BinOp{Base{pos}, real, opStrings[k], imag}
	}
	return real
}

// ---- expressions ----

func (p *parser) starExpressions() Expr {
	pos := p.pos()
	e := p.starExpression()
	if p.kind() != tComma {
		return e
	}
	mark := p.push(e)
	for p.kind() == tComma {
		p.advance()
		if !p.kind().canStartExpr() {
			break
		}
		p.push(p.starExpression())
	}
	return &Tuple{Base{pos}, p.pop(mark)}
}

func (p *parser) starExpression() Expr {
	if p.kind() == tStar {
		t := p.advance()
		return &Starred{Base{t.pos}, p.binary()}
	}
	return p.expression()
}

func (p *parser) starNamedExpression() Expr {
	if p.kind() == tStar {
		t := p.advance()
		return &Starred{Base{t.pos}, p.binary()}
	}
	return p.namedExpression()
}

func (p *parser) namedExpression() Expr {
	if p.kind() == tName && p.peek(1) == tColonEqual {
		t := p.advance()
		p.advance()
		return &NamedExpr{Base{t.pos}, &Name{Base{t.pos}, p.val(t)}, p.expression()}
	}
	e := p.expression()
	if p.kind() == tColonEqual {
		p.failAt(e.Position(), "cannot use assignment expressions with %s", exprName(e))
	}
	return e
}

// endsExpr marks tokens that cannot continue an expression after an atom.
var endsExpr = func() (e [256]bool) {
	for _, k := range []tokKind{tComma, tRPar, tRSqb, tRBrace, tColon, tNewline, tEqual,
		tSemi, kFor, kAsync, kElse, kAs, kFrom, tRArrow, tEOF} {
		e[k] = true
	}
	return
}()

func (p *parser) expression() Expr {
	// A lone name or number, as most arguments and elements are, needs
	// none of the precedence levels below.
	if k := p.kind(); (k == tName || k == tNumber) && endsExpr[p.toks[p.i+1].kind] {
		return p.atom()
	}
	p.enter()
	var e Expr
	if p.kind() == kLambda {
		e = p.lambda()
	} else {
		pos := p.pos()
		e = p.disjunction()
		if p.kind() == kIf {
			p.advance()
			test := p.disjunction()
			if p.kind() != kElse {
				p.failAt(p.pos(), "expected 'else' after 'if' expression")
			}
			p.advance()
			e = &IfExp{Base{pos}, test, e, p.expression()}
		}
	}
	p.depth--
	return e
}

func (p *parser) yieldExpr() Expr {
	t := p.advance()
	if p.kind() == kFrom {
		p.advance()
		return &YieldFrom{Base{t.pos}, p.expression()}
	}
	y := &Yield{Base: Base{t.pos}}
	if p.kind().canStartExpr() {
		y.Value = p.starExpressions()
	}
	return y
}

func (p *parser) lambda() Expr {
	t := p.advance()
	args := p.params(true, tColon)
	p.expect(tColon)
	return &Lambda{Base{t.pos}, args, p.expression()}
}

func (p *parser) disjunction() Expr {
	pos := p.pos()
	var e Expr
	switch p.kind() {
	case kNot, tMinus, tPlus, tTilde, kAwait:
		e = p.conjunction()
	default:
		// Most expressions start with a primary: parse it and apply
		// only the operator levels that follow, not all nine.
		e = p.primary()
		if p.kind() == tDoubleStar {
			e = p.power(pos, e)
		}
		if binLevel[p.kind()] != 0 {
			e = p.climb(pos, e, 1)
		}
		e = p.comparisonRest(pos, e)
		if p.kind() == kAnd {
			e = p.conjunctionRest(pos, e)
		}
	}
	if p.kind() != kOr {
		return e
	}
	mark := p.push(e)
	for p.kind() == kOr {
		p.advance()
		p.push(p.conjunction())
	}
	return &BoolOp{Base{pos}, "or", p.pop(mark)}
}

func (p *parser) conjunction() Expr {
	pos := p.pos()
	e := p.inversion()
	if p.kind() != kAnd {
		return e
	}
	return p.conjunctionRest(pos, e)
}

func (p *parser) conjunctionRest(pos Pos, e Expr) Expr {
	mark := p.push(e)
	for p.kind() == kAnd {
		p.advance()
		p.push(p.inversion())
	}
	return &BoolOp{Base{pos}, "and", p.pop(mark)}
}

func (p *parser) inversion() Expr {
	if p.kind() == kNot {
		t := p.advance()
		p.enter()
		e := &UnaryOp{Base{t.pos}, "not", p.inversion()}
		p.depth--
		return e
	}
	return p.comparison()
}

func (p *parser) comparison() Expr {
	pos := p.pos()
	return p.comparisonRest(pos, p.binary())
}

func (p *parser) comparisonRest(pos Pos, left Expr) Expr {
	var c *Compare
	for {
		var op string
		switch p.kind() {
		case tEqEqual, tNotEqual, tLess, tLessEqual, tGreater, tGreaterEqual:
			op = opStrings[p.kind()]
		case kIn:
			op = "in"
		case kIs:
			op = "is"
			if p.peek(1) == kNot {
				p.advance()
				op = "is not"
			}
		case kNot:
			if p.peek(1) != kIn {
				break
			}
			p.advance()
			op = "not in"
		}
		if op == "" {
			break
		}
		p.advance()
		if c == nil {
			c = &Compare{Base: Base{pos}, Left: left}
		}
		c.Ops = append(c.Ops, op)
		c.Comparators = append(c.Comparators, p.binary())
	}
	if c == nil {
		return left
	}
	return c
}

// binLevel gives each binary operator its precedence level, 1 (|) to 6
// (* / // % @); 0 means not a binary operator.
var binLevel = func() (l [256]uint8) {
	l[tVbar] = 1
	l[tCircumflex] = 2
	l[tAmper] = 3
	l[tLeftShift], l[tRightShift] = 4, 4
	l[tPlus], l[tMinus] = 5, 5
	for _, k := range []tokKind{tStar, tSlash, tDoubleSlash, tPercent, tAt} {
		l[k] = 6
	}
	return
}()

// binary parses CPython's bitwise_or (all binary operators but **) by
// precedence climbing; each BinOp starts where its left operand does.
func (p *parser) binary() Expr {
	pos := p.pos()
	f := p.factor()
	if binLevel[p.kind()] == 0 {
		return f
	}
	return p.climb(pos, f, 1)
}

func (p *parser) climb(pos Pos, left Expr, min uint8) Expr {
	for n := 1; ; n++ {
		k := p.kind()
		l := binLevel[k]
		if l == 0 || l < min {
			return left
		}
		p.chain(n)
		p.advance()
		rpos := p.pos()
		right := p.factor()
		for l2 := binLevel[p.kind()]; l2 > l; l2 = binLevel[p.kind()] {
			right = p.climb(rpos, right, l+1)
		}
		b := p.a.binOp()
		*b = BinOp{Base{pos}, left, opStrings[k], right}
		left = b
	}
}

func (p *parser) factor() Expr {
	switch k := p.kind(); k {
	case tPlus, tMinus, tTilde:
		t := p.advance()
		p.enter()
		e := &UnaryOp{Base{t.pos}, opStrings[k], p.factor()}
		p.depth--
		return e
	}
	pos := p.pos()
	var e Expr
	if p.kind() == kAwait {
		t := p.advance()
		e = &Await{Base{t.pos}, p.primary()}
	} else {
		e = p.primary()
	}
	if p.kind() == tDoubleStar {
		e = p.power(pos, e)
	}
	return e
}

// power parses "** factor" after its left operand.
func (p *parser) power(pos Pos, left Expr) Expr {
	p.advance()
	p.enter()
	e := &BinOp{Base{pos}, left, "**", p.factor()}
	p.depth--
	return e
}

func (p *parser) primary() Expr {
	pos := p.pos()
	e := p.atom()
	for n := 1; ; n++ {
		switch p.kind() {
		case tDot:
			p.advance()
			a := p.a.attribute()
			*a = Attribute{Base{pos}, e, p.val(p.expectName())}
			e = a
		case tLPar:
			lp := p.advance()
			c := p.a.call()
			*c = Call{Base: Base{pos}, Func: e}
			c.Args, c.Keywords = p.arguments(lp.pos, true)
			e = c
		case tLSqb:
			p.advance()
			e = &Subscript{Base{pos}, e, p.slices()}
			p.expect(tRSqb)
		default:
			return e
		}
		p.chain(n)
	}
}

// arguments parses call arguments (or class bases) after the '('.
func (p *parser) arguments(lpar Pos, genexpOK bool) ([]Expr, []*Keyword) {
	mark := len(p.es)
	nargs := 0
	var kws []*Keyword
	seenKw, seenKwUnpack := false, false
	for p.kind() != tRPar {
		t := p.tok()
		switch {
		case t.kind == tStar:
			p.advance()
			if seenKwUnpack {
				p.failAt(t.pos, "iterable argument unpacking follows keyword argument unpacking")
			}
			p.push(&Starred{Base{t.pos}, p.expression()})
			nargs++
		case t.kind == tDoubleStar:
			p.advance()
			kws = append(kws, &Keyword{Base{t.pos}, "", p.expression()})
			seenKwUnpack = true
		case t.kind == tName && p.peek(1) == tEqual:
			p.advance()
			p.advance()
			kw := p.a.keyword()
			*kw = Keyword{Base{t.pos}, p.val(t), p.expression()}
			kws = append(kws, kw)
			seenKw = true
		default:
			e := p.namedExpression()
			if p.isCompFor() {
				if !genexpOK || nargs > 0 || len(kws) > 0 {
					p.failAt(e.Position(), "Generator expression must be parenthesized")
				}
				g := &GeneratorExp{Base{lpar}, e, p.comprehension()}
				if p.kind() != tRPar {
					p.failAt(e.Position(), "Generator expression must be parenthesized")
				}
				p.push(g)
				nargs++
				continue
			}
			if p.kind() == tEqual {
				p.failAt(e.Position(), "expression cannot contain assignment, perhaps you meant \"==\"?")
			}
			if seenKwUnpack {
				p.failAt(e.Position(), "positional argument follows keyword argument unpacking")
			} else if seenKw {
				p.failAt(e.Position(), "positional argument follows keyword argument")
			}
			p.push(e)
			nargs++
		}
		if p.kind() != tComma {
			break
		}
		p.advance()
	}
	p.expect(tRPar)
	return p.pop(mark), kws
}

func (p *parser) slices() Expr {
	pos := p.pos()
	first, star := p.sliceItem()
	if p.kind() != tComma && !star {
		return first
	}
	mark := p.push(first)
	for p.kind() == tComma {
		p.advance()
		if p.kind() == tRSqb {
			break
		}
		e, _ := p.sliceItem()
		p.push(e)
	}
	return &Tuple{Base{pos}, p.pop(mark)}
}

func (p *parser) sliceItem() (Expr, bool) {
	t := p.tok()
	if t.kind == tStar {
		p.advance()
		return &Starred{Base{t.pos}, p.expression()}, true
	}
	var lower Expr
	if t.kind != tColon {
		lower = p.namedExpression()
		if p.kind() != tColon {
			return lower, false
		}
		if _, ok := lower.(*NamedExpr); ok && t.kind == tName {
			p.syntaxError()
		}
	}
	p.advance()
	s := &Slice{Base: Base{t.pos}, Lower: lower}
	if k := p.kind(); k != tColon && k != tComma && k != tRSqb {
		s.Upper = p.expression()
	}
	if p.kind() == tColon {
		p.advance()
		if k := p.kind(); k != tComma && k != tRSqb {
			s.Step = p.expression()
		}
	}
	return s, false
}

func numberKind(s string) string {
	last := s[len(s)-1] | 0x20
	switch {
	case last == 'j':
		return "complex"
	case len(s) > 1 && s[0] == '0' && (s[1]|0x20 == 'x' || s[1]|0x20 == 'o' || s[1]|0x20 == 'b'):
		return "int"
	}
	for i := 0; i < len(s); i++ {
		if c := s[i] | 0x20; c == '.' || c == 'e' {
			return "float"
		}
	}
	return "int"
}

func (p *parser) atom() Expr {
	t := p.tok()
	switch t.kind {
	case tName:
		p.advance()
		n := p.a.name()
		*n = Name{Base{t.pos}, p.val(t)}
		return n
	case tNumber:
		p.advance()
		c := p.a.constant()
		*c = Constant{Base{t.pos}, numberKind(p.val(t)), p.val(t)}
		return c
	case tString, tFStart:
		return p.strings()
	case kNone:
		p.advance()
		return &Constant{Base{t.pos}, "None", "None"}
	case kTrue:
		p.advance()
		return &Constant{Base{t.pos}, "bool", "True"}
	case kFalse:
		p.advance()
		return &Constant{Base{t.pos}, "bool", "False"}
	case tEllipsis:
		p.advance()
		return &Constant{Base{t.pos}, "Ellipsis", "..."}
	case tLPar:
		return p.parenAtom()
	case tLSqb:
		return p.listAtom()
	case tLBrace:
		return p.braceAtom()
	}
	p.syntaxError()
	return nil
}

func (p *parser) isCompFor() bool {
	k := p.kind()
	return k == kFor || k == kAsync && p.peek(1) == kFor
}

func (p *parser) noStar(e Expr, what string) {
	if _, ok := e.(*Starred); ok {
		p.failAt(e.Position(), "%s", what)
	}
}

func (p *parser) parenAtom() Expr {
	lp := p.advance()
	switch p.kind() {
	case tRPar:
		p.advance()
		return &Tuple{Base: Base{lp.pos}}
	case kYield:
		y := p.yieldExpr()
		p.expect(tRPar)
		return y
	}
	first := p.starNamedExpression()
	if p.isCompFor() {
		p.noStar(first, "iterable unpacking cannot be used in comprehension")
		g := &GeneratorExp{Base{lp.pos}, first, p.comprehension()}
		p.expect(tRPar)
		return g
	}
	if p.kind() == tRPar {
		p.advance()
		p.noStar(first, "cannot use starred expression here")
		return first
	}
	elts := p.moreElts(first, tRPar)
	return &Tuple{Base{lp.pos}, elts}
}

// moreElts collects ", elt" items after first, up to and including end.
func (p *parser) moreElts(first Expr, end tokKind) []Expr {
	mark := p.push(first)
	for p.kind() == tComma {
		p.advance()
		if p.kind() == end {
			break
		}
		p.push(p.starNamedExpression())
	}
	p.expect(end)
	return p.pop(mark)
}

func (p *parser) listAtom() Expr {
	lb := p.advance()
	if p.kind() == tRSqb {
		p.advance()
		return &List{Base: Base{lb.pos}}
	}
	first := p.starNamedExpression()
	if p.isCompFor() {
		p.noStar(first, "iterable unpacking cannot be used in comprehension")
		c := &ListComp{Base{lb.pos}, first, p.comprehension()}
		p.expect(tRSqb)
		return c
	}
	return &List{Base{lb.pos}, p.moreElts(first, tRSqb)}
}

func (p *parser) braceAtom() Expr {
	lb := p.advance()
	pos := lb.pos
	if p.kind() == tRBrace {
		p.advance()
		return &Dict{Base: Base{pos}}
	}
	var key, value Expr
	if p.kind() == tDoubleStar {
		p.advance()
		value = p.binary()
		if p.isCompFor() {
			p.failAt(pos, "dict unpacking cannot be used in dict comprehension")
		}
	} else {
		startKind := p.kind()
		first := p.starNamedExpression()
		if p.kind() != tColon {
			if p.isCompFor() {
				p.noStar(first, "iterable unpacking cannot be used in comprehension")
				c := &SetComp{Base{pos}, first, p.comprehension()}
				p.expect(tRBrace)
				return c
			}
			return &Set{Base{pos}, p.moreElts(first, tRBrace)}
		}
		if _, ok := first.(*NamedExpr); ok && startKind == tName {
			p.syntaxError()
		}
		p.noStar(first, "cannot use a starred expression in a dictionary key")
		p.advance()
		key, value = first, p.expression()
		if p.isCompFor() {
			c := &DictComp{Base{pos}, key, value, p.comprehension()}
			p.expect(tRBrace)
			return c
		}
	}
	d := &Dict{Base: Base{pos}, Keys: []Expr{key}, Values: []Expr{value}}
	for p.kind() == tComma {
		p.advance()
		if p.kind() == tRBrace {
			break
		}
		if p.kind() == tDoubleStar {
			p.advance()
			d.Keys = append(d.Keys, nil)
			d.Values = append(d.Values, p.binary())
			continue
		}
		k := p.expression()
		p.expect(tColon)
		d.Keys = append(d.Keys, k)
		d.Values = append(d.Values, p.expression())
	}
	p.expect(tRBrace)
	return d
}

func (p *parser) comprehension() []*Comprehension {
	var gens []*Comprehension
	for p.isCompFor() {
		t := p.tok()
		c := &Comprehension{Base: Base{t.pos}}
		if t.kind == kAsync {
			p.advance()
			c.Async = true
		}
		p.expect(kFor)
		c.Target = p.starTargets()
		p.expect(kIn)
		c.Iter = p.disjunction()
		for p.kind() == kIf {
			p.advance()
			c.Ifs = append(c.Ifs, p.disjunction())
		}
		gens = append(gens, c)
	}
	return gens
}

// starTargets parses assignment targets where an expression parse would
// run on into "in" (for loops, comprehensions).
func (p *parser) starTargets() Expr {
	pos := p.pos()
	e := p.starTarget()
	if p.kind() != tComma {
		return e
	}
	mark := p.push(e)
	for p.kind() == tComma {
		p.advance()
		if !p.kind().canStartExpr() {
			break
		}
		p.push(p.starTarget())
	}
	return &Tuple{Base{pos}, p.pop(mark)}
}

func (p *parser) starTarget() Expr {
	if p.kind() == tStar {
		t := p.advance()
		if p.kind() == tStar {
			p.syntaxError()
		}
		return &Starred{Base{t.pos}, p.starTarget()}
	}
	e := p.binary()
	p.checkTarget(e, false)
	return e
}

// ---- string literals and f-strings ----

// strBuf accumulates adjacent literal text into one Constant, as CPython
// merges "a" f"b{x}" into [Constant("ab"), FormattedValue(x)].
type strBuf struct {
	b   []byte
	pos Pos
	has bool
}

func (sb *strBuf) add(pos Pos, s string) {
	if !sb.has {
		sb.pos, sb.has = pos, true
	}
	sb.b = append(sb.b, s...)
}

func (sb *strBuf) flush(vals []Expr) []Expr {
	if sb.has && len(sb.b) > 0 {
		vals = append(vals, &Constant{Base{sb.pos}, "str", string(sb.b)})
	}
	sb.b, sb.has = sb.b[:0], false
	return vals
}

func (p *parser) strings() Expr {
	first := p.tok()
	if first.kind == tString && p.peek(1) != tString && p.peek(1) != tFStart {
		p.advance()
		c := p.a.constant()
		*c = *p.strConst(first)
		return c
	}
	isBytes := first.kind == tString && first.bytes
	var js *JoinedStr
	var sb strBuf
	for {
		t := p.tok()
		if t.kind == tString {
			if t.bytes != isBytes {
				p.failAt(t.pos, "cannot mix bytes and nonbytes literals")
			}
			sb.add(t.pos, p.val(t))
			p.advance()
		} else if t.kind == tFStart {
			if isBytes {
				p.failAt(t.pos, "cannot mix bytes and nonbytes literals")
			}
			if js == nil {
				js = &JoinedStr{Base: Base{first.pos}}
			}
			p.advance()
			js.Values = p.fstringParts(js.Values, &sb, tFEnd)
			p.advance()
		} else {
			break
		}
	}
	if js == nil {
		kind := "str"
		if isBytes {
			kind = "bytes"
		}
		return &Constant{Base{first.pos}, kind, string(sb.b)}
	}
	js.Values = sb.flush(js.Values)
	return js
}

func (p *parser) strConst(t *token) *Constant {
	kind := "str"
	if t.bytes {
		kind = "bytes"
	}
	return &Constant{Base{t.pos}, kind, p.val(t)}
}

// fstringParts parses literal parts and replacement fields up to end
// (the f-string's end, or the '}' closing a format spec), not consuming it.
func (p *parser) fstringParts(vals []Expr, sb *strBuf, end tokKind) []Expr {
	for {
		t := p.tok()
		switch t.kind {
		case tFMiddle:
			sb.add(t.pos, p.val(t))
			p.advance()
		case tLBrace:
			fv, debug := p.replacementField()
			if debug != "" {
				// CPython places the text just after the '{'.
				sb.add(Pos{t.pos.Line, t.pos.Col + 1}, debug)
			}
			vals = sb.flush(vals)
			vals = append(vals, fv)
		default:
			if t.kind != end {
				p.syntaxError()
			}
			return vals
		}
	}
}

func (p *parser) replacementField() (*FormattedValue, string) {
	lb := p.advance()
	if p.kind() == tRBrace {
		p.failAt(p.pos(), "f-string: valid expression required before '}'")
	}
	fv := &FormattedValue{Base: Base{lb.pos}, Value: p.rhs()}
	debug := ""
	if p.kind() == tEqual {
		p.advance()
		debug = stripHashes(p.src[lb.end:p.tok().off])
	}
	if p.kind() == tExclamation {
		ex := p.advance()
		n := p.tok()
		if n.kind != tName || n.off != ex.end || (p.val(n) != "s" && p.val(n) != "r" && p.val(n) != "a") {
			p.failAt(n.pos, "f-string: invalid conversion character")
		}
		fv.Conversion = rune(p.val(n)[0])
		p.advance()
	}
	if p.kind() == tColon {
		ct := p.advance()
		spec := &JoinedStr{Base: Base{ct.pos}}
		var sb strBuf
		spec.Values = p.fstringParts(nil, &sb, tRBrace)
		spec.Values = sb.flush(spec.Values)
		fv.FormatSpec = spec
	}
	if p.kind() != tRBrace {
		p.failAt(p.pos(), "f-string: expecting '}'")
	}
	p.advance()
	if debug != "" && fv.Conversion == 0 && fv.FormatSpec == nil {
		fv.Conversion = 'r'
	}
	return fv, debug
}

// stripHashes drops "#" to the end of each line from a self-documenting
// f-string's text. CPython 3.12+ does this naively, even to a "#" in a
// string literal (f"{'#'=}" gives "'"), and the text must match.
func stripHashes(s string) string {
	if strings.IndexByte(s, '#') < 0 {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '#' {
			for i < len(s) && s[i] != '\n' {
				i++
			}
			if i == len(s) {
				break
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
