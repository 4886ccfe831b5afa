package peercard_test

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pineconed/pineconed/peercard"
)

var update = flag.Bool("update", false, "rewrite testdata/*.card")

// Fixed inputs, so that the golden card is the same on every run: ed25519
// signatures are deterministic.
var (
	seedA   = bytes.Repeat([]byte{0x11}, ed25519.SeedSize)
	seedB   = bytes.Repeat([]byte{0x22}, ed25519.SeedSize)
	created = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	expires = created.Add(30 * 24 * time.Hour)
)

func sample() peercard.Card {
	return peercard.Card{
		Name:    "relay-1",
		URIs:    []string{"tcp://[fd00:0:0:1::1]:65432", "ws://relay.example.org:65433/"},
		Created: created,
		Expires: expires,
	}
}

func signed(t testing.TB, c peercard.Card, seed []byte) peercard.Card {
	t.Helper()
	s, err := peercard.Sign(c, ed25519.NewKeyFromSeed(seed))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func encode(t testing.TB, c peercard.Card) string {
	t.Helper()
	text, err := c.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return text
}

// TestGolden pins the text of one card byte for byte: a change to the
// layout, the alphabet, the check symbols or the signing context fails
// here. docs/peer-cards.md shows the same card; rerun with -update only
// for a new format version, and update the document with it.
func TestGolden(t *testing.T) {
	text := encode(t, signed(t, sample(), seedA))
	path := filepath.Join("testdata", "relay-1.card")
	if *update {
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if text != string(want) {
		t.Errorf("card text changed:\n%s\nwant:\n%s", text, want)
	}
	doc, err := os.ReadFile(filepath.Join("..", "docs", "peer-cards.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), "```text\n"+string(want)+"```") {
		t.Error("docs/peer-cards.md does not show the golden card")
	}
	c, err := peercard.Verify(want, created)
	if err != nil {
		t.Fatalf("golden card does not verify: %v", err)
	}
	if got := ed25519.PublicKey(c.Key[:]); !got.Equal(ed25519.NewKeyFromSeed(seedA).Public()) {
		t.Errorf("key %x", got)
	}
	for _, l := range strings.Split(strings.TrimSpace(text), "\n")[1:] {
		if len(l) > peercard.SymbolsPerLine/peercard.GroupSize*(peercard.GroupSize+1)+1 {
			t.Errorf("line %q is wider than the fixed width", l)
		}
	}
}

// TestRoundTrip encodes cards with every field at its edges and checks they
// come back equal, and that the binary form is deterministic.
func TestRoundTrip(t *testing.T) {
	long := strings.Repeat("u", peercard.MaxURILength)
	uris := make([]string, peercard.MaxURIs)
	for i := range uris {
		uris[i] = long
	}
	for _, c := range []peercard.Card{
		sample(),
		{URIs: []string{"h:1"}, Created: time.Unix(0, 0), Expires: time.Unix(1, 0)},
		{Name: strings.Repeat("é", peercard.MaxNameLength/2), URIs: uris, Created: created, Expires: expires},
	} {
		s := signed(t, c, seedA)
		text := encode(t, s)
		got, err := peercard.Verify([]byte(text), s.Created)
		if err != nil {
			t.Fatalf("%q: %v\n%s", c.Name, err, text)
		}
		if got.Name != s.Name || got.Key != s.Key || got.Signature != s.Signature ||
			!got.Created.Equal(s.Created) || !got.Expires.Equal(s.Expires) || strings.Join(got.URIs, " ") != strings.Join(s.URIs, " ") {
			t.Errorf("round trip changed the card: %+v, want %+v", got, s)
		}
		b1, _ := s.Marshal()
		b2, _ := got.Marshal()
		if !bytes.Equal(b1, b2) || encode(t, got) != text {
			t.Error("re-encoding a decoded card gives other bytes")
		}
	}
}

// TestRetyped accepts what Crockford base32 promises a reader may type:
// lower case, O for 0, I and L for 1, hyphens and other grouping, CRLF
// line ends, and text around the card.
func TestRetyped(t *testing.T) {
	text := encode(t, signed(t, sample(), seedA))
	var b strings.Builder
	b.WriteString("Hi! Here is my card:\r\n\r\n")
	for _, l := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		l = strings.ToLower(l)
		l = strings.NewReplacer("0", "o", "1", "l").Replace(l)
		b.WriteString(strings.ReplaceAll(l, " ", "-") + "\r\n")
	}
	b.WriteString("\r\nSee you.\r\n")
	// The header and end words must keep their letters.
	retyped := strings.NewReplacer("pineconed-peer-card-vl", "PINECONED PEER CARD V1", "end-", "END ").Replace(b.String())
	c, err := peercard.Verify([]byte(retyped), created)
	if err != nil {
		t.Fatalf("%v\n%s", err, retyped)
	}
	if c.Name != "relay-1" {
		t.Errorf("name %q", c.Name)
	}
}

// TestRefused gives the decoder every kind of bad card and checks each is
// refused with its own reason, naming it in the message.
func TestRefused(t *testing.T) {
	good := encode(t, signed(t, sample(), seedA))
	lines := strings.Split(good, "\n")

	// One symbol changed, as a mistyped or tampered card.
	tampered := []byte(good)
	i := len(lines[0]) + 1 + 5 // a symbol in the first body line
	if tampered[i] == 'Z' {
		tampered[i] = 'Y'
	} else {
		tampered[i] = 'Z'
	}

	// Key of A, signed by B: well-formed with good checksums.
	forged := signed(t, sample(), seedB)
	forged.Key = signed(t, sample(), seedA).Key
	forgedText := encode(t, forged)

	newer := strings.Replace(good, "card v1", "card v2", 1)

	for _, tc := range []struct {
		name string
		text string
		want error
		msg  string
	}{
		{"tampered", string(tampered), peercard.ErrChecksum, "checksum"},
		{"line dropped", strings.Join(append(lines[:2:2], lines[3:]...), "\n"), peercard.ErrChecksum, "checksum"},
		{"other key", forgedText, peercard.ErrSignature, "signature"},
		{"unknown version", newer, peercard.ErrVersion, "version 2"},
		{"no end line", strings.Join(lines[:len(lines)-2], "\n"), peercard.ErrTruncated, "truncated"},
		{"cut after the header", lines[0] + "\n", peercard.ErrTruncated, "truncated"},
		{"garbage", "hello world\n", peercard.ErrMalformed, "header"},
		{"empty", "", peercard.ErrMalformed, "header"},
		{"bad symbol", strings.Replace(good, lines[1][:1], "!", 1), peercard.ErrMalformed, "not a Crockford base32 symbol"},
		{"too long", good + strings.Repeat(" ", peercard.MaxTextSize), peercard.ErrMalformed, "at most"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := peercard.Verify([]byte(tc.text), created)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("got %v, want %v containing %q", err, tc.want, tc.msg)
			}
		})
	}

	t.Run("expired", func(t *testing.T) {
		if _, err := peercard.Verify([]byte(good), expires.Add(-time.Second)); err != nil {
			t.Fatalf("one second before expiry: %v", err)
		}
		_, err := peercard.Verify([]byte(good), expires)
		if !errors.Is(err, peercard.ErrExpired) || !strings.Contains(err.Error(), "expired at 2026-12-31T12:00:00Z") {
			t.Errorf("at expiry: %v", err)
		}
	})
}

// TestBinaryRefused checks the binary decoder on its own: a version byte it
// does not know, every truncation, and trailing bytes.
func TestBinaryRefused(t *testing.T) {
	bin, err := signed(t, sample(), seedA).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	for n := range len(bin) {
		if _, err := peercard.Unmarshal(bin[:n]); !errors.Is(err, peercard.ErrTruncated) {
			t.Fatalf("cut at %d of %d: %v", n, len(bin), err)
		}
	}
	if _, err := peercard.Unmarshal(append(bin, 0)); !errors.Is(err, peercard.ErrMalformed) {
		t.Errorf("trailing byte: %v", err)
	}
	v2 := append([]byte{2}, bin[1:]...)
	if _, err := peercard.Unmarshal(v2); !errors.Is(err, peercard.ErrVersion) {
		t.Errorf("version 2: %v", err)
	}
}

// TestSignRefuses checks that Sign will not make a card that Unmarshal would
// refuse.
func TestSignRefuses(t *testing.T) {
	priv := ed25519.NewKeyFromSeed(seedA)
	for name, c := range map[string]peercard.Card{
		"no URIs":         {Created: created, Expires: expires},
		"space in URI":    {URIs: []string{"tcp://a b:1"}, Created: created, Expires: expires},
		"pin in URI":      {URIs: []string{"tcp://h:1?key=00"}, Created: created, Expires: expires},
		"expiry first":    {URIs: []string{"h:1"}, Created: expires, Expires: created},
		"control in name": {Name: "a\nb", URIs: []string{"h:1"}, Created: created, Expires: expires},
		"long name":       {Name: strings.Repeat("n", peercard.MaxNameLength+1), URIs: []string{"h:1"}, Created: created, Expires: expires},
	} {
		if _, err := peercard.Sign(c, priv); !errors.Is(err, peercard.ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// FuzzVerify feeds the text decoder arbitrary input: it must never panic,
// every refusal must carry one of the package's reasons, and whatever it
// accepts must re-encode to a card that verifies the same.
func FuzzVerify(f *testing.F) {
	good := encode(f, signed(f, sample(), seedA))
	f.Add(good)
	f.Add(strings.ToLower(good))
	f.Add(good[:len(good)/2])
	f.Add(peercard.Header + " v1\n0000 0\nend 0000000\n")
	f.Add("garbage")
	reasons := []error{peercard.ErrChecksum, peercard.ErrSignature, peercard.ErrExpired,
		peercard.ErrVersion, peercard.ErrTruncated, peercard.ErrMalformed}
	f.Fuzz(func(t *testing.T, text string) {
		c, err := peercard.Verify([]byte(text), created)
		if err != nil {
			for _, r := range reasons {
				if errors.Is(err, r) {
					return
				}
			}
			t.Fatalf("error without a reason: %v", err)
		}
		again, err := c.Encode()
		if err != nil {
			t.Fatalf("accepted card does not encode: %v", err)
		}
		if _, err := peercard.Verify([]byte(again), created); err != nil {
			t.Fatalf("re-encoded card refused: %v", err)
		}
	})
}

// BenchmarkVerify measures a whole card check (text parsing, checksums,
// signature, expiry); BenchmarkVerifyBaseline is the ed25519 verification
// inside it, so the ratio of the two is what the text format costs.
func BenchmarkVerify(b *testing.B) {
	text := []byte(encode(b, signed(b, sample(), seedA)))
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		if _, err := peercard.Verify(text, created); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyBaseline(b *testing.B) {
	priv := ed25519.NewKeyFromSeed(seedA)
	msg := make([]byte, 200)
	sig := ed25519.Sign(priv, msg)
	pub := priv.Public().(ed25519.PublicKey)
	for b.Loop() {
		if !ed25519.Verify(pub, msg, sig) {
			b.Fatal("bad signature")
		}
	}
}

// FuzzUnmarshal feeds the binary decoder directly: text fuzzing rarely gets
// past the check symbols, so the field parsing gets its own target. It must
// never panic, refusals carry a reason, and an accepted card marshals back
// to the same bytes (one binary form per card).
func FuzzUnmarshal(f *testing.F) {
	bin, err := signed(f, sample(), seedA).Marshal()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(bin)
	f.Add(bin[:60])
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := peercard.Unmarshal(b)
		if err != nil {
			if !errors.Is(err, peercard.ErrTruncated) && !errors.Is(err, peercard.ErrMalformed) && !errors.Is(err, peercard.ErrVersion) {
				t.Fatalf("error without a reason: %v", err)
			}
			return
		}
		again, err := c.Marshal()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("accepted card marshals to %x, %v; want %x", again, err, b)
		}
		if _, err := c.Encode(); err != nil {
			t.Fatalf("accepted card does not encode: %v", err)
		}
	})
}
