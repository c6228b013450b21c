package pyast

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

const (
	maxParens = 200 // CPython's MAXLEVEL: "too many nested parentheses"
	maxIndent = 100 // CPython's MAXINDENT: "too many levels of indentation"
)

type paren struct {
	ch   byte
	pos  Pos
	line int
}

// f-string scanning states (PEP 701: the tokenizer, not the parser,
// splits an f-string into literal parts and replacement fields).
const (
	stLiteral uint8 = iota // text of the f-string itself
	stExpr                 // inside a replacement field, before any ':'
	stSpec                 // the format spec of a replacement field
)

type fmode struct {
	state  uint8
	quote  byte
	triple bool
	raw    bool
	level  int // stExpr, stSpec: len(parens) including the field's '{'
	start  Pos // the f-string's start, for "unterminated" errors
}

// tokenizer turns the whole source into tokens up front; the parser then
// indexes them freely, which makes its few backtracking points cheap.
type tokenizer struct {
	src        string
	i          int
	line       int
	lineStart  int
	asciiEnd   int     // offset of the first non-ASCII byte of the line, or its end
	colOff     int     // the last offset posAt converted past asciiEnd
	col        int     // its 0-based column
	toks       []token // written up to n; storing by index, not append, keeps write barriers off the hot path
	n          int
	vals       []string // decoded values, indexed by token.vi
	ascii      bool     // the whole source is ASCII: columns are byte offsets
	indents    []int
	altIndents []int
	parens     []paren
	modes      []fmode
	atBOL      bool
}

// tokenize appends the tokens of src to buf; vals holds their decoded
// values. ascii says src has no byte over 0x7f.
func tokenize(src string, ascii bool, buf []token) (toks []token, vals []string) {
	t := &tokenizer{src: src, line: 1, atBOL: true,
		indents: make([]int, 1, 16), altIndents: make([]int, 1, 16), parens: make([]paren, 0, 16)}
	// Real code has about one token per three bytes.
	if n := len(src)/3 + 16; cap(buf) < n {
		buf = make([]token, 0, n)
	}
	t.toks = buf[:cap(buf)]
	t.vals = make([]string, 0, len(src)/32+8)
	t.ascii = ascii
	t.scanASCII()
	for t.step() {
	}
	return t.toks[:t.n], t.vals
}

func (t *tokenizer) scanASCII() {
	t.colOff = -1
	if t.ascii {
		t.asciiEnd = len(t.src)
		return
	}
	j := t.lineStart
	for j < len(t.src) && t.src[j] < 0x80 && t.src[j] != '\n' {
		j++
	}
	t.asciiEnd = j
}

// newlineAt records that the byte at off is a '\n'.
func (t *tokenizer) newlineAt(off int) {
	t.line++
	t.lineStart = off + 1
	t.scanASCII()
}

// posAt converts a byte offset on the current line to a position. Past
// the line's first non-ASCII byte it counts runes on from the last offset
// it converted, so a long line costs linear time, not quadratic.
func (t *tokenizer) posAt(off int) Pos {
	if off <= t.asciiEnd {
		return Pos{t.line, off - t.lineStart + 1}
	}
	if t.colOff < t.asciiEnd || t.colOff > off {
		t.colOff, t.col = t.asciiEnd, t.asciiEnd-t.lineStart
	}
	t.col += utf8.RuneCountInString(t.src[t.colOff:off])
	t.colOff = off
	return Pos{t.line, t.col + 1}
}

func (t *tokenizer) fail(p Pos, format string, args ...any) {
	panic(&SyntaxError{Pos: p, Msg: fmt.Sprintf(format, args...)})
}

// emit writes a token in place, the hot path of the tokenizer.
func (t *tokenizer) emit(k tokKind, off, end int) {
	if t.n == len(t.toks) {
		t.grow()
	}
	tk := &t.toks[t.n]
	t.n++
	tk.pos = t.posAt(off)
	tk.off, tk.end, tk.vi = int32(off), int32(end), -1
	tk.kind, tk.bytes = k, false
}

func (t *tokenizer) grow() {
	t.toks = append(t.toks, make([]token, len(t.toks)+16)...)
}

func (t *tokenizer) add(tk token) {
	if t.n == len(t.toks) {
		t.grow()
	}
	t.toks[t.n] = tk
	t.n++
}

// emitVal appends a token whose value is not its source text.
func (t *tokenizer) emitVal(k tokKind, pos Pos, off, end int, val string, isBytes bool) {
	t.vals = append(t.vals, val)
	t.add(token{kind: k, bytes: isBytes, pos: pos, off: int32(off), end: int32(end), vi: int32(len(t.vals) - 1)})
}

func (t *tokenizer) step() bool {
	if n := len(t.modes); n > 0 && t.modes[n-1].state != stExpr {
		t.fstringText()
		return true
	}
	if t.atBOL && !t.indentation() {
		return true
	}
	s := t.src
	i := t.i
	for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\f') {
		i++
	}
	t.i = i
	if t.i >= len(s) {
		t.eof()
		return false
	}
	c := s[t.i]
	switch {
	case c < 0x80 && identStart[c] || c >= 0x80:
		t.name()
	case c == '\n':
		if len(t.parens) == 0 {
			t.emit(tNewline, t.i, t.i+1)
			t.atBOL = true
		}
		t.newlineAt(t.i)
		t.i++
	case c == '#':
		for t.i < len(s) && s[t.i] != '\n' {
			t.i++
		}
	case c >= '0' && c <= '9' || c == '.' && t.i+1 < len(s) && isDigit(s[t.i+1]):
		t.number()
	case c == '"' || c == '\'':
		t.str(t.i, false, false, false)
	case c == '\\':
		if t.i+1 < len(s) && s[t.i+1] == '\n' {
			if t.i+2 >= len(s) {
				t.fail(t.posAt(t.i), "unexpected EOF while parsing")
			}
			t.newlineAt(t.i + 1)
			t.i += 2
		} else if t.i+1 >= len(s) {
			t.fail(t.posAt(t.i), "unexpected EOF while parsing")
		} else {
			t.fail(t.posAt(t.i+1), "unexpected character after line continuation character")
		}
	default:
		t.op()
	}
	return true
}

func (t *tokenizer) eof() {
	end := len(t.src)
	if len(t.modes) > 0 {
		m := t.modes[0]
		t.fail(m.start, "unterminated f-string literal (detected at line %d)", t.line)
	}
	if n := len(t.parens); n > 0 {
		p := t.parens[n-1]
		t.fail(p.pos, "'%c' was never closed", p.ch)
	}
	if n := t.n; n > 0 {
		switch t.toks[n-1].kind {
		case tNewline, tDedent, tIndent:
		default:
			t.emit(tNewline, end, end)
		}
	}
	for len(t.indents) > 1 {
		t.indents = t.indents[:len(t.indents)-1]
		t.emit(tDedent, end, end)
	}
	t.emit(tEOF, end, end)
}

// indentation measures the indentation of a new line and emits INDENT or
// DEDENT tokens, with CPython's rules: tabs to multiples of 8, compared
// also with tabs as 1 column to catch inconsistent mixing. It returns
// false when it consumed a blank or comment-only line.
func (t *tokenizer) indentation() bool {
	s := t.src
	col, alt, contCol := 0, 0, 0
	j := t.i
loop:
	for ; j < len(s); j++ {
		switch s[j] {
		case ' ':
			col++
			alt++
		case '\t':
			col = (col/8 + 1) * 8
			alt++
		case '\f':
			col, alt = 0, 0
		case '\\':
			// CPython counts on across a continuation, but the column
			// of the first backslash, if not 0, is the indentation.
			if j+1 >= len(s) || s[j+1] != '\n' {
				break loop
			}
			if contCol == 0 {
				contCol = col
			}
			if j+2 >= len(s) {
				t.fail(t.posAt(j), "unexpected EOF while parsing")
			}
			t.newlineAt(j + 1)
			j++
		default:
			break loop
		}
	}
	if contCol != 0 {
		col, alt = contCol, contCol
	}
	t.i = j
	if j >= len(s) {
		return true
	}
	if c := s[j]; c == '#' || c == '\n' {
		for t.i < len(s) && s[t.i] != '\n' {
			t.i++
		}
		if t.i < len(s) {
			t.newlineAt(t.i)
			t.i++
		}
		return false
	}
	t.atBOL = false
	top := len(t.indents) - 1
	switch {
	case col == t.indents[top]:
		if alt != t.altIndents[top] {
			t.fail(t.posAt(j), "inconsistent use of tabs and spaces in indentation")
		}
	case col > t.indents[top]:
		if len(t.indents) >= maxIndent {
			t.fail(t.posAt(j), "too many levels of indentation")
		}
		if alt <= t.altIndents[top] {
			t.fail(t.posAt(j), "inconsistent use of tabs and spaces in indentation")
		}
		t.indents = append(t.indents, col)
		t.altIndents = append(t.altIndents, alt)
		t.emit(tIndent, j, j)
	default:
		for top > 0 && col < t.indents[top] {
			top--
			t.emit(tDedent, j, j)
		}
		t.indents = t.indents[:top+1]
		t.altIndents = t.altIndents[:top+1]
		if col != t.indents[top] {
			t.fail(t.posAt(j), "unindent does not match any outer indentation level")
		}
		if alt != t.altIndents[top] {
			t.fail(t.posAt(j), "inconsistent use of tabs and spaces in indentation")
		}
	}
	return true
}

var identStart, identCont [128]bool

func init() {
	for c := 0; c < 128; c++ {
		l := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_'
		identStart[c] = l
		identCont[c] = l || c >= '0' && c <= '9'
	}
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// The XID properties approximated from the unicode package's categories:
// a superset of CPython's, so no valid identifier is refused.
func isXIDStart(r rune) bool {
	return r == '_' || unicode.IsLetter(r) || unicode.Is(unicode.Nl, r) || unicode.Is(unicode.Other_ID_Start, r)
}

func isXIDContinue(r rune) bool {
	return isXIDStart(r) || unicode.In(r, unicode.Mn, unicode.Mc, unicode.Nd, unicode.Pc, unicode.Other_ID_Continue)
}

func (t *tokenizer) name() {
	s := t.src
	start := t.i
	j := start
	ascii := true
	for j < len(s) {
		c := s[j]
		if c < 0x80 {
			if identCont[c] {
				j++
				continue
			}
			break
		}
		r, size := utf8.DecodeRuneInString(s[j:])
		if j == start && isXIDStart(r) || j > start && isXIDContinue(r) {
			ascii = false
			j += size
			continue
		}
		break
	}
	if j == start {
		r, _ := utf8.DecodeRuneInString(s[j:])
		t.fail(t.posAt(j), "invalid character '%c' (U+%04X)", r, r)
	}
	word := s[start:j]
	if ascii && j-start <= 2 && j < len(s) && (s[j] == '"' || s[j] == '\'') {
		if ok, raw, isBytes, f := strPrefix(word); ok {
			t.i = j
			t.str(start, raw, isBytes, f)
			return
		}
	}
	t.i = j
	if ascii {
		if k := keyword(word); k != tName {
			t.emit(k, start, j)
			return
		}
		t.emit(tName, start, j)
		return
	}
	// Keywords are matched on the source text, as CPython does, so a
	// non-ASCII spelling of one is a name.
	id := norm.NFKC.String(word)
	// XID characters keep an identifier an identifier under NFKC; the
	// letters that do not (U+FDFB becomes words with a space) are not XID.
	for i, r := range id {
		if !(r == '_' || r < 0x80 && identCont[r] && (i > 0 || identStart[r]) ||
			r >= 0x80 && (i == 0 && isXIDStart(r) || i > 0 && isXIDContinue(r))) {
			r, _ := utf8.DecodeRuneInString(word[strings.IndexFunc(word, func(r rune) bool { return r >= 0x80 }):])
			t.fail(t.posAt(start), "invalid character '%c' (U+%04X)", r, r)
		}
	}
	t.emitVal(tName, t.posAt(start), start, j, id, false)
}

func strPrefix(w string) (ok, raw, isBytes, f bool) {
	u := false
	for i := 0; i < len(w); i++ {
		switch w[i] | 0x20 {
		case 'r':
			if raw {
				return
			}
			raw = true
		case 'b':
			if isBytes {
				return
			}
			isBytes = true
		case 'f':
			if f {
				return
			}
			f = true
		case 'u':
			if u {
				return
			}
			u = true
		default:
			return
		}
	}
	if u && len(w) > 1 || isBytes && f {
		return
	}
	return true, raw, isBytes, f
}

func (t *tokenizer) number() {
	s := t.src
	start := t.i
	j := start
	if s[j] == '0' && j+1 < len(s) && (s[j+1]|0x20 == 'x' || s[j+1]|0x20 == 'o' || s[j+1]|0x20 == 'b') {
		base := s[j+1] | 0x20
		name := "binary"
		if base == 'x' {
			name = "hexadecimal"
		} else if base == 'o' {
			name = "octal"
		}
		isd := func(c byte) bool {
			switch base {
			case 'x':
				return isDigit(c) || c|0x20 >= 'a' && c|0x20 <= 'f'
			case 'o':
				return c >= '0' && c <= '7'
			}
			return c == '0' || c == '1'
		}
		j += 2
		n := 0
		for {
			if j < len(s) && s[j] == '_' {
				j++
				if j >= len(s) || !isd(s[j]) {
					if j < len(s) && isDigit(s[j]) {
						t.fail(t.posAt(j), "invalid digit '%c' in %s literal", s[j], name)
					}
					t.fail(t.posAt(j), "invalid %s literal", name)
				}
			}
			if j < len(s) && isd(s[j]) {
				j++
				n++
				continue
			}
			break
		}
		if j < len(s) && isDigit(s[j]) {
			t.fail(t.posAt(j), "invalid digit '%c' in %s literal", s[j], name)
		}
		if n == 0 {
			t.fail(t.posAt(j), "invalid %s literal", name)
		}
		t.endOfNumber(j, name)
		t.i = j
		t.emit(tNumber, start, j)
		return
	}
	zeroStart := s[j] == '0'
	fraction, exponent := false, false
	if s[j] != '.' {
		j = t.decimal(j)
	}
	intPart := s[start:j]
	if j < len(s) && s[j] == '.' {
		fraction = true
		j++
		if j < len(s) && isDigit(s[j]) {
			j = t.decimal(j)
		}
	}
	if j < len(s) && s[j]|0x20 == 'e' {
		k := j + 1
		if k < len(s) && (s[k] == '+' || s[k] == '-') {
			k++
		}
		if k < len(s) && isDigit(s[k]) {
			j = t.decimal(k)
			exponent = true
		} else if k > j+1 {
			t.fail(t.posAt(k), "invalid decimal literal")
		}
	}
	kind := "decimal"
	if j < len(s) && s[j]|0x20 == 'j' {
		j++
		kind = "imaginary"
	} else if zeroStart && !fraction && !exponent {
		for i := 0; i < len(intPart); i++ {
			if intPart[i] != '0' && intPart[i] != '_' {
				t.fail(t.posAt(start), "leading zeros in decimal integer literals are not permitted; use an 0o prefix for octal integers")
			}
		}
	}
	t.endOfNumber(j, kind)
	t.i = j
	t.emit(tNumber, start, j)
}

// decimal consumes digits with single underscores between them.
func (t *tokenizer) decimal(j int) int {
	s := t.src
	for {
		for j < len(s) && isDigit(s[j]) {
			j++
		}
		if j < len(s) && s[j] == '_' {
			j++
			if j >= len(s) || !isDigit(s[j]) {
				t.fail(t.posAt(j-1), "invalid decimal literal")
			}
			continue
		}
		return j
	}
}

// endOfNumber allows a keyword to follow a number directly ("1if x
// else 2"), as CPython does, and refuses any other letter.
func (t *tokenizer) endOfNumber(j int, kind string) {
	s := t.src
	if j >= len(s) {
		return
	}
	c := s[j]
	if c < 0x80 && !identCont[c] {
		return
	}
	rest := s[j:]
	has := func(p string) bool { return len(rest) >= len(p) && rest[:len(p)] == p }
	switch c {
	case 'a':
		if has("and") {
			return
		}
	case 'e':
		if has("else") {
			return
		}
	case 'f':
		if has("for") {
			return
		}
	case 'i':
		if has("if") || has("in") || has("is") {
			return
		}
	case 'n':
		if has("not") {
			return
		}
	case 'o':
		if has("or") {
			return
		}
	}
	t.fail(t.posAt(j), "invalid %s literal", kind)
}

// str scans a literal whose prefix starts at start and whose opening
// quote is at t.i.
func (t *tokenizer) str(start int, raw, isBytes, f bool) {
	s := t.src
	pos := t.posAt(start)
	q := s[t.i]
	triple := t.i+2 < len(s) && s[t.i+1] == q && s[t.i+2] == q
	n := 1
	if triple {
		n = 3
	}
	if f {
		t.modes = append(t.modes, fmode{state: stLiteral, quote: q, triple: triple, raw: raw, start: pos})
		t.i += n
		t.add(token{kind: tFStart, pos: pos, off: int32(start), end: int32(t.i), vi: -1})
		return
	}
	body := t.i + n
	j := body
	for {
		if j >= len(s) {
			if triple {
				t.fail(pos, "unterminated triple-quoted string literal (detected at line %d)", t.line)
			}
			t.fail(pos, "unterminated string literal (detected at line %d)", t.line)
		}
		c := s[j]
		if c == '\\' {
			j++
			if j < len(s) {
				if s[j] == '\n' {
					t.newlineAt(j)
				}
				j++
			}
			continue
		}
		if c == '\n' {
			if !triple {
				t.fail(pos, "unterminated string literal (detected at line %d)", t.line)
			}
			t.newlineAt(j)
		} else if c == q && (!triple || j+2 < len(s) && s[j+1] == q && s[j+2] == q) {
			break
		}
		j++
	}
	text := s[body:j]
	t.i = j + n
	if isBytes {
		for k := 0; k < len(text); k++ {
			if text[k] >= 0x80 {
				t.fail(pos, "bytes can only contain ASCII literal characters")
			}
		}
	}
	val, msg := decodeString(text, raw, isBytes, false)
	if msg != "" {
		t.fail(pos, "%s", msg)
	}
	t.emitVal(tString, pos, start, t.i, val, isBytes)
}

// fstringText scans literal text of an f-string or of a format spec, up
// to the next replacement field, the end of the spec, or the closing quote.
func (t *tokenizer) fstringText() {
	s := t.src
	m := &t.modes[len(t.modes)-1]
	j := t.i
	pos := t.posAt(j)
	for {
		if j >= len(s) {
			t.unterminatedF(m)
		}
		c := s[j]
		switch {
		case c == '\\':
			if !m.raw && j+2 < len(s) && s[j+1] == 'N' && s[j+2] == '{' {
				k := j + 3
				// As in CPython, a '{' ends the name and opens a field.
				for k < len(s) && s[k] != '}' && s[k] != '{' && s[k] != '\n' && s[k] != m.quote {
					k++
				}
				if k < len(s) && s[k] == '}' {
					j = k + 1
					continue
				}
			}
			if j+1 < len(s) && (s[j+1] == '{' || s[j+1] == '}') {
				j++
				continue
			}
			j++
			if j < len(s) {
				if s[j] == '\n' {
					t.newlineAt(j)
				}
				j++
			}
		case c == '\n':
			if !m.triple {
				t.unterminatedF(m)
			}
			t.newlineAt(j)
			j++
		case c == m.quote && (!m.triple || j+2 < len(s) && s[j+1] == c && s[j+2] == c):
			if m.state == stSpec {
				t.fail(t.posAt(j), "f-string: expecting '}'")
			}
			t.middle(t.i, j, pos, m.raw)
			n := 1
			if m.triple {
				n = 3
			}
			t.emit(tFEnd, j, j+n)
			t.modes = t.modes[:len(t.modes)-1]
			t.i = j + n
			return
		case c == '{':
			if m.state == stLiteral && j+1 < len(s) && s[j+1] == '{' {
				j += 2
				continue
			}
			t.middle(t.i, j, pos, m.raw)
			t.push('{', j)
			t.emit(tLBrace, j, j+1)
			t.modes = append(t.modes, fmode{state: stExpr, quote: m.quote, triple: m.triple, raw: m.raw, level: len(t.parens), start: m.start})
			t.i = j + 1
			return
		case c == '}':
			if m.state == stLiteral {
				if j+1 < len(s) && s[j+1] == '}' {
					j += 2
					continue
				}
				t.fail(t.posAt(j), "f-string: single '}' is not allowed")
			}
			t.middle(t.i, j, pos, m.raw)
			t.emit(tRBrace, j, j+1)
			t.parens = t.parens[:len(t.parens)-1]
			t.modes = t.modes[:len(t.modes)-1]
			t.i = j + 1
			return
		default:
			j++
		}
	}
}

func (t *tokenizer) unterminatedF(m *fmode) {
	if m.triple {
		t.fail(m.start, "unterminated triple-quoted f-string literal (detected at line %d)", t.line)
	}
	t.fail(m.start, "unterminated f-string literal (detected at line %d)", t.line)
}

func (t *tokenizer) middle(from, to int, pos Pos, raw bool) {
	if to <= from {
		return
	}
	val, msg := decodeString(t.src[from:to], raw, false, true)
	if msg != "" {
		t.fail(pos, "%s", msg)
	}
	t.emitVal(tFMiddle, pos, from, to, val, false)
}

func (t *tokenizer) push(c byte, off int) {
	if len(t.parens) >= maxParens {
		t.fail(t.posAt(off), "too many nested parentheses")
	}
	t.parens = append(t.parens, paren{ch: c, pos: t.posAt(off), line: t.line})
}

func (t *tokenizer) op() {
	s := t.src
	j := t.i
	c := s[j]
	var c1, c2 byte
	if j+1 < len(s) {
		c1 = s[j+1]
	}
	if j+2 < len(s) {
		c2 = s[j+2]
	}
	// Inside a replacement field, at its own bracket level, ':' starts
	// the format spec, '}' ends the field and '!' the conversion.
	if n := len(t.modes); n > 0 && len(t.parens) == t.modes[n-1].level {
		m := &t.modes[n-1]
		switch {
		case c == ':':
			t.emit(tColon, j, j+1)
			m.state = stSpec
			t.i++
			return
		case c == '}':
			t.emit(tRBrace, j, j+1)
			t.parens = t.parens[:len(t.parens)-1]
			t.modes = t.modes[:n-1]
			t.i++
			return
		}
	}
	k, n := tokKind(0), 1
	switch c {
	case '(':
		t.push(c, j)
		k = tLPar
	case '[':
		t.push(c, j)
		k = tLSqb
	case '{':
		t.push(c, j)
		k = tLBrace
	case ')', ']', '}':
		if len(t.parens) == 0 {
			t.fail(t.posAt(j), "unmatched '%c'", c)
		}
		top := t.parens[len(t.parens)-1]
		open, kind := byte('('), tRPar
		if c == ']' {
			open, kind = '[', tRSqb
		} else if c == '}' {
			open, kind = '{', tRBrace
		}
		if top.ch != open {
			if top.line != t.line {
				t.fail(t.posAt(j), "closing parenthesis '%c' does not match opening parenthesis '%c' on line %d", c, top.ch, top.line)
			}
			t.fail(t.posAt(j), "closing parenthesis '%c' does not match opening parenthesis '%c'", c, top.ch)
		}
		t.parens = t.parens[:len(t.parens)-1]
		k = kind
	case ':':
		k = tColon
		if c1 == '=' {
			k, n = tColonEqual, 2
		}
	case ',':
		k = tComma
	case ';':
		k = tSemi
	case '~':
		k = tTilde
	case '+':
		k = tPlus
		if c1 == '=' {
			k, n = tPlusEqual, 2
		}
	case '-':
		k = tMinus
		if c1 == '=' {
			k, n = tMinEqual, 2
		} else if c1 == '>' {
			k, n = tRArrow, 2
		}
	case '*':
		k = tStar
		if c1 == '*' {
			k, n = tDoubleStar, 2
			if c2 == '=' {
				k, n = tDoubleStarEqual, 3
			}
		} else if c1 == '=' {
			k, n = tStarEqual, 2
		}
	case '/':
		k = tSlash
		if c1 == '/' {
			k, n = tDoubleSlash, 2
			if c2 == '=' {
				k, n = tDoubleSlashEqual, 3
			}
		} else if c1 == '=' {
			k, n = tSlashEqual, 2
		}
	case '|':
		k = tVbar
		if c1 == '=' {
			k, n = tVbarEqual, 2
		}
	case '&':
		k = tAmper
		if c1 == '=' {
			k, n = tAmperEqual, 2
		}
	case '^':
		k = tCircumflex
		if c1 == '=' {
			k, n = tCircumflexEqual, 2
		}
	case '%':
		k = tPercent
		if c1 == '=' {
			k, n = tPercentEqual, 2
		}
	case '@':
		k = tAt
		if c1 == '=' {
			k, n = tAtEqual, 2
		}
	case '<':
		k = tLess
		if c1 == '<' {
			k, n = tLeftShift, 2
			if c2 == '=' {
				k, n = tLeftShiftEqual, 3
			}
		} else if c1 == '=' {
			k, n = tLessEqual, 2
		}
	case '>':
		k = tGreater
		if c1 == '>' {
			k, n = tRightShift, 2
			if c2 == '=' {
				k, n = tRightShiftEqual, 3
			}
		} else if c1 == '=' {
			k, n = tGreaterEqual, 2
		}
	case '=':
		k = tEqual
		if c1 == '=' {
			k, n = tEqEqual, 2
		}
	case '!':
		k = tExclamation
		if c1 == '=' {
			k, n = tNotEqual, 2
		}
	case '.':
		k = tDot
		if c1 == '.' && c2 == '.' {
			k, n = tEllipsis, 3
		}
	default:
		t.fail(t.posAt(j), "invalid syntax")
	}
	t.emit(k, j, j+n)
	t.i = j + n
}
