package session

import (
	"bytes"
	"testing"
	"time"
)

// OpenTransport returns the IPv6 packet of a transport message, decrypted
// in the caller's payload and source-checked, without calling Deliver;
// a replay is refused and counted as HandlePayload refuses it.
func TestOpenTransportReturnsThePacket(t *testing.T) {
	f := newFabric(t)
	now := time.Unix(1000, 0)
	a, b := f.add(1, Config{}), f.add(2, Config{})
	establish(t, f, now, a, b)

	pkt := packet(a.key, b.key, 7)
	a.m.Send(now, b.key, pkt)
	sent := f.take()
	if len(sent) != 1 {
		t.Fatalf("%d messages sent, want 1", len(sent))
	}
	payload := sent[0].payload
	replay := bytes.Clone(payload)
	got, err := b.m.OpenTransport(now, a.key, payload)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, pkt) {
		t.Fatal("returned packet differs from the one sent")
	}
	if off := len(payload) - len(got) - 16; off < 0 || &payload[off] != &got[0] {
		t.Fatal("packet not decrypted in the caller's payload")
	}
	if len(b.got) != 0 {
		t.Fatal("OpenTransport called Deliver")
	}
	if st := b.m.Stats(); st.Counts[PacketsIn] != 1 {
		t.Fatalf("packets in %d, want 1", st.Counts[PacketsIn])
	}
	if got, err := b.m.OpenTransport(now, a.key, replay); err == nil || got != nil {
		t.Fatal("replayed message opened")
	}
	if st := b.m.Stats(); st.Counts[Replays] != 1 {
		t.Fatalf("replays %d, want 1", st.Counts[Replays])
	}
}
