package wire

import (
	"bytes"
	"testing"

	"github.com/pineconed/pineconed/internal/testhelp"
)

// seedFrames adds every §12 example and every captured stock frame.
func seedFrames(f *testing.F) {
	for _, g := range golden(f) {
		f.Add(g.want)
	}
	for _, r := range loadCapture(f) {
		f.Add(r.Bytes)
	}
}

// FuzzDecode: decoding never panics, and decode→encode→decode→encode is
// stable (the first encode may normalise unused header bytes).
func FuzzDecode(f *testing.F) {
	seedFrames(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(b)
		if err != nil {
			return
		}
		if u, ok := m.(*Unknown); ok {
			if _, err := u.Append(nil); err == nil {
				t.Fatal("unknown frame encoded")
			}
			return
		}
		enc, err := m.Append(nil)
		if err != nil {
			t.Fatalf("decoded %T does not re-encode: %v", m, err)
		}
		m2, err := Decode(enc)
		if err != nil {
			t.Fatalf("re-encoded frame does not decode: %v\n%x", err, enc)
		}
		enc2, err := m2.Append(nil)
		if err != nil || !bytes.Equal(enc, enc2) {
			t.Fatalf("unstable round trip:\n%x\n%x", enc, enc2)
		}
		// Only the header's version, extra and (for types 0–2) hop-limit
		// bytes may change; the rest is the input, byte for byte.
		if len(enc) != len(b) || !bytes.Equal(enc[HeaderSize:], b[HeaderSize:]) {
			t.Fatalf("re-encoding changed the body:\n in %x\nout %x", b, enc)
		}
		switch m := m.(type) {
		case *TreeAnnouncement:
			_ = m.VerifySignatures()
			_ = m.SenderCoordinates()
		case *Bootstrap:
			if p, err := ParseSignedRoot(m.Payload); err == nil {
				_ = p.Verify(m.Originator)
			}
		case *WakeupBroadcast:
			if p, err := ParseSignedRoot(m.Payload); err == nil {
				_ = p.Verify(m.Source)
			}
		}
	})
}

// FuzzParseHeader: never panics, and an accepted header never declares a
// length that would make a reader slice below the header or the payload
// length field.
func FuzzParseHeader(f *testing.F) {
	seedFrames(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseHeader(b)
		if err != nil {
			return
		}
		if h.Length < HeaderSize || (h.Type >= 1 && h.Type <= 4 && h.Length < HeaderSize+2) {
			t.Fatalf("accepted header %+v", h)
		}
	})
}

// FuzzParseHello: never panics; an accepted hello re-verifies.
func FuzzParseHello(f *testing.F) {
	h := NewHello(privA)
	f.Add(h[:])
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := ParseHello(b)
		if err == nil && (len(b) != HelloSize || !bytes.Equal(b[8:40], k[:])) {
			t.Fatalf("accepted hello %x as %s", b, k)
		}
	})
}

// FuzzVarint: minimal encodings round-trip exactly.
func FuzzVarint(f *testing.F) {
	for _, s := range []string{"00", "7f", "8100", "b1bcff95d000", "81ffffffffffffffff7f", "8000"} {
		f.Add(testhelp.Unhex(f, s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, n, err := ReadVarint(b)
		if err != nil {
			return
		}
		if !bytes.Equal(AppendVarint(nil, v), b[:n]) {
			t.Fatalf("varint %x decoded to %d which encodes differently", b[:n], v)
		}
	})
}

// FuzzCoordinates: accepted lists round-trip exactly.
func FuzzCoordinates(f *testing.F) {
	f.Add(testhelp.Unhex(f, "00050102039f20"))
	f.Add(testhelp.Unhex(f, "0000"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, n, err := ReadCoordinates(b)
		if err != nil {
			return
		}
		enc, err := AppendCoordinates(nil, c)
		if err != nil || !bytes.Equal(enc, b[:n]) {
			t.Fatalf("coordinates %x → %v → %x (%v)", b[:n], c, enc, err)
		}
	})
}

// FuzzSignedRoot: bootstrap/wakeup payloads round-trip exactly.
func FuzzSignedRoot(f *testing.F) {
	p := NewSignedRoot(privB, seqE6, Root{Key: keyA, Seq: 1})
	f.Add(p.Append(nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParseSignedRoot(b)
		if err != nil {
			return
		}
		_ = p.Verify(keyB)
		if !bytes.Equal(p.Append(nil), b) {
			t.Fatalf("payload %x does not round-trip", b)
		}
	})
}

// FuzzBeacon: never panics; accepted beacons round-trip.
func FuzzBeacon(f *testing.F) {
	f.Add(AppendBeacon(nil, keyA, 65432))
	f.Fuzz(func(t *testing.T, b []byte) {
		k, port, err := ParseBeacon(b)
		if err == nil && !bytes.Equal(AppendBeacon(nil, k, port), b) {
			t.Fatalf("beacon %x does not round-trip", b)
		}
	})
}
