// Package peercardtest helps tests of the packages that take peer cards
// build the bad cards they must refuse.
package peercardtest

import (
	"crypto/ed25519"
	"testing"

	"github.com/pineconed/pineconed/peercard"
)

// Forge re-signs the card in text with a fresh key but keeps the card's own
// key field: a well-formed card, with good checksums, whose signature does
// not verify. It fails the test if text is not a card.
func Forge(t testing.TB, text string) string {
	t.Helper()
	c, err := peercard.Parse([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	key := c.Key
	_, other, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	f, err := peercard.Sign(c, other)
	if err != nil {
		t.Fatal(err)
	}
	f.Key = key
	out, err := f.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Tamper changes one base32 symbol of the card's first body line, as a
// mistyped or altered card: the line's check symbol no longer matches.
func Tamper(text string) string {
	b := []byte(text)
	for i := range b {
		if b[i] == '\n' {
			i++ // the first symbol of the first body line
			if b[i] == 'Z' {
				b[i] = 'Y'
			} else {
				b[i] = 'Z'
			}
			break
		}
	}
	return string(b)
}
