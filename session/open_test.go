package session

import (
	"bytes"
	"testing"
)

// OpenTransport returns the IPv6 packet of a transport message, decrypted
// in the caller's payload and source-checked, without calling Deliver;
// a replay is refused and counted as HandlePayload refuses it.
func TestOpenTransportReturnsThePacket(t *testing.T) {
	f, a, b := establishedPair(t, Config{}, Config{})
	now := t0

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

// Send holds back a packet larger than the MTU the peer announced and
// returns that MTU (the packet path answers Packet Too Big); packets that
// fit go out and Send returns 0.
func TestSendReturnsPeerMTUForTooLargePacket(t *testing.T) {
	f, a, b := establishedPair(t, Config{}, Config{MTU: 1400})
	now := t0

	fits := packet(a.key, b.key, 1)
	if mtu := a.m.Send(now, b.key, fits); mtu != 0 {
		t.Fatalf("a fitting packet: Send = %d, want 0", mtu)
	}
	big := append(packet(a.key, b.key, 2), make([]byte, 1400)...)
	if mtu := a.m.Send(now, b.key, big); mtu != 1400 {
		t.Fatalf("a %d-byte packet: Send = %d, want the peer's 1400", len(big), mtu)
	}
	f.run(now)
	if len(b.got) != 1 || b.got[0] != 1 {
		t.Fatalf("b got %v, want only the packet that fits", b.got)
	}
}

// SendFramed sends what Send sends, sealing the packet from where it lies
// behind its free byte.
func TestSendFramedMatchesSend(t *testing.T) {
	f, a, b := establishedPair(t, Config{}, Config{})
	now := t0

	pkt := packet(a.key, b.key, 9)
	framed := append([]byte{0xee}, pkt...)
	if mtu := a.m.SendFramed(now, b.key, framed); mtu != 0 {
		t.Fatalf("SendFramed = %d", mtu)
	}
	if !bytes.Equal(framed[1:], pkt) {
		t.Fatal("SendFramed changed the packet")
	}
	a.m.Send(now, b.key, packet(a.key, b.key, 10))
	f.run(now)
	if len(b.got) != 2 || b.got[0] != 9 || b.got[1] != 10 {
		t.Fatalf("b got %v, want 9 then 10", b.got)
	}
	if got := a.m.SendFramed(now, b.key, nil); got != 0 {
		t.Fatalf("SendFramed(nil) = %d", got)
	}
	if st := a.m.Stats(); st.Counts[DropTooBig] != 1 {
		t.Fatalf("an empty framed message counted %d too_big, want 1", st.Counts[DropTooBig])
	}
}
