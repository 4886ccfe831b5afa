package config

import (
	"strconv"
	"strings"
)

// keyIndex records where keys are defined in a TOML document. BurntSushi/toml
// knows key positions internally but does not export them, and we want a line
// for every error, not only for syntax errors. The scanner below runs only
// on documents the library has already accepted, so it need not diagnose
// anything: if it meets something it does not understand it stops, and keys
// after that point simply have no line (errors then show file and key only).
type keyIndex struct {
	lines map[string]int   // dotted key -> line of its first definition
	elems map[string][]int // dotted key of an array value -> line of each element
}

// line returns the line of key, or of its nearest enclosing table or dotted
// prefix that the document mentions (a missing key is reported where its
// table starts), or 0.
func (x *keyIndex) line(path []string) int {
	if x == nil {
		return 0
	}
	for n := len(path); n > 0; n-- {
		if l, ok := x.lines[dotted(path[:n])]; ok {
			return l
		}
	}
	return 0
}

// elemLine returns the line of element i of the array at path, falling back
// to the line of the key.
func (x *keyIndex) elemLine(path []string, i int) int {
	if x != nil {
		if ls := x.elems[dotted(path)]; i >= 0 && i < len(ls) {
			return ls[i]
		}
	}
	return x.line(path)
}

// dotted spells a key path the way a user would write it in the file:
// bare parts joined by dots, parts that are not bare keys quoted.
func dotted(path []string) string {
	var b strings.Builder
	for i, p := range path {
		if i > 0 {
			b.WriteByte('.')
		}
		if isBareKey(p) {
			b.WriteString(p)
		} else {
			b.WriteString(strconv.Quote(p))
		}
	}
	return b.String()
}

func isBareKey(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isBareKeyByte(s[i]) {
			return false
		}
	}
	return true
}

func isBareKeyByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// indexKeys scans a syntactically valid TOML document for key definitions.
func indexKeys(data string) *keyIndex {
	sc := &keyScanner{s: data, line: 1, idx: &keyIndex{
		lines: map[string]int{},
		elems: map[string][]int{},
	}}
	sc.document()
	return sc.idx
}

type keyScanner struct {
	s    string
	i    int
	line int
	idx  *keyIndex
}

func (sc *keyScanner) eof() bool { return sc.i >= len(sc.s) }

func (sc *keyScanner) peek() byte {
	if sc.eof() {
		return 0
	}
	return sc.s[sc.i]
}

func (sc *keyScanner) advance() {
	if !sc.eof() {
		if sc.s[sc.i] == '\n' {
			sc.line++
		}
		sc.i++
	}
}

// skip consumes spaces and tabs and, when newlines is set, also newlines
// and comments (a comment always runs to the end of its line).
func (sc *keyScanner) skip(newlines bool) {
	for !sc.eof() {
		switch c := sc.peek(); {
		case c == ' ' || c == '\t':
			sc.advance()
		case newlines && (c == '\n' || c == '\r'):
			sc.advance()
		case newlines && c == '#':
			for !sc.eof() && sc.peek() != '\n' {
				sc.advance()
			}
		default:
			return
		}
	}
}

func (sc *keyScanner) expect(c byte) bool {
	if sc.peek() != c {
		return false
	}
	sc.advance()
	return true
}

func (sc *keyScanner) record(path []string, line int) {
	for n := 1; n <= len(path); n++ {
		k := dotted(path[:n])
		if _, ok := sc.idx.lines[k]; !ok {
			sc.idx.lines[k] = line
		}
	}
}

func (sc *keyScanner) document() {
	var table []string
	for {
		sc.skip(true)
		if sc.eof() {
			return
		}
		line := sc.line
		if sc.peek() == '[' {
			sc.advance()
			array := sc.expect('[')
			sc.skip(false)
			path, ok := sc.keyPath()
			if !ok {
				return
			}
			sc.skip(false)
			if !sc.expect(']') || array && !sc.expect(']') {
				return
			}
			table = path
			sc.record(table, line)
			continue
		}
		path, ok := sc.keyPath()
		if !ok {
			return
		}
		full := append(append([]string{}, table...), path...)
		sc.record(full, line)
		sc.skip(false)
		if !sc.expect('=') {
			return
		}
		sc.skip(false)
		if !sc.value(full) {
			return
		}
	}
}

// keyPath reads a possibly dotted key: bare, "basic" or 'literal' parts.
func (sc *keyScanner) keyPath() ([]string, bool) {
	var path []string
	for {
		sc.skip(false)
		var part string
		switch c := sc.peek(); {
		case c == '"':
			start := sc.i
			if !sc.quoted('"', true) {
				return nil, false
			}
			p, err := strconv.Unquote(sc.s[start:sc.i])
			if err != nil {
				return nil, false
			}
			part = p
		case c == '\'':
			start := sc.i + 1
			if !sc.quoted('\'', false) {
				return nil, false
			}
			part = sc.s[start : sc.i-1]
		case isBareKeyByte(c):
			start := sc.i
			for !sc.eof() && isBareKeyByte(sc.peek()) {
				sc.advance()
			}
			part = sc.s[start:sc.i]
		default:
			return nil, false
		}
		path = append(path, part)
		sc.skip(false)
		if sc.peek() != '.' {
			return path, true
		}
		sc.advance()
	}
}

// value skips one value. When path is not nil the value belongs to that key,
// and for an array the line of each element is recorded.
func (sc *keyScanner) value(path []string) bool {
	switch sc.peek() {
	case '"':
		if strings.HasPrefix(sc.s[sc.i:], `"""`) {
			return sc.multiline(`"""`, true)
		}
		return sc.quoted('"', true)
	case '\'':
		if strings.HasPrefix(sc.s[sc.i:], `'''`) {
			return sc.multiline(`'''`, false)
		}
		return sc.quoted('\'', false)
	case '[':
		return sc.array(path)
	case '{':
		return sc.inlineTable(path)
	default:
		return sc.bare()
	}
}

// quoted skips a one-line string quoted with q: a basic string (double
// quotes, backslash escapes) or a literal one (single quotes, no escapes).
// A newline before the closing quote makes it malformed.
func (sc *keyScanner) quoted(q byte, escapes bool) bool {
	sc.advance() // opening quote
	for !sc.eof() {
		switch sc.peek() {
		case '\\':
			if escapes {
				sc.advance() // the escaped byte is skipped below
			}
		case q:
			sc.advance()
			return true
		case '\n':
			return false
		}
		sc.advance()
	}
	return false
}

// multiline skips a multi-line basic or literal string. Up to two quotes may sit
// right before the closing delimiter, so any run of quotes ends it.
func (sc *keyScanner) multiline(delim string, escapes bool) bool {
	for range 3 {
		sc.advance()
	}
	for !sc.eof() {
		if escapes && sc.peek() == '\\' {
			sc.advance()
			sc.advance()
			continue
		}
		if strings.HasPrefix(sc.s[sc.i:], delim) {
			for sc.peek() == delim[0] {
				sc.advance()
			}
			return true
		}
		sc.advance()
	}
	return false
}

func (sc *keyScanner) array(path []string) bool {
	sc.advance() // [
	key := ""
	if path != nil {
		key = dotted(path)
		sc.idx.elems[key] = []int{}
	}
	for {
		sc.skip(true)
		if sc.expect(']') {
			return true
		}
		if path != nil {
			sc.idx.elems[key] = append(sc.idx.elems[key], sc.line)
		}
		if !sc.value(nil) {
			return false
		}
		sc.skip(true)
		if sc.expect(',') {
			continue
		}
		return sc.expect(']')
	}
}

func (sc *keyScanner) inlineTable(path []string) bool {
	sc.advance() // {
	for {
		sc.skip(true)
		if sc.expect('}') {
			return true
		}
		line := sc.line
		sub, ok := sc.keyPath()
		if !ok {
			return false
		}
		var full []string
		if path != nil {
			full = append(append([]string{}, path...), sub...)
			sc.record(full, line)
		}
		sc.skip(false)
		if !sc.expect('=') {
			return false
		}
		sc.skip(false)
		if !sc.value(full) {
			return false
		}
		sc.skip(true)
		if sc.expect(',') {
			continue
		}
		return sc.expect('}')
	}
}

// bare skips a number, boolean, or date-time. A date and a time may be
// separated by one space ("1979-05-27 07:32:00"), which is the only place a
// bare value contains a space.
func (sc *keyScanner) bare() bool {
	start := sc.i
	end := func(c byte) bool {
		return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == ',' || c == ']' || c == '}' || c == '#'
	}
	for !sc.eof() && !end(sc.peek()) {
		sc.advance()
	}
	tok := sc.s[start:sc.i]
	if len(tok) == 10 && tok[4] == '-' && tok[7] == '-' && sc.peek() == ' ' &&
		sc.i+1 < len(sc.s) && sc.s[sc.i+1] >= '0' && sc.s[sc.i+1] <= '9' {
		sc.advance()
		for !sc.eof() && !end(sc.peek()) {
			sc.advance()
		}
	}
	return sc.i > start
}
