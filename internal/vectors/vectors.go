// Package vectors holds the byte-exact capture of three stock Pinecone
// routers (testdata/README.md says what it contains) for the codec and
// router tests. The capture is embedded, so every test that uses it runs in
// any clone; a missing or damaged file is a build or test failure, never a
// skip. Only tests import this package.
package vectors

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/pineconed/pineconed/internal/testhelp"
)

// captureName is the capture's file under testdata, as error messages name it.
const captureName = "internal/vectors/testdata/stock-3node-capture.jsonl"

//go:embed testdata/stock-3node-capture.jsonl
var capture []byte

// Record is one write a stock router made on one of its links: a whole
// frame, or the 104-byte hello.
type Record struct {
	TimeMS int    `json:"t_ms"`
	Link   string `json:"link"` // "X->Y": bytes X wrote to Y
	Hex    string `json:"hex"`
	Bytes  []byte `json:"-"`
}

// From is the name of the router that wrote the record.
func (r Record) From() byte { return r.Link[0] }

// To is the name of the router the record was written to.
func (r Record) To() byte { return r.Link[len(r.Link)-1] }

// PrivateKey returns the key of router A, B or C of the capture: ed25519
// with the seed byte 1, 2 or 3 repeated.
func PrivateKey(name byte) ed25519.PrivateKey {
	return testhelp.SeedKey(name - 'A' + 1)
}

// LoadCapture decodes the embedded stock-3node-capture.jsonl, in write
// order. An empty capture is an error: a test fed nothing would prove
// nothing.
func LoadCapture() ([]Record, error) {
	var out []Record
	sc := bufio.NewScanner(bytes.NewReader(capture))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var r Record
		var err error
		if err = json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", captureName, len(out)+1, err)
		}
		if r.Bytes, err = hex.DecodeString(r.Hex); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", captureName, len(out)+1, err)
		}
		if len(r.Link) < 4 {
			return nil, fmt.Errorf("%s:%d: bad link %q", captureName, len(out)+1, r.Link)
		}
		out = append(out, r)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", captureName, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no records", captureName)
	}
	return out, nil
}
