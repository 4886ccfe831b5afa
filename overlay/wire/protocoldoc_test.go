package wire

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/pineconed/pineconed/internal/testhelp"
)

// docExamples reads the blocks fenced as "```hex NAME" in docs/protocol.md
// and the rows of its §2.1 varint table, both decoded. Text after "#" on a
// line of a block is a comment.
func docExamples(t *testing.T) (blocks map[string][]byte, varints map[uint64][]byte) {
	t.Helper()
	path := filepath.Join(testhelp.ModuleRoot(t), "docs", "protocol.md")
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	blocks, varints = map[string][]byte{}, map[uint64][]byte{}
	row := regexp.MustCompile("^\\| ([0-9]+) \\| `([0-9a-f ]+)` \\|$")
	var name, section string
	var body strings.Builder
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		text := sc.Text()
		switch {
		case name != "" && text == "```":
			b, err := hex.DecodeString(body.String())
			if err != nil {
				t.Fatalf("%s:%d: example %s: %v", path, line, name, err)
			}
			if _, dup := blocks[name]; dup {
				t.Fatalf("%s:%d: example %s given twice", path, line, name)
			}
			blocks[name], name = b, ""
			body.Reset()
		case name != "":
			text, _, _ = strings.Cut(text, "#")
			body.WriteString(strings.Join(strings.Fields(text), ""))
		case strings.HasPrefix(text, "```hex "):
			name = strings.TrimPrefix(text, "```hex ")
		case strings.HasPrefix(text, "### "):
			section = strings.Fields(text)[1]
		case section == "2.1" && row.MatchString(text):
			m := row.FindStringSubmatch(text)
			v, err := strconv.ParseUint(m[1], 10, 64)
			if err != nil {
				t.Fatalf("%s:%d: %v", path, line, err)
			}
			varints[v] = testhelp.Unhex(t, m[2])
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if name != "" {
		t.Fatalf("%s: example %s is not closed", path, name)
	}
	return blocks, varints
}

// TestProtocolDocExamples holds docs/protocol.md to our codec: every example
// of §12 and §2.3 is exactly what our encoder builds for it, and every row of
// the §2.1 varint table is what AppendVarint writes and ReadVarint reads
// back. An example in the document without a construction here, or the
// other way round, is a failure too.
func TestProtocolDocExamples(t *testing.T) {
	blocks, varints := docExamples(t)
	byName := map[string][]byte{}
	for _, g := range golden(t) {
		b, err := g.msg.Append(nil)
		if err != nil {
			t.Fatalf("%s: %v", g.name, err)
		}
		byName[g.name] = b
	}
	helloA, helloB := NewHello(privA), NewHello(privB)
	coords, err := AppendCoordinates(nil, Coordinates{1, 2, 3, 4000})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]byte{
		"E1":                byName["E1 keepalive"],
		"E2":                helloA[:],
		"E2-B":              helloB[:],
		"E3":                byName["E3 announcement A"],
		"E4":                byName["E4 announcement A via B"],
		"E5":                byName["E5 traffic by SNEK"],
		"E5-src":            byName["E5 variant source coords"],
		"E6":                byName["E6 bootstrap"],
		"E7":                byName["E7 traffic by tree"],
		"E7-long":           byName["E7 variant long coords"],
		"E8":                byName["E8 wakeup"],
		"E9":                AppendBeacon(nil, keyA, 65432),
		"E10":               byName["live pong C to B by tree"],
		"coords-1-2-3-4000": coords,
	}
	for name, w := range want {
		got, ok := blocks[name]
		switch {
		case w == nil:
			t.Errorf("example %s: no golden construction of that name", name)
		case !ok:
			t.Errorf("docs/protocol.md lacks example %s", name)
		case !bytes.Equal(got, w):
			t.Errorf("docs/protocol.md example %s:\n doc %x\n our %x", name, got, w)
		}
	}
	for name := range blocks {
		if _, ok := want[name]; !ok {
			t.Errorf("docs/protocol.md example %s is checked by nothing", name)
		}
	}

	if len(varints) == 0 {
		t.Fatal("no rows found in the §2.1 varint table")
	}
	for v, b := range varints {
		if got := AppendVarint(nil, v); !bytes.Equal(got, b) {
			t.Errorf("§2.1: %d is %x in the document, %x by AppendVarint", v, b, got)
		}
		if got, n, err := ReadVarint(b); err != nil || got != v || n != len(b) {
			t.Errorf("§2.1: ReadVarint(%x) = %d, %d, %v; want %d", b, got, n, err, v)
		}
	}
}
