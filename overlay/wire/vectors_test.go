package wire

import (
	"testing"

	"github.com/pineconed/pineconed/internal/vectors"
)

// loadCapture reads the stock capture; it is embedded, so it never skips.
func loadCapture(t testing.TB) []vectors.Record {
	t.Helper()
	recs, err := vectors.LoadCapture()
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// TestStockCapture parses every byte three stock routers wrote to each
// other: every frame decodes, re-encodes to the same bytes, and every
// signature in it verifies.
func TestStockCapture(t *testing.T) {
	recs := loadCapture(t)
	keys := map[byte]PublicKey{'A': keyA, 'B': keyB, 'C': keyC}
	types := map[FrameType]int{}
	for i, r := range recs {
		if len(r.Bytes) == HelloSize {
			k, err := ParseHello(r.Bytes)
			if err != nil {
				t.Fatalf("record %d (%s): hello: %v", i, r.Link, err)
			}
			if want := keys[r.Link[0]]; k != want {
				t.Errorf("record %d (%s): hello key %s, want %s", i, r.Link, k, want)
			}
			continue
		}
		m, err := Decode(r.Bytes)
		if err != nil {
			t.Fatalf("record %d (%s): %v\n%x", i, r.Link, err, r.Bytes)
		}
		types[m.Type()]++
		again, err := m.Append(nil)
		if err != nil || string(again) != string(r.Bytes) {
			t.Fatalf("record %d (%s): re-encoding differs (%v)\n got %x\nwant %x", i, r.Link, err, again, r.Bytes)
		}
		switch m := m.(type) {
		case *TreeAnnouncement:
			if err := m.VerifySignatures(); err != nil {
				t.Errorf("record %d (%s): %v", i, r.Link, err)
			}
			if last := m.Hops[len(m.Hops)-1].Key; last != keys[r.Link[0]] {
				t.Errorf("record %d (%s): last hop signed by %s, not the sender", i, r.Link, last)
			}
		case *Bootstrap:
			p, err := ParseSignedRoot(m.Payload)
			if err != nil || !p.Verify(m.Originator) {
				t.Errorf("record %d (%s): bootstrap payload %v does not verify", i, r.Link, err)
			}
		case *WakeupBroadcast:
			p, err := ParseSignedRoot(m.Payload)
			if err != nil || !p.Verify(m.Source) {
				t.Errorf("record %d (%s): wakeup payload %v does not verify", i, r.Link, err)
			}
		}
	}
	for ft := TypeKeepalive; ft <= TypeWakeupBroadcast; ft++ {
		if types[ft] == 0 {
			t.Errorf("capture has no %s frame; expected all of types 0–4", ft)
		}
	}
	t.Logf("%d records, frames by type: %v", len(recs), types)
}
