package testhelp

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"slices"
	"strings"
	"testing"
)

// SeedKey(1) must stay key A of docs/protocol.md §12, which the codec's golden
// bytes and the stock captures are written against.
func TestSeedKeyIsProtocolKeyA(t *testing.T) {
	const hexA = "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c"
	if got := hex.EncodeToString(SeedKey(1).Public().(ed25519.PublicKey)); got != hexA {
		t.Fatalf("SeedKey(1) public key %s, want %s", got, hexA)
	}
}

func TestUnhexIgnoresSeparators(t *testing.T) {
	if got := Unhex(t, "70 69 | 6e\n65"); !bytes.Equal(got, []byte("pine")) {
		t.Fatalf("Unhex = %x", got)
	}
}

func TestLogBufferLines(t *testing.T) {
	log, buf := NewLogger(t)
	log.Info("first", "peer", "a")
	log.Debug("second", "peer", "b")
	log.Info("third")
	if got := buf.Lines("peer="); len(got) != 2 || !slices.ContainsFunc(got, func(l string) bool { return strings.Contains(l, "msg=second") }) {
		t.Fatalf("Lines(peer=) = %q", got)
	}
}
