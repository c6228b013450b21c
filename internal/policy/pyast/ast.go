// Package pyast parses Python 3 source (the grammar of 3.8 to 3.13: walrus,
// match, f-strings with nested quotes, type parameters, except*) into a
// syntax tree shaped like CPython's ast module. It exists so that pybox's
// static policy runs in the Go process, out of the sandboxed code's reach.
//
// The parser is strict: source that CPython would reject with a
// SyntaxError is an error here too wherever that matters for reading the
// tree, and anything the parser does not understand is an error, never a
// guess. Callers treat an error as "reject" (fail closed).
package pyast

// Pos is a position in the source: Line is 1-based, Col is the 1-based
// column counted in Unicode code points (what an editor shows).
type Pos struct{ Line, Col int }

// Node is any syntax tree node.
type Node interface {
	Position() Pos
}

// Base carries a node's position; every node embeds it.
type Base struct{ P Pos }

func (b Base) Position() Pos { return b.P }

// Module is a whole source file or cell.
type Module struct {
	Base
	Body []Stmt
}

// Stmt and Expr separate the two node families, as in CPython.
type (
	Stmt interface {
		Node
		stmt()
	}
	Expr interface {
		Node
		expr()
	}
	Pattern interface {
		Node
		pattern()
	}
)

// Statements.
type (
	FunctionDef struct {
		Base
		Name       string // NFKC-normalised, as all identifiers
		Async      bool
		TypeParams []*TypeParam
		Args       *Arguments
		Returns    Expr // may be nil
		Decorators []Expr
		Body       []Stmt
	}
	ClassDef struct {
		Base
		Name       string
		TypeParams []*TypeParam
		Bases      []Expr
		Keywords   []*Keyword
		Decorators []Expr
		Body       []Stmt
	}
	Return struct {
		Base
		Value Expr // may be nil
	}
	Delete struct {
		Base
		Targets []Expr
	}
	Assign struct {
		Base
		Targets []Expr
		Value   Expr
	}
	TypeAlias struct { // type X[T] = ...
		Base
		Name       *Name
		TypeParams []*TypeParam
		Value      Expr
	}
	AugAssign struct {
		Base
		Target Expr
		Op     string // "+=", ...
		Value  Expr
	}
	AnnAssign struct {
		Base
		Target     Expr
		Annotation Expr
		Value      Expr // may be nil
	}
	For struct {
		Base
		Async  bool
		Target Expr
		Iter   Expr
		Body   []Stmt
		Orelse []Stmt
	}
	While struct {
		Base
		Test   Expr
		Body   []Stmt
		Orelse []Stmt
	}
	If struct {
		Base
		Test   Expr
		Body   []Stmt
		Orelse []Stmt // an elif is a single If here
	}
	With struct {
		Base
		Async bool
		Items []*WithItem
		Body  []Stmt
	}
	Match struct {
		Base
		Subject Expr
		Cases   []*MatchCase
	}
	Raise struct {
		Base
		Exc   Expr // may be nil
		Cause Expr // may be nil
	}
	Try struct {
		Base
		Body      []Stmt
		Handlers  []*ExceptHandler
		Orelse    []Stmt
		Finalbody []Stmt
		Star      bool // except*
	}
	Assert struct {
		Base
		Test Expr
		Msg  Expr // may be nil
	}
	Import struct {
		Base
		Names []*Alias
	}
	ImportFrom struct {
		Base
		Module string // "" for "from . import x"
		Names  []*Alias
		Level  int // number of leading dots
	}
	Global struct {
		Base
		Names []string
	}
	Nonlocal struct {
		Base
		Names []string
	}
	ExprStmt struct {
		Base
		Value Expr
	}
	Pass     struct{ Base }
	Break    struct{ Base }
	Continue struct{ Base }
)

// Expressions.
type (
	BoolOp struct {
		Base
		Op     string // "and", "or"
		Values []Expr
	}
	NamedExpr struct { // x := v
		Base
		Target *Name
		Value  Expr
	}
	BinOp struct {
		Base
		Left  Expr
		Op    string
		Right Expr
	}
	UnaryOp struct {
		Base
		Op      string // "not", "-", "+", "~"
		Operand Expr
	}
	Lambda struct {
		Base
		Args *Arguments
		Body Expr
	}
	IfExp struct {
		Base
		Test, Body, Orelse Expr
	}
	Dict struct {
		Base
		Keys   []Expr // nil key: **value
		Values []Expr
	}
	Set struct {
		Base
		Elts []Expr
	}
	ListComp struct {
		Base
		Elt        Expr
		Generators []*Comprehension
	}
	SetComp struct {
		Base
		Elt        Expr
		Generators []*Comprehension
	}
	DictComp struct {
		Base
		Key, Value Expr
		Generators []*Comprehension
	}
	GeneratorExp struct {
		Base
		Elt        Expr
		Generators []*Comprehension
	}
	Await struct {
		Base
		Value Expr
	}
	Yield struct {
		Base
		Value Expr // may be nil
	}
	YieldFrom struct {
		Base
		Value Expr
	}
	Compare struct {
		Base
		Left        Expr
		Ops         []string // "<", "in", "not in", "is not", ...
		Comparators []Expr
	}
	Call struct {
		Base
		Func     Expr
		Args     []Expr // a *x argument is a Starred
		Keywords []*Keyword
	}
	// FormattedValue is one {expr!conv:spec} of an f-string.
	FormattedValue struct {
		Base
		Value      Expr
		Conversion rune       // 0, 's', 'r' or 'a'
		FormatSpec *JoinedStr // may be nil
	}
	// JoinedStr is an f-string (with any literals concatenated to it).
	JoinedStr struct {
		Base
		Values []Expr // *Constant (Kind "str") and *FormattedValue
	}
	// Constant is a literal. Kind is "str", "bytes", "int", "float",
	// "complex", "bool", "None" or "Ellipsis"; Str holds the decoded value
	// of a str or bytes literal (adjacent literals concatenated) and the
	// source text of a number.
	Constant struct {
		Base
		Kind string
		Str  string
	}
	Attribute struct {
		Base
		Value Expr
		Attr  string // NFKC-normalised
	}
	Subscript struct {
		Base
		Value Expr
		Slice Expr
	}
	Starred struct {
		Base
		Value Expr
	}
	Name struct {
		Base
		ID string // NFKC-normalised
	}
	List struct {
		Base
		Elts []Expr
	}
	Tuple struct {
		Base
		Elts []Expr
	}
	Slice struct {
		Base
		Lower, Upper, Step Expr // each may be nil
	}
)

// Parts of statements and expressions.
type (
	Arguments struct {
		Base
		PosOnly, Args []*Arg
		Vararg        *Arg // may be nil
		KwOnly        []*Arg
		KwDefaults    []Expr // parallel to KwOnly; nil where none
		Kwarg         *Arg   // may be nil
		Defaults      []Expr // for the last len(Defaults) of PosOnly+Args
	}
	Arg struct {
		Base
		Name       string
		Annotation Expr // may be nil
	}
	Keyword struct {
		Base
		Arg   string // "" for **value
		Value Expr
	}
	Alias struct {
		Base
		Name   string // dotted, e.g. "os.path"; "*" for from x import *
		AsName string
	}
	WithItem struct {
		Base
		Context Expr
		Vars    Expr // may be nil
	}
	ExceptHandler struct {
		Base
		Type Expr   // may be nil
		Name string // "" when there is no "as"
		Body []Stmt
	}
	Comprehension struct {
		Base
		Target Expr
		Iter   Expr
		Ifs    []Expr
		Async  bool
	}
	MatchCase struct {
		Base
		Pattern Pattern
		Guard   Expr // may be nil
		Body    []Stmt
	}
	TypeParam struct {
		Base
		Kind    string // "TypeVar", "ParamSpec" (**P), "TypeVarTuple" (*Ts)
		Name    string
		Bound   Expr // may be nil
		Default Expr // 3.13; may be nil
	}
)

// Patterns (match statements).
type (
	MatchValue struct {
		Base
		Value Expr
	}
	MatchSingleton struct {
		Base
		Value string // "None", "True", "False"
	}
	MatchSequence struct {
		Base
		Patterns []Pattern
	}
	MatchMapping struct {
		Base
		Keys     []Expr
		Patterns []Pattern
		Rest     string // "" when there is no **rest
	}
	MatchClass struct {
		Base
		Cls         Expr
		Patterns    []Pattern
		KwdAttrs    []string
		KwdPatterns []Pattern
	}
	MatchStar struct {
		Base
		Name string // "" for *_
	}
	MatchAs struct {
		Base
		Pattern Pattern // may be nil (a capture or _)
		Name    string  // "" for _
	}
	MatchOr struct {
		Base
		Patterns []Pattern
	}
)

func (*FunctionDef) stmt() {}
func (*ClassDef) stmt()    {}
func (*Return) stmt()      {}
func (*Delete) stmt()      {}
func (*Assign) stmt()      {}
func (*TypeAlias) stmt()   {}
func (*AugAssign) stmt()   {}
func (*AnnAssign) stmt()   {}
func (*For) stmt()         {}
func (*While) stmt()       {}
func (*If) stmt()          {}
func (*With) stmt()        {}
func (*Match) stmt()       {}
func (*Raise) stmt()       {}
func (*Try) stmt()         {}
func (*Assert) stmt()      {}
func (*Import) stmt()      {}
func (*ImportFrom) stmt()  {}
func (*Global) stmt()      {}
func (*Nonlocal) stmt()    {}
func (*ExprStmt) stmt()    {}
func (*Pass) stmt()        {}
func (*Break) stmt()       {}
func (*Continue) stmt()    {}

func (*BoolOp) expr()         {}
func (*NamedExpr) expr()      {}
func (*BinOp) expr()          {}
func (*UnaryOp) expr()        {}
func (*Lambda) expr()         {}
func (*IfExp) expr()          {}
func (*Dict) expr()           {}
func (*Set) expr()            {}
func (*ListComp) expr()       {}
func (*SetComp) expr()        {}
func (*DictComp) expr()       {}
func (*GeneratorExp) expr()   {}
func (*Await) expr()          {}
func (*Yield) expr()          {}
func (*YieldFrom) expr()      {}
func (*Compare) expr()        {}
func (*Call) expr()           {}
func (*FormattedValue) expr() {}
func (*JoinedStr) expr()      {}
func (*Constant) expr()       {}
func (*Attribute) expr()      {}
func (*Subscript) expr()      {}
func (*Starred) expr()        {}
func (*Name) expr()           {}
func (*List) expr()           {}
func (*Tuple) expr()          {}
func (*Slice) expr()          {}

func (*MatchValue) pattern()     {}
func (*MatchSingleton) pattern() {}
func (*MatchSequence) pattern()  {}
func (*MatchMapping) pattern()   {}
func (*MatchClass) pattern()     {}
func (*MatchStar) pattern()      {}
func (*MatchAs) pattern()        {}
func (*MatchOr) pattern()        {}

// SyntaxError is a parse failure at a position.
type SyntaxError struct {
	Pos Pos
	Msg string
}

func (e *SyntaxError) Error() string { return e.Msg }
