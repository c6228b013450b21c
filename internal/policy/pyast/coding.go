package pyast

import (
	"bytes"
	"strings"
)

// PEP 263 coding declarations. CPython decodes the source with the
// declared codec, so a parser that ignored the cookie could see other
// code than CPython runs: "# coding: utf-7" turns the ASCII text
// "+AAo-" into a newline and smuggles a statement out of a comment.
// pyast reads UTF-8 only; it accepts a cookie that names UTF-8, or an
// ASCII-compatible codec when the source is pure ASCII (same decoding),
// and refuses every other cookie.
var asciiCompatible = map[string]bool{
	"ascii": true, "usascii": true, "646": true, "latin1": true, "latin": true,
	"l1": true, "iso88591": true, "isolatin1": true, "cp1252": true,
	"windows1252": true, "cp1250": true, "cp1251": true, "cp1253": true,
	"cp1254": true, "cp1255": true, "cp1256": true, "cp1257": true,
	"cp1258": true, "koi8r": true, "koi8u": true, "macroman": true,
	"iso88592": true, "iso88593": true, "iso88594": true, "iso88595": true,
	"iso88596": true, "iso88597": true, "iso88598": true, "iso88599": true,
	"iso885910": true, "iso885913": true, "iso885914": true,
	"iso885915": true, "iso885916": true, "latin2": true, "latin9": true,
	"cp437": true, "cp850": true, "eucjp": true, "euckr": true, "gbk": true,
	"gb2312": true, "gb18030": true, "big5": true,
}

func isUTF8Name(norm string) bool {
	switch norm {
	case "utf8", "u8", "utf", "cp65001":
		return true
	}
	return false
}

// checkCoding applies the cookie rule above; src has had its BOM removed.
func checkCoding(src []byte, bom bool) {
	line1, rest, _ := cutLine(src)
	name, line := cookie(line1), 1
	if name == "" && isBlankOrComment(line1) {
		line2, _, _ := cutLine(rest)
		name, line = cookie(line2), 2
	}
	if name == "" {
		return
	}
	lower := strings.ToLower(name)
	// CPython's get_normal_name: "utf-8-..." variants are UTF-8.
	if dashed := strings.ReplaceAll(lower, "_", "-"); dashed == "utf-8" || strings.HasPrefix(dashed, "utf-8-") {
		return
	}
	norm := strings.NewReplacer("-", "", "_", "", ".", "", " ", "").Replace(lower)
	if bom {
		panic(&SyntaxError{Pos: Pos{line, 1}, Msg: "encoding problem: " + name + " with BOM"})
	}
	if isUTF8Name(norm) {
		return
	}
	if asciiCompatible[norm] {
		ascii := true
		for _, c := range src {
			if c >= 0x80 {
				ascii = false
				break
			}
		}
		if ascii {
			return
		}
	}
	panic(&SyntaxError{Pos: Pos{line, 1}, Msg: "encoding declaration '" + name + "' is not supported: only UTF-8 source is accepted"})
}

func cutLine(b []byte) (line, rest []byte, ok bool) {
	i := bytes.IndexAny(b, "\r\n")
	if i < 0 {
		return b, nil, false
	}
	j := i + 1
	if b[i] == '\r' && j < len(b) && b[j] == '\n' {
		j++
	}
	return b[:i], b[j:], true
}

// cookie finds a coding declaration in a line as CPython's
// get_coding_spec does: a comment that is the only thing on the line,
// containing "coding" followed by ':' or '=', optional blanks and a name.
func cookie(line []byte) string {
	i := 0
	for i < len(line) && (line[i] == ' ' || line[i] == '\t' || line[i] == '\f') {
		i++
	}
	if i >= len(line) || line[i] != '#' {
		return ""
	}
	for {
		j := bytes.Index(line[i:], []byte("coding"))
		if j < 0 {
			return ""
		}
		i += j + 6
		if i >= len(line) || line[i] != ':' && line[i] != '=' {
			continue
		}
		i++
		for i < len(line) && (line[i] == ' ' || line[i] == '\t') {
			i++
		}
		k := i
		for k < len(line) && (isAlnum(line[k]) || line[k] == '-' || line[k] == '_' || line[k] == '.') {
			k++
		}
		if k > i {
			return string(line[i:k])
		}
	}
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func isBlankOrComment(line []byte) bool {
	t := bytes.TrimLeft(line, " \t\f")
	return len(t) == 0 || t[0] == '#'
}
