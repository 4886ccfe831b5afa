package config

import (
	"reflect"
	"testing"

	"github.com/BurntSushi/toml"
)

// The key scanner must find the definition line of every key, and not be
// fooled by key-like text inside strings, comments and arrays.
func TestIndexKeys(t *testing.T) {
	doc := `# a = 1 in a comment
top = "x = 1 # not a comment"
multi = """
fake = 2
[fake_table]
"""
lit = '''
also = 'fake' ''' # trailing
"quoted key".'lit key' = 1
dotted . spaced = 2   # spaces around dots
date = 1979-05-27 07:32:00Z
next = 3

[tab]
arr = [
  "one",   # comment after
  # a comment line between elements
  ["nested", "array"],
  { k = "v" },
]
inline = { a = 1, b.c = "q", d = [1,
  2] }
after = true

[[list]]
x = 1
[[list]]
y = 2

[ "tab" . sub ]
esc = "a\"b"
last = 'end'
`
	// The library must agree the document is valid, or the test is moot.
	var m map[string]any
	if _, err := toml.Decode(doc, &m); err != nil {
		t.Fatal(err)
	}
	idx := indexKeys(doc)
	wantLines := map[string]int{
		"top": 2, "multi": 3, "lit": 7,
		"\"quoted key\"": 9, "\"quoted key\".\"lit key\"": 9,
		"dotted": 10, "dotted.spaced": 10,
		"date": 11, "next": 12,
		"tab": 14, "tab.arr": 15,
		"tab.inline": 21, "tab.inline.a": 21, "tab.inline.b": 21, "tab.inline.b.c": 21, "tab.inline.d": 21,
		"tab.after": 23,
		"list":      25, "list.x": 26, "list.y": 28,
		"tab.sub": 30, "tab.sub.esc": 31, "tab.sub.last": 32,
	}
	if !reflect.DeepEqual(idx.lines, wantLines) {
		t.Errorf("lines:\n got %v\nwant %v", idx.lines, wantLines)
	}
	wantElems := map[string][]int{"tab.arr": {16, 18, 19}, "tab.inline.d": {21, 22}}
	if !reflect.DeepEqual(idx.elems, wantElems) {
		t.Errorf("elements:\n got %v\nwant %v", idx.elems, wantElems)
	}

	// Fallbacks: a key the file does not mention is placed at its table;
	// an element past the recorded ones at its key.
	if got := idx.line([]string{"tab", "missing"}); got != 14 {
		t.Errorf("missing key under [tab]: line %d, want 14", got)
	}
	if got := idx.elemLine([]string{"tab", "arr"}, 7); got != 15 {
		t.Errorf("element 7: line %d, want 15", got)
	}
	if got := idx.line([]string{"nowhere"}); got != 0 {
		t.Errorf("unknown key: line %d, want 0", got)
	}
	var none *keyIndex
	if none.line([]string{"a"}) != 0 || none.elemLine([]string{"a"}, 0) != 0 {
		t.Error("nil index must give line 0")
	}
}

// On input it does not understand the scanner stops quietly and keeps what
// it found so far.
func TestIndexKeysStopsQuietly(t *testing.T) {
	idx := indexKeys("a = 1\nb = \"unterminated\nc = 2\n")
	if idx.lines["a"] != 1 || idx.lines["b"] != 2 {
		t.Errorf("lost earlier keys: %v", idx.lines)
	}
	if _, ok := idx.lines["c"]; ok {
		t.Errorf("kept scanning after an unterminated string: %v", idx.lines)
	}
}

func TestDotted(t *testing.T) {
	if got := dotted([]string{"peers", "tls", "cert_file"}); got != "peers.tls.cert_file" {
		t.Error(got)
	}
	if got := dotted([]string{"a b", "", "x-1"}); got != `"a b"."".x-1` {
		t.Error(got)
	}
}
