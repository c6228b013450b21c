package pyast

// tokKind is a token type. Operators and keywords have a kind each so the
// parser can switch on one small integer.
type tokKind uint8

const (
	tEOF tokKind = iota
	tNewline
	tIndent
	tDedent
	tName
	tNumber
	tString  // a complete str or bytes literal, val decoded
	tFStart  // f" ; val is the prefix
	tFMiddle // literal text of an f-string or format spec, val decoded
	tFEnd

	tLPar
	tRPar
	tLSqb
	tRSqb
	tLBrace
	tRBrace
	tColon
	tComma
	tSemi
	tPlus
	tMinus
	tStar
	tSlash
	tVbar
	tAmper
	tLess
	tGreater
	tEqual
	tDot
	tPercent
	tEqEqual
	tNotEqual
	tLessEqual
	tGreaterEqual
	tTilde
	tCircumflex
	tLeftShift
	tRightShift
	tDoubleStar
	tPlusEqual
	tMinEqual
	tStarEqual
	tSlashEqual
	tPercentEqual
	tAmperEqual
	tVbarEqual
	tCircumflexEqual
	tLeftShiftEqual
	tRightShiftEqual
	tDoubleStarEqual
	tDoubleSlash
	tDoubleSlashEqual
	tAt
	tAtEqual
	tRArrow
	tEllipsis
	tColonEqual
	tExclamation

	kFalse
	kNone
	kTrue
	kAnd
	kAs
	kAssert
	kAsync
	kAwait
	kBreak
	kClass
	kContinue
	kDef
	kDel
	kElif
	kElse
	kExcept
	kFinally
	kFor
	kFrom
	kGlobal
	kIf
	kImport
	kIn
	kIs
	kLambda
	kNonlocal
	kNot
	kOr
	kPass
	kRaise
	kReturn
	kTry
	kWhile
	kWith
	kYield
)

// token is one lexical token. Offsets index the tokenizer's source (after
// newline translation); a decoded value (strings, non-ASCII names) is kept
// in a side table.
// Tokens hold no pointers, so the token buffer costs the garbage collector
// nothing to scan and writing it needs no write barriers.
type token struct {
	pos      Pos
	off, end int32 // sources over 1 GiB are refused
	vi       int32 // index of the value in vals, or -1: the value is src[off:end]
	kind     tokKind
	bytes    bool // tString: a bytes literal
}

// keyword returns the keyword kind of an ASCII word, or tName.
func keyword(w string) tokKind {
	switch w {
	case "False":
		return kFalse
	case "None":
		return kNone
	case "True":
		return kTrue
	case "and":
		return kAnd
	case "as":
		return kAs
	case "assert":
		return kAssert
	case "async":
		return kAsync
	case "await":
		return kAwait
	case "break":
		return kBreak
	case "class":
		return kClass
	case "continue":
		return kContinue
	case "def":
		return kDef
	case "del":
		return kDel
	case "elif":
		return kElif
	case "else":
		return kElse
	case "except":
		return kExcept
	case "finally":
		return kFinally
	case "for":
		return kFor
	case "from":
		return kFrom
	case "global":
		return kGlobal
	case "if":
		return kIf
	case "import":
		return kImport
	case "in":
		return kIn
	case "is":
		return kIs
	case "lambda":
		return kLambda
	case "nonlocal":
		return kNonlocal
	case "not":
		return kNot
	case "or":
		return kOr
	case "pass":
		return kPass
	case "raise":
		return kRaise
	case "return":
		return kReturn
	case "try":
		return kTry
	case "while":
		return kWhile
	case "with":
		return kWith
	case "yield":
		return kYield
	}
	return tName
}

// opStrings maps operator kinds back to their text, for the AST's Op
// fields and for error messages.
var opStrings = [...]string{
	tLPar: "(", tRPar: ")", tLSqb: "[", tRSqb: "]", tLBrace: "{", tRBrace: "}",
	tColon: ":", tComma: ",", tSemi: ";", tPlus: "+", tMinus: "-", tStar: "*",
	tSlash: "/", tVbar: "|", tAmper: "&", tLess: "<", tGreater: ">",
	tEqual: "=", tDot: ".", tPercent: "%", tEqEqual: "==", tNotEqual: "!=",
	tLessEqual: "<=", tGreaterEqual: ">=", tTilde: "~", tCircumflex: "^",
	tLeftShift: "<<", tRightShift: ">>", tDoubleStar: "**", tPlusEqual: "+=",
	tMinEqual: "-=", tStarEqual: "*=", tSlashEqual: "/=", tPercentEqual: "%=",
	tAmperEqual: "&=", tVbarEqual: "|=", tCircumflexEqual: "^=",
	tLeftShiftEqual: "<<=", tRightShiftEqual: ">>=", tDoubleStarEqual: "**=",
	tDoubleSlash: "//", tDoubleSlashEqual: "//=", tAt: "@", tAtEqual: "@=",
	tRArrow: "->", tEllipsis: "...", tColonEqual: ":=", tExclamation: "!",
}

func (k tokKind) isAugAssign() bool {
	switch k {
	case tPlusEqual, tMinEqual, tStarEqual, tSlashEqual, tPercentEqual,
		tAmperEqual, tVbarEqual, tCircumflexEqual, tLeftShiftEqual,
		tRightShiftEqual, tDoubleStarEqual, tDoubleSlashEqual, tAtEqual:
		return true
	}
	return false
}

func (k tokKind) isKeyword() bool { return k >= kFalse && k <= kYield }

// canStartExpr reports whether a token can begin an expression (or a
// starred one), which decides whether a trailing comma ends a tuple.
func (k tokKind) canStartExpr() bool {
	switch k {
	case tName, tNumber, tString, tFStart, tLPar, tLSqb, tLBrace, tMinus,
		tPlus, tTilde, tStar, tEllipsis, kNot, kLambda, kAwait, kNone, kTrue,
		kFalse:
		return true
	}
	return false
}
