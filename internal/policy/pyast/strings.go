package pyast

import (
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"golang.org/x/text/unicode/runenames"
)

// decodeString decodes the body of a literal (between its quotes). For an
// f-string part (fpart) it also undoubles "{{" and "}}". The second result
// is a SyntaxError message, or "".
func decodeString(s string, raw, isBytes, fpart bool) (string, string) {
	if strings.IndexByte(s, '\\') < 0 || raw {
		if !fpart || strings.IndexByte(s, '{') < 0 && strings.IndexByte(s, '}') < 0 {
			return s, ""
		}
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); {
		c := s[i]
		if fpart && (c == '{' || c == '}') && i+1 < len(s) && s[i+1] == c {
			b = append(b, c)
			i += 2
			continue
		}
		if c != '\\' || raw || i+1 >= len(s) {
			b = append(b, c)
			i++
			continue
		}
		i++
		c = s[i]
		i++
		switch c {
		case '\n':
		case '\\', '\'', '"':
			b = append(b, c)
		case 'a':
			b = append(b, 7)
		case 'b':
			b = append(b, 8)
		case 'f':
			b = append(b, 12)
		case 'n':
			b = append(b, 10)
		case 'r':
			b = append(b, 13)
		case 't':
			b = append(b, 9)
		case 'v':
			b = append(b, 11)
		case '0', '1', '2', '3', '4', '5', '6', '7':
			v := rune(c - '0')
			for n := 1; n < 3 && i < len(s) && s[i] >= '0' && s[i] <= '7'; n++ {
				v = v*8 + rune(s[i]-'0')
				i++
			}
			if isBytes {
				b = append(b, byte(v))
			} else {
				b = utf8.AppendRune(b, v)
			}
		case 'x':
			v, ok := hexVal(s, i, 2)
			if !ok {
				if isBytes {
					return "", "(value error) invalid \\x escape"
				}
				return "", "(unicode error) 'unicodeescape' codec can't decode bytes: truncated \\xXX escape"
			}
			i += 2
			if isBytes {
				b = append(b, byte(v))
			} else {
				b = utf8.AppendRune(b, v)
			}
		case 'u', 'U':
			if isBytes {
				b = append(b, '\\', c)
				break
			}
			n := 4
			if c == 'U' {
				n = 8
			}
			v, ok := hexVal(s, i, n)
			if !ok {
				return "", "(unicode error) 'unicodeescape' codec can't decode bytes: truncated \\" + string(c) + strings.Repeat("X", n) + " escape"
			}
			if v > utf8.MaxRune || v < 0 {
				return "", "(unicode error) 'unicodeescape' codec can't decode bytes: illegal Unicode character"
			}
			i += n
			b = appendWTF8(b, v)
		case 'N':
			if isBytes {
				b = append(b, '\\', c)
				break
			}
			end := -1
			if i < len(s) && s[i] == '{' {
				end = strings.IndexByte(s[i:], '}')
			}
			if end < 2 {
				return "", "(unicode error) 'unicodeescape' codec can't decode bytes: malformed \\N character escape"
			}
			if r, ok := lookupName(s[i+1 : i+end]); ok {
				b = appendWTF8(b, r)
			} else {
				// Aliases and named sequences are not in our table:
				// keep the escape as written rather than refuse it.
				b = append(b, s[i-2:i+end+1]...)
			}
			i += end + 1
		default:
			b = append(b, '\\')
			i--
		}
	}
	return string(b), ""
}

func hexVal(s string, i, n int) (rune, bool) {
	if i+n > len(s) {
		return 0, false
	}
	v, err := strconv.ParseUint(s[i:i+n], 16, 32)
	if err != nil || strings.ContainsAny(s[i:i+n], "+-_") {
		return 0, false
	}
	return rune(v), true
}

// appendWTF8 encodes r, keeping a lone surrogate (valid in a Python str)
// as its 3-byte form instead of U+FFFD, as Python's "surrogatepass" does.
func appendWTF8(b []byte, r rune) []byte {
	if r >= 0xD800 && r <= 0xDFFF {
		return append(b, byte(0xE0|r>>12), byte(0x80|(r>>6)&0x3F), byte(0x80|r&0x3F))
	}
	return utf8.AppendRune(b, r)
}

var (
	namesOnce sync.Once
	names     map[string]rune
)

// lookupName resolves a \N{...} name, case-insensitively as Python does.
func lookupName(name string) (rune, bool) {
	name = strings.ToUpper(name)
	if h, ok := strings.CutPrefix(name, "CJK UNIFIED IDEOGRAPH-"); ok {
		v, err := strconv.ParseUint(h, 16, 32)
		return rune(v), err == nil && len(h) >= 4 && len(h) <= 5
	}
	if r, ok := hangulSyllable(name); ok {
		return r, true
	}
	namesOnce.Do(func() {
		names = make(map[string]rune, 40000)
		for r := rune(0); r <= utf8.MaxRune; r++ {
			if n := runenames.Name(r); n != "" && n[0] != '<' {
				names[n] = r
			}
		}
	})
	r, ok := names[name]
	return r, ok
}

var (
	jamoL = []string{"G", "GG", "N", "D", "DD", "R", "M", "B", "BB", "S", "SS", "", "J", "JJ", "C", "K", "T", "P", "H"}
	jamoV = []string{"A", "AE", "YA", "YAE", "EO", "E", "YEO", "YE", "O", "WA", "WAE", "OE", "YO", "U", "WEO", "WE", "WI", "YU", "EU", "YI", "I"}
	jamoT = []string{"", "G", "GG", "GS", "N", "NJ", "NH", "D", "L", "LG", "LM", "LB", "LS", "LT", "LP", "LH", "M", "B", "BS", "S", "SS", "NG", "J", "C", "K", "T", "P", "H"}
)

// hangulSyllable decodes the algorithmic names of Hangul syllables.
func hangulSyllable(name string) (rune, bool) {
	rest, ok := strings.CutPrefix(name, "HANGUL SYLLABLE ")
	if !ok {
		return 0, false
	}
	// Longest-match each part, as unicodedata does.
	match := func(s string, parts []string) (int, string) {
		best, bestLen := -1, -1
		for i, p := range parts {
			if len(p) > bestLen && strings.HasPrefix(s, p) {
				best, bestLen = i, len(p)
			}
		}
		if best < 0 {
			return -1, s
		}
		return best, s[bestLen:]
	}
	l, rest := match(rest, jamoL)
	v, rest := match(rest, jamoV)
	tt, rest := match(rest, jamoT)
	if l < 0 || v < 0 || tt < 0 || rest != "" {
		return 0, false
	}
	return rune(0xAC00 + (l*21+v)*28 + tt), true
}
