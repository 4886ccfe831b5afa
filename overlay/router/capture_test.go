package router

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/pineconed/pineconed/internal/vectors"
	"github.com/pineconed/pineconed/overlay/wire"
)

// TestReplayStockCapture plays router A of the stock capture (chain
// B – A – C, C the root): it is fed every frame B and C wrote to A, at the
// capture's times, and everything it sends must be what the stock A sent,
// byte for byte.
//
// Ports: the capture's first A->B announcement carries port 1 and the
// first A->C one port 2, so B is on port 1 and C on port 2.
//
// Time: the clock is base + t_ms. Bootstrap and wakeup sequence numbers are
// the stock router's wall clock in milliseconds, so base is derived from
// the capture itself: the first wakeup A sent (in reply to B's first
// announcement at t = 5 ms) carries base + 5. With that base every
// bootstrap of A in the capture carries exactly base + its t_ms, so they
// are compared byte for byte too.
//
// Ticks: the stock A's 1 s maintenance ticker drifts and is only visible
// through the bootstraps it sends (1002, 6004, 11007 ms), so the replay
// ticks the Router at exactly those instants, in capture order, after
// checking that the Router asked for a tick by then (NextTick). A Router
// ticked later than it asks behaves as if ticked on time; nothing else in
// these 12.6 s depends on a timer (the first periodic wakeup is at 60 s).
func TestReplayStockCapture(t *testing.T) {
	recs, err := vectors.LoadCapture()
	if err != nil {
		t.Fatal(err)
	}
	portOf := map[byte]Port{'B': 1, 'C': 2}
	want := map[Port][][]byte{}
	base := time.Time{}
	for _, rec := range recs {
		if len(rec.Bytes) == wire.HelloSize || rec.From() != 'A' {
			continue
		}
		m, err := wire.Decode(rec.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		switch m := m.(type) {
		case *wire.Keepalive:
			continue // the link layer's, not the router's
		case *wire.WakeupBroadcast:
			if base.IsZero() && m.Source == keyA {
				p, err := wire.ParseSignedRoot(m.Payload)
				if err != nil {
					t.Fatal(err)
				}
				base = time.UnixMilli(int64(p.Seq) - int64(rec.TimeMS) + 1)
			}
		}
		want[portOf[rec.To()]] = append(want[portOf[rec.To()]], rec.Bytes)
	}
	if base.IsZero() {
		t.Fatal("capture has no wakeup from A to derive the clock from")
	}

	// The stock node's timers: the capture holds its periodic wakeup.
	r := New(vectors.PrivateKey('A'), Options{ReferenceTimers: true})
	got := map[Port][][]byte{}
	collect := func(acts []Action) {
		t.Helper()
		mustNoDisconnect(t, acts)
		for _, a := range sends(acts, NoPort, -1) {
			got[a.Port] = append(got[a.Port], a.Frame)
		}
	}
	up := false
	for i, rec := range recs {
		now := base.Add(time.Duration(rec.TimeMS) * time.Millisecond)
		if len(rec.Bytes) == wire.HelloSize {
			// Both links are up once the hellos are through.
			if !up && rec.TimeMS > 0 {
				up = true
				collect(r.PeerUp(now, 1, wire.PublicKeyOf(vectors.PrivateKey('B')), PeerRemote))
				collect(r.PeerUp(now, 2, wire.PublicKeyOf(vectors.PrivateKey('C')), PeerRemote))
			}
			continue
		}
		m, err := wire.Decode(rec.Bytes)
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		if rec.To() == 'A' {
			collect(r.HandleFrame(now, portOf[rec.From()], m))
		} else if m.Type() == wire.TypeBootstrap {
			if nt := r.NextTick(); nt.After(now) {
				t.Fatalf("record %d: the stock A ran maintenance at %d ms, the router wants its next tick only %v later", i, rec.TimeMS, nt.Sub(now))
			}
			collect(r.Tick(now))
		}
	}

	for _, port := range []Port{1, 2} {
		name := map[Port]string{1: "A->B", 2: "A->C"}[port]
		if len(got[port]) != len(want[port]) {
			t.Errorf("%s: router sent %d frames, the stock A %d", name, len(got[port]), len(want[port]))
			for _, f := range got[port] {
				t.Logf("  got  %s", describe(f))
			}
			for _, f := range want[port] {
				t.Logf("  want %s", describe(f))
			}
		}
		for i := 0; i < min(len(got[port]), len(want[port])); i++ {
			if !bytes.Equal(got[port][i], want[port][i]) {
				t.Errorf("%s frame %d differs:\n got %s\n     %x\nwant %s\n     %x", name, i,
					describe(got[port][i]), got[port][i], describe(want[port][i]), want[port][i])
			}
		}
	}
	if r.Parent() != 2 || r.Root().Key != wire.PublicKeyOf(vectors.PrivateKey('C')) {
		t.Errorf("A ends with parent %v and root %v, want C on port 2", r.Parent(), r.Root())
	}
	st := r.Stats()
	t.Logf("drops %v", st.Drops)
	if len(st.Disconnects) != 0 {
		t.Errorf("disconnects: %v", st.Disconnects)
	}
}

// describe summarises a frame for failure messages.
func describe(frame []byte) string {
	m, err := wire.Decode(frame)
	if err != nil {
		return "undecodable: " + err.Error()
	}
	switch m := m.(type) {
	case *wire.TreeAnnouncement:
		return fmt.Sprintf("announcement root %.8s seq %d coords %v", m.Root.Key, m.Root.Seq, m.Coordinates())
	case *wire.Bootstrap:
		p, _ := wire.ParseSignedRoot(m.Payload)
		return fmt.Sprintf("bootstrap from %.8s wm %.8s/%d seq %d", m.Originator, m.Watermark.Key, m.Watermark.Seq, p.Seq)
	case *wire.WakeupBroadcast:
		p, _ := wire.ParseSignedRoot(m.Payload)
		return fmt.Sprintf("wakeup from %.8s hl %d seq %d root %.8s", m.Source, m.HopLimit, p.Seq, p.Root.Key)
	case *wire.Traffic:
		return fmt.Sprintf("traffic %.8s->%.8s dc %v %q", m.Source, m.Destination, m.DestinationCoords, m.Payload)
	}
	return m.Type().String()
}
