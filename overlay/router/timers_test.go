package router

import (
	"slices"
	"testing"
	"time"

	"github.com/pineconed/pineconed/internal/testhelp"
	"github.com/pineconed/pineconed/overlay/wire"
)

// More keys of the §12 kind: M (seed 4) sorts between A and C; D (seed 6)
// sorts just below A and above B.
var (
	privM, privD = testhelp.SeedKey(4), testhelp.SeedKey(6)
	keyM, keyD   = wire.PublicKeyOf(privM), wire.PublicKeyOf(privD)
)

// rootedAt is the announcement a root sends on its port.
func rootedAt(priv []byte, seq uint64, port uint64) *wire.TreeAnnouncement {
	return (&wire.TreeAnnouncement{Root: wire.Root{Key: wire.PublicKeyOf(priv), Seq: seq}}).Signed(priv, port)
}

// feed sends m through the codec into r, as a link reader would.
func feed(t *testing.T, r *Router, now time.Time, port Port, m wire.Message) []Action {
	t.Helper()
	frame, err := m.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	return own(r.HandleFrame(now, port, decode(t, frame)))
}

// childOfC is router A with C (the root) on port 1 as its parent and B on
// port 2 as its child: A's coordinates are [1], B's [1 2].
func childOfC(t *testing.T, opts Options) *Router {
	t.Helper()
	r := New(privA, opts)
	r.PeerUp(t0, 1, keyC, PeerRemote)
	r.PeerUp(t0, 2, keyB, PeerRemote)
	mustNoDisconnect(t, feed(t, r, t0, 1, rootedAt(privC, 1, 1)))
	mustNoDisconnect(t, feed(t, r, t0, 2, rootedAt(privC, 1, 1).Signed(privA, 2).Signed(privB, 1)))
	if r.Parent() != 1 || !r.Coords().Equal(wire.Coordinates{1}) {
		t.Fatalf("set-up: parent %v coords %v", r.Parent(), r.Coords())
	}
	return r
}

func bootstrapFrom(priv []byte, at time.Time, root wire.Root) *wire.Bootstrap {
	p := wire.NewSignedRoot(priv, uint64(at.UnixMilli()), root)
	return &wire.Bootstrap{Originator: wire.PublicKeyOf(priv), Watermark: wire.StartWatermark, Payload: p.Append(nil)}
}

func TestRootRefreshEvery30Minutes(t *testing.T) {
	r := New(privC, Options{DisableWakeups: true})
	r.PeerUp(t0, 1, keyA, PeerRemote)
	r.Tick(t0)
	if acts := sends(r.Tick(t0.Add(AnnouncementInterval-time.Second)), NoPort, -1); len(acts) != 0 {
		t.Fatalf("sent %v before 30 min", acts)
	}
	acts := sends(r.Tick(t0.Add(AnnouncementInterval)), 1, int(wire.TypeTreeAnnouncement))
	if len(acts) != 1 {
		t.Fatalf("no refresh at 30 min")
	}
	a := decode(t, acts[0].Frame).(*wire.TreeAnnouncement)
	if a.Root != (wire.Root{Key: keyC, Seq: 2}) || len(a.Hops) != 1 {
		t.Errorf("refresh announces %+v, want root C seq 2 with one hop", a.Root)
	}
	if next := r.NextTick(); next.Sub(t0.Add(AnnouncementInterval)) != MaintenanceInterval {
		t.Errorf("next tick %v after the refresh, want %v", next.Sub(t0.Add(AnnouncementInterval)), MaintenanceInterval)
	}
	// A node with a parent never refreshes: only roots do.
	c := childOfC(t, Options{DisableWakeups: true})
	c.Tick(t0)
	for _, a := range sends(c.Tick(t0.Add(AnnouncementInterval)), NoPort, int(wire.TypeTreeAnnouncement)) {
		t.Errorf("a child sent %s", describe(a.Frame))
	}
}

func TestReparentWaitOneSecond(t *testing.T) {
	r := childOfC(t, Options{DisableWakeups: true})
	r.PeerUp(t0, 3, keyM, PeerRemote)
	// The parent repeats the same update: bad news (§4.5).
	r.Tick(t0)
	now := t0.Add(1300 * time.Millisecond)
	acts := feed(t, r, now, 1, rootedAt(privC, 1, 1))
	if r.Parent() != NoPort || r.Root() != (wire.Root{Key: keyA, Seq: 2}) {
		t.Fatalf("after bad news: parent %v root %v, want root of its own with seq 2", r.Parent(), r.Root())
	}
	if n := len(sends(acts, NoPort, int(wire.TypeTreeAnnouncement))); n != 3 {
		t.Errorf("bad news went to %d peers, want all 3", n)
	}
	if got := r.NextTick(); got.After(now.Add(ReparentWait)) {
		t.Errorf("NextTick %v later, after the end of the wait (%v)", got.Sub(now), ReparentWait)
	}
	// A stronger root offered during the wait is stored but not taken.
	mustNoDisconnect(t, feed(t, r, now.Add(100*time.Millisecond), 3, rootedAt(privC, 1, 4).Signed(privM, 1)))
	r.Tick(now.Add(ReparentWait - time.Millisecond))
	if r.Parent() != NoPort {
		t.Fatalf("took parent %v during the wait", r.Parent())
	}
	acts = own(r.Tick(now.Add(ReparentWait)))
	if r.Parent() != 1 || r.Root() != (wire.Root{Key: keyC, Seq: 1}) {
		t.Fatalf("after the wait: parent %v root %v; want C's copy (it arrived first) on port 1", r.Parent(), r.Root())
	}
	if n := len(sends(acts, NoPort, int(wire.TypeTreeAnnouncement))); n != 3 {
		t.Errorf("new parent announced to %d peers, want 3", n)
	}
	// The parent change schedules a bootstrap (§5.1) at the next tick. It
	// heads for M, the closest key above A that A knows.
	acts = own(r.Tick(r.NextTick()))
	if len(sends(acts, 3, int(wire.TypeBootstrap))) != 1 {
		t.Errorf("no bootstrap to M after the new parent: %v", acts)
	}
}

func TestParentSelectionIgnoresStaleAnnouncements(t *testing.T) {
	r := New(privA, Options{DisableWakeups: true})
	r.PeerUp(t0, 1, keyC, PeerRemote)
	r.PeerUp(t0, 2, keyM, PeerRemote)
	feed(t, r, t0, 1, rootedAt(privC, 1, 1))
	viaM := rootedAt(privC, 1, 5).Signed(privM, 1)
	feed(t, r, t0.Add(time.Second), 2, viaM)
	if r.Parent() != 1 {
		t.Fatalf("parent %v, want port 1 (its copy arrived first)", r.Parent())
	}
	// M repeats the same root: parent selection runs (Δ = 0) and keeps C
	// while its announcement is younger than 45 min ...
	feed(t, r, t0.Add(AnnouncementTimeout-time.Second), 2, viaM)
	if r.Parent() != 1 {
		t.Fatalf("parent %v at 44:59, want port 1", r.Parent())
	}
	// ... and skips it once it is 45 min old.
	feed(t, r, t0.Add(AnnouncementTimeout), 2, viaM)
	if r.Parent() != 2 || !r.Coords().Equal(wire.Coordinates{5, 1}) {
		t.Fatalf("parent %v coords %v at 45:00, want port 2 and [5 1]", r.Parent(), r.Coords())
	}

	// The maintenance tick notices a stale parent by itself: with nothing
	// fresh to take, the node becomes root.
	s := New(privA, Options{DisableWakeups: true})
	s.PeerUp(t0, 1, keyC, PeerRemote)
	feed(t, s, t0, 1, rootedAt(privC, 1, 1))
	s.Tick(t0.Add(AnnouncementTimeout - time.Second))
	if s.Parent() != 1 {
		t.Fatal("lost the parent early")
	}
	s.Tick(t0.Add(AnnouncementTimeout))
	if s.Parent() != NoPort || s.Root().Key != keyA {
		t.Errorf("parent %v root %v with a 45 min old parent announcement, want root", s.Parent(), s.Root())
	}
}

func TestSNEKEntryExpiry(t *testing.T) {
	r := childOfC(t, Options{DisableWakeups: true})
	root := r.Root()
	// D's bootstrap reaches A from B. Nothing A knows lies between D and
	// A, so A is its end and installs a route back to D via B.
	acts := feed(t, r, t0, 2, bootstrapFrom(privD, t0, root))
	if n := len(sends(acts, NoPort, -1)); n != 0 {
		t.Errorf("A forwarded D's bootstrap: %v", acts)
	}
	entries := r.SNEKEntries(t0)
	if len(entries) != 1 || entries[0].Originator != keyD || entries[0].Source != 2 || entries[0].Destination != NoPort ||
		!entries[0].Expires.Equal(t0.Add(SNEKExpiry)) || entries[0].Watermark != (wire.Watermark{Key: keyD, Seq: uint64(t0.UnixMilli())}) {
		t.Fatalf("entries %+v", entries)
	}
	if d, ok := r.Descending(t0); !ok || d.Originator != keyD {
		t.Errorf("descending %+v %v, want D", d, ok)
	}
	route := func(now time.Time) Verdict {
		f := wire.Traffic{HopLimit: 10, Destination: keyD, Source: keyC, Watermark: wire.StartWatermark, Payload: []byte("x")}
		return r.Snapshot().Route(now, &f, 1)
	}
	if v := route(t0.Add(SNEKExpiry - time.Millisecond)); v.Kind != VerdictForward || v.Port != 2 {
		t.Fatalf("traffic to D just before expiry: %+v, want forward on port 2", v)
	}
	// Expired entries are ignored by lookups at once and removed by the
	// next tick; traffic to D then ends here, at D's successor.
	if v := route(t0.Add(SNEKExpiry)); v.Kind != VerdictDeliver {
		t.Fatalf("traffic to D after expiry: %+v, want delivery at the successor", v)
	}
	r.Tick(t0.Add(SNEKExpiry))
	if n := len(r.table); n != 0 || r.hasDescending {
		t.Errorf("%d entries and descending %v after expiry", n, r.hasDescending)
	}
}

func TestCoordCacheExpiry(t *testing.T) {
	r := childOfC(t, Options{DisableWakeups: true})
	in := &wire.Traffic{HopLimit: 10, SourceCoords: wire.Coordinates{1, 2}, Destination: keyA, Source: keyB, Payload: []byte("hi")}
	acts := feed(t, r, t0, 2, in)
	if d := ofKind(acts, ActionDeliver); len(d) != 1 || string(d[0].Payload) != "hi" || d[0].Source != keyB || d[0].Destination != keyA {
		t.Fatalf("delivery %v", acts)
	}
	reply := func(now time.Time) *wire.Traffic {
		s := sends(own(r.SendTraffic(now, keyB, []byte("back"))), 2, int(wire.TypeTraffic))
		if len(s) != 1 {
			t.Fatalf("reply not sent to port 2")
		}
		return decode(t, s[0].Frame).(*wire.Traffic)
	}
	if f := reply(t0.Add(CoordCacheLifetime - time.Millisecond)); !f.DestinationCoords.Equal(wire.Coordinates{1, 2}) || !f.SourceCoords.Equal(wire.Coordinates{1}) {
		t.Errorf("reply within 60 s carries %v → %v, want [1] → [1 2]", f.SourceCoords, f.DestinationCoords)
	}
	if f := reply(t0.Add(CoordCacheLifetime)); len(f.DestinationCoords) != 0 || f.Watermark != (wire.Watermark{Key: keyB}) {
		t.Errorf("reply after 60 s carries %v and watermark %v, want SNEK to B", f.DestinationCoords, f.Watermark)
	}
	r.Tick(t0.Add(CoordCacheLifetime))
	if n := r.CoordCache().Len(); n != 0 {
		t.Errorf("%d cache entries after the 60 s sweep", n)
	}
}

func TestCoordCacheClearedOnRootChange(t *testing.T) {
	r := New(privA, Options{DisableWakeups: true})
	r.PeerUp(t0, 1, keyB, PeerRemote)
	feed(t, r, t0, 1, &wire.Traffic{HopLimit: 10, SourceCoords: wire.Coordinates{1}, Destination: keyA, Source: keyB})
	if _, ok := r.CoordCache().Get(keyB, t0); !ok {
		t.Fatal("not cached")
	}
	r.PeerUp(t0, 2, keyC, PeerRemote)
	acts := feed(t, r, t0, 2, rootedAt(privC, 1, 1))
	if _, ok := r.CoordCache().Get(keyB, t0); ok {
		t.Error("cache kept across a root key change")
	}
	var rootEv, parentEv bool
	for _, a := range ofKind(acts, ActionEvent) {
		rootEv = rootEv || (a.Event.Kind == EventRootChanged && a.Event.Root.Key == keyC)
		parentEv = parentEv || (a.Event.Kind == EventParentChanged && a.Event.Port == 2)
	}
	if !rootEv || !parentEv {
		t.Errorf("events %v, want root and parent changes", acts)
	}
}

func TestCoordCacheBoundedLRU(t *testing.T) {
	c := NewCoordCache(2)
	k := func(b byte) wire.PublicKey { return wire.PublicKey{b} }
	c.Put(k(1), wire.Coordinates{1}, t0)
	c.Put(k(2), wire.Coordinates{2}, t0)
	c.Get(k(1), t0) // 1 is now the most recently used
	c.Put(k(3), wire.Coordinates{3}, t0)
	if _, ok := c.Get(k(2), t0); ok {
		t.Error("least recently used key kept")
	}
	for _, b := range []byte{1, 3} {
		if got, ok := c.Get(k(b), t0); !ok || !got.Equal(wire.Coordinates{uint64(b)}) {
			t.Errorf("key %d: %v %v", b, got, ok)
		}
	}
	if c.Len() != 2 {
		t.Errorf("len %d", c.Len())
	}
	c.Put(k(1), wire.Coordinates{1, 9}, t0.Add(30*time.Second))
	if n := c.Sweep(t0.Add(CoordCacheLifetime)); n != 1 || c.Len() != 1 {
		t.Errorf("sweep removed %d, %d left; want 1 and 1", n, c.Len())
	}
}

func TestBootstrapEveryFiveSecondsWhenNotRoot(t *testing.T) {
	secs := func(s ...int) []time.Duration {
		out := make([]time.Duration, len(s))
		for i, x := range s {
			out[i] = time.Duration(x) * time.Second
		}
		return out
	}
	var fast []int
	for s := 0; s < int(DefaultFastBootstrapWindow/time.Second); s++ {
		fast = append(fast, s)
	}
	// Then every 5 s from the last fast one, up to 36 s.
	slow := fast
	for s := fast[len(fast)-1] + 5; s <= 36; s += 5 {
		slow = append(slow, s)
	}
	for _, tc := range []struct {
		name string
		opts Options
		want []time.Duration
	}{
		{"reference timers", Options{DisableWakeups: true, ReferenceTimers: true}, secs(0, 5, 10, 15, 20, 25, 30, 35)},
		// Tuned: every second for DefaultFastBootstrapWindow after the
		// parent change at 0 s, then every 5 s.
		{"tuned", Options{DisableWakeups: true}, secs(slow...)},
		{"fast window off", Options{DisableWakeups: true, FastBootstrapWindow: -1}, secs(0, 5, 10, 15, 20, 25, 30, 35)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := childOfC(t, tc.opts)
			var at []time.Duration
			for ms := 0; ms <= 36_000; ms += 250 {
				now := t0.Add(time.Duration(ms) * time.Millisecond)
				if r.NextTick().After(now) {
					continue
				}
				for _, a := range sends(r.Tick(now), NoPort, int(wire.TypeBootstrap)) {
					b := decode(t, a.Frame).(*wire.Bootstrap)
					p, err := wire.ParseSignedRoot(b.Payload)
					if err != nil || !p.Verify(keyA) || p.Seq != uint64(now.UnixMilli()) || p.Root != r.Root() || a.Port != 1 || b.Watermark != (wire.Watermark{Key: keyC}) {
						t.Errorf("bootstrap %s on %v", describe(a.Frame), a.Port)
					}
					at = append(at, now.Sub(t0))
				}
			}
			if !slices.Equal(at, tc.want) {
				t.Fatalf("bootstraps at %v, want %v", at, tc.want)
			}
		})
	}
	// The root never bootstraps.
	root := New(privC, Options{DisableWakeups: true})
	root.PeerUp(t0, 1, keyA, PeerRemote)
	for s := 0; s < 12; s++ {
		if b := sends(root.Tick(t0.Add(time.Duration(s)*time.Second)), NoPort, int(wire.TypeBootstrap)); len(b) != 0 {
			t.Fatal("the root sent a bootstrap")
		}
	}
}
