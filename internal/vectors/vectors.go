// Package vectors loads the byte-exact capture of three stock Pinecone
// routers (../shared/vectors beside the project) for the codec and router
// tests. The capture is data the project does not ship: a user's clone has
// no ../shared, so callers skip when Load reports ErrMissing.
package vectors

import (
	"bufio"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/pineconed/pineconed/internal/testhelp"
)

// ErrMissing means the shared vectors are not beside this checkout.
var ErrMissing = errors.New("shared test vectors not found beside the project")

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

// Dir finds ../shared/vectors beside the module root, walking up from the
// working directory (tests run in their package directory).
func Dir() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			v := filepath.Join(dir, "..", "shared", "vectors")
			if _, err := os.Stat(v); err != nil {
				return "", fmt.Errorf("%w: %v", ErrMissing, err)
			}
			return v, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("%w: no go.mod above the working directory", ErrMissing)
		}
		dir = parent
	}
}

// LoadCapture reads stock-3node-capture.jsonl.
func LoadCapture() ([]Record, error) {
	dir, err := Dir()
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "stock-3node-capture.jsonl")
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMissing, err)
	}
	defer f.Close()
	var out []Record
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var r Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, len(out)+1, err)
		}
		if r.Bytes, err = hex.DecodeString(r.Hex); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, len(out)+1, err)
		}
		if len(r.Link) < 4 {
			return nil, fmt.Errorf("%s:%d: bad link %q", path, len(out)+1, r.Link)
		}
		out = append(out, r)
	}
	return out, sc.Err()
}
