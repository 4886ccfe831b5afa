package session

import (
	"bytes"
	"crypto/ed25519"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/pineconed/pineconed/addressing"
	"github.com/pineconed/pineconed/envelope"
	"github.com/pineconed/pineconed/internal/testhelp"
	"github.com/pineconed/pineconed/overlay/wire"
	"golang.org/x/crypto/curve25519"
)

func TestKeyConversionAgrees(t *testing.T) {
	for s := range 32 {
		priv := testhelp.SeedKey(byte(s))
		xpriv := PrivateToX25519(priv)
		fromPriv, err := curve25519.X25519(xpriv[:], curve25519.Basepoint)
		if err != nil {
			t.Fatal(err)
		}
		fromPub, err := PublicToX25519(wire.PublicKeyOf(priv))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(fromPriv, fromPub[:]) {
			t.Fatalf("seed %d: derived private key's public %x != converted public %x", s, fromPriv, fromPub)
		}
	}
	// Both sides of a DH between converted identities agree.
	a, b := testhelp.SeedKey(1), testhelp.SeedKey(2)
	xa, xb := PrivateToX25519(a), PrivateToX25519(b)
	pa, _ := PublicToX25519(wire.PublicKeyOf(a))
	pb, _ := PublicToX25519(wire.PublicKeyOf(b))
	s1, _ := curve25519.X25519(xa[:], pb[:])
	s2, _ := curve25519.X25519(xb[:], pa[:])
	if !bytes.Equal(s1, s2) {
		t.Fatal("DH between converted keys disagrees")
	}
	var one wire.PublicKey
	one[0] = 1 // y = 1: the identity, no Montgomery form
	if _, err := PublicToX25519(one); err == nil {
		t.Fatal("y = 1 converted")
	}
	big := wire.FullMask // y = 2^255-1 >= p
	if _, err := PublicToX25519(big); err == nil {
		t.Fatal("non-canonical y converted")
	}
}

func TestReplayWindow(t *testing.T) {
	var w replayWindow
	for c := uint64(0); c < 100; c++ {
		if w.accept(c) != replayOK {
			t.Fatalf("in-order %d rejected", c)
		}
	}
	if w.accept(50) != replayDuplicate || w.accept(99) != replayDuplicate {
		t.Fatal("duplicate accepted")
	}
	// Jump ahead; everything skipped inside the window is still welcome once.
	if w.accept(2000) != replayOK {
		t.Fatal("jump rejected")
	}
	for c := uint64(2000 - WindowSize + 1); c < 2000; c++ {
		if c < 100 {
			continue
		}
		if r := w.accept(c); r != replayOK {
			t.Fatalf("late %d inside window rejected: %d", c, r)
		}
	}
	if w.accept(2000-WindowSize) != replayTooOld {
		t.Fatal("counter at window edge accepted")
	}
	if w.accept(5) != replayTooOld {
		t.Fatal("ancient counter accepted")
	}
	// A jump beyond a whole window clears every block.
	if w.accept(1_000_000) != replayOK || w.accept(1_000_000-1) != replayOK || w.accept(1_000_000-1) != replayDuplicate {
		t.Fatal("big jump handled wrongly")
	}
	// Wrap of the ring: stale bits from a block reused by the ring must
	// not shadow new counters.
	var v replayWindow
	for c := uint64(0); c < 10000; c += 3 {
		if v.accept(c) != replayOK {
			t.Fatalf("stride %d rejected", c)
		}
	}
	for c := uint64(9999 - 1000); c < 9999; c++ {
		want := replayOK
		if c%3 == 0 {
			want = replayDuplicate
		}
		if got := v.accept(c); got != want {
			t.Fatalf("counter %d: %d, want %d", c, got, want)
		}
	}
}

func TestHandshakeAndDataBothWays(t *testing.T) {
	f := newFabric(t)
	a := f.add(1, Config{MTU: 1400})
	b := f.add(2, Config{MTU: 9000})
	for i := range 5 {
		a.m.Send(t0, b.key, packet(a.key, b.key, uint32(i)))
	}
	if st := a.m.Stats(); st.Counts[HandshakesInitiated] != 1 || st.Counts[InitiationsSent] != 1 {
		t.Fatalf("a stats before delivery %+v", st)
	}
	f.run(t0)
	if !slices.Equal(b.got, seqs(0, 5)) {
		t.Fatalf("b got %v", b.got)
	}
	for i := range 5 {
		b.m.Send(t0, a.key, packet(b.key, a.key, uint32(100+i)))
	}
	f.run(t0)
	if !slices.Equal(a.got, seqs(100, 105)) {
		t.Fatalf("a got %v", a.got)
	}
	if mtu, ok := a.m.PeerMTU(b.key); !ok || mtu != 9000 {
		t.Fatalf("a sees b's MTU %d", mtu)
	}
	if mtu, ok := b.m.PeerMTU(a.key); !ok || mtu != 1400 {
		t.Fatalf("b sees a's MTU %d", mtu)
	}
	si := a.m.Sessions(t0.Add(time.Second))
	if len(si) != 1 || si[0].State != "established" || !si[0].Initiator || si[0].PeerMTU != 9000 || si[0].BytesOut == 0 || si[0].BytesIn == 0 {
		t.Fatalf("a sessions %+v", si)
	}
	if a.established != 1 || b.established != 1 {
		t.Fatalf("established callbacks a=%d b=%d", a.established, b.established)
	}
	ast, bst := a.m.Stats(), b.m.Stats()
	if ast.Counts[HandshakesCompleted] != 1 || bst.Counts[HandshakesCompleted] != 1 || ast.Counts[PacketsOut] != 5 || bst.Counts[PacketsIn] != 5 || ast.Counts[PacketsIn] != 5 || f.errs != 0 {
		t.Fatalf("stats a %+v b %+v errs %d", ast, bst, f.errs)
	}
}

func TestEcho(t *testing.T) {
	f := newFabric(t)
	a, b := f.add(1, Config{}), f.add(2, Config{})
	a.m.SendEcho(t0, b.key, 42, []byte("hello"))
	f.run(t0)
	if len(a.echoes) != 1 || a.echoes[0] != (echo{b.key, 42, "hello"}) {
		t.Fatalf("echoes %+v", a.echoes)
	}
	if len(b.got) != 0 {
		t.Fatal("echo delivered as an IPv6 packet")
	}
	if b.m.Stats().Counts[EchoRequestsIn] != 1 || a.m.Stats().Counts[EchoRepliesIn] != 1 {
		t.Fatal("echo counters")
	}
}

func TestReorderReplayAndTooOld(t *testing.T) {
	f := newFabric(t)
	a, b := f.add(1, Config{}), f.add(2, Config{})
	establish(t, f, t0, a, b)
	for i := range 500 {
		a.m.Send(t0, b.key, packet(a.key, b.key, uint32(i)))
	}
	ms := f.take()
	copies := make([]msg, len(ms))
	for i, m := range ms {
		copies[i] = msg{m.src, m.dst, bytes.Clone(m.payload)}
	}
	shuffle(rand.New(rand.NewPCG(1, 2)), ms)
	for _, m := range ms {
		f.deliver(t0, m)
	}
	got := slices.Clone(b.got)
	slices.Sort(got)
	if !slices.Equal(got, seqs(0, 500)) || slices.IsSorted(b.got) {
		t.Fatalf("reordered delivery: %d packets, sorted=%v", len(b.got), slices.IsSorted(b.got))
	}
	for _, m := range copies {
		f.deliver(t0, m)
	}
	if st := b.m.Stats(); st.Counts[Replays] != 500 || len(b.got) != 500 {
		t.Fatalf("replays %d, delivered %d", st.Counts[Replays], len(b.got))
	}

	// A packet held back while WindowSize newer ones pass is too old.
	a.m.Send(t0, b.key, packet(a.key, b.key, 9999))
	held := f.take()
	for i := range WindowSize + 10 {
		a.m.Send(t0, b.key, packet(a.key, b.key, uint32(10000+i)))
	}
	f.run(t0)
	f.deliver(t0, held[0])
	if st := b.m.Stats(); st.Counts[TooOld] != 1 || slices.Contains(b.got, 9999) {
		t.Fatalf("too-old packet: %+v", st)
	}
}

func TestRekeyByCountUninterrupted(t *testing.T) {
	f := newFabric(t)
	// Every rekey happens at t0: lift the per-source initiation limit,
	// which would otherwise (rightly) refuse 40 initiations at once.
	cfg := Config{RekeyAfterMessages: 50, PerSourceBurst: 1000}
	a, b := f.add(1, cfg), f.add(2, cfg)
	for i := range 1000 {
		a.m.Send(t0, b.key, packet(a.key, b.key, uint32(i)))
		b.m.Send(t0, a.key, packet(b.key, a.key, uint32(i)))
		// Deliver in two rounds so handshakes overlap with data.
		if i%3 == 2 {
			f.run(t0)
		}
	}
	f.run(t0)
	if !slices.Equal(b.got, seqs(0, 1000)) || !slices.Equal(a.got, seqs(0, 1000)) {
		t.Fatalf("lost or reordered: a %d b %d", len(a.got), len(b.got))
	}
	as, bs := a.m.Stats(), b.m.Stats()
	if as.Counts[HandshakesCompleted]+bs.Counts[HandshakesCompleted] < 2*15 {
		t.Fatalf("too few rekeys: a %d b %d", as.Counts[HandshakesCompleted], bs.Counts[HandshakesCompleted])
	}
	if as.Counts[DropQueueFull]+bs.Counts[DropQueueFull]+as.Counts[DecryptFailures]+bs.Counts[DecryptFailures]+as.Counts[UnknownIndex]+bs.Counts[UnknownIndex] != 0 {
		t.Fatalf("drops during rekey: a %+v b %+v", as, bs)
	}
}

func TestRekeyByTimeUsesPreviousKeypair(t *testing.T) {
	f, a, b := establishedPair(t, Config{}, Config{})
	now := t0
	var held []msg
	seq := uint32(0)
	for s := 0; s < 400; s++ {
		now = now.Add(time.Second)
		f.tick(now)
		a.m.Send(now, b.key, packet(a.key, b.key, seq))
		b.m.Send(now, a.key, packet(b.key, a.key, seq))
		seq++
		if s == 119 {
			// Hold these: they are sealed with the keypair about to be
			// replaced, and arrive after the rekey.
			held = append(held, f.take()...)
			continue
		}
		f.run(now)
		if s == 135 {
			// The rekey has completed; the held packets need the
			// previous keypair.
			if si := a.m.Sessions(now); now.Sub(si[0].LastRekey) > 15*time.Second {
				t.Fatalf("no rekey by %v: %+v", now.Sub(t0), si)
			}
			for _, m := range held {
				f.deliver(now, m)
			}
			f.run(now)
		}
	}
	ga, gb := slices.Clone(a.got), slices.Clone(b.got)
	slices.Sort(ga)
	slices.Sort(gb)
	if !slices.Equal(ga, seqs(0, 400)) || !slices.Equal(gb, seqs(0, 400)) {
		t.Fatalf("traffic interrupted: a got %d, b got %d; missing a %v b %v; a %+v b %+v", len(ga), len(gb), missing(ga, 400), missing(gb, 400), a.m.Stats(), b.m.Stats())
	}
	as := a.m.Stats()
	if as.Counts[HandshakesCompleted] < 3 || as.Counts[HandshakesInitiated] < 3 {
		t.Fatalf("expected >= 3 time rekeys, stats %+v", as)
	}
	si := a.m.Sessions(now)
	if len(si) != 1 || now.Sub(si[0].LastRekey) > 121*time.Second || si[0].KeypairAge > 121*time.Second {
		t.Fatalf("sessions %+v", si)
	}
}

func TestIdleExpiry(t *testing.T) {
	f, a, b := establishedPair(t, Config{}, Config{})
	now := t0
	a.m.Send(now, b.key, packet(a.key, b.key, 1))
	f.run(now)
	for i := 0; i < 200; i++ {
		now = now.Add(time.Second)
		f.tick(now)
		f.run(now)
		if i == 170 && (len(a.m.Sessions(now)) != 1 || len(b.m.Sessions(now)) != 1) {
			t.Fatal("expired before the idle timeout")
		}
	}
	if len(a.m.Sessions(now)) != 0 || len(b.m.Sessions(now)) != 0 {
		t.Fatal("idle sessions kept")
	}
	if a.m.Stats().Counts[PeersExpired] != 1 || b.m.Stats().Counts[PeersExpired] != 1 {
		t.Fatal("expiry not counted")
	}
	a.m.mu.RLock()
	leftover := len(a.m.index)
	a.m.mu.RUnlock()
	if leftover != 0 {
		t.Fatalf("%d indices left after expiry", leftover)
	}
	// And a new session forms on demand.
	a.m.Send(now, b.key, packet(a.key, b.key, 2))
	f.run(now)
	if b.got[len(b.got)-1] != 2 {
		t.Fatal("no new session after expiry")
	}
}

func TestSimultaneousInitiation(t *testing.T) {
	f := newFabric(t)
	a, b := f.add(1, Config{}), f.add(2, Config{})
	lo, hi := a, b
	if hi.key.Less(lo.key) {
		lo, hi = hi, lo
	}
	for i := range 3 {
		lo.m.Send(t0, hi.key, packet(lo.key, hi.key, uint32(i)))
		hi.m.Send(t0, lo.key, packet(hi.key, lo.key, uint32(10+i)))
	}
	if len(f.inflight) != 2 {
		t.Fatalf("want two crossing initiations, have %d messages", len(f.inflight))
	}
	f.run(t0)
	if !slices.Equal(hi.got, seqs(0, 3)) || !slices.Equal(lo.got, seqs(10, 13)) {
		t.Fatalf("lo got %v, hi got %v", lo.got, hi.got)
	}
	ls, hs := lo.m.Stats(), hi.m.Stats()
	if ls.Counts[CollisionsYielded] != 1 || hs.Counts[CollisionsIgnored] != 1 || ls.Counts[CollisionsIgnored] != 0 || hs.Counts[CollisionsYielded] != 0 {
		t.Fatalf("collision handling lo %+v hi %+v", ls, hs)
	}
	li, hinfo := lo.m.Sessions(t0), hi.m.Sessions(t0)
	if li[0].Initiator || !hinfo[0].Initiator {
		t.Fatal("the higher key should be the initiator of the surviving session")
	}
	// The same holds with the messages crossing in the other order.
	f2 := newFabric(t)
	a2, b2 := f2.add(1, Config{}), f2.add(2, Config{})
	a2.m.Send(t0, b2.key, packet(a2.key, b2.key, 1))
	b2.m.Send(t0, a2.key, packet(b2.key, a2.key, 2))
	ms := f2.take()
	slices.Reverse(ms)
	for _, m := range ms {
		f2.deliver(t0, m)
	}
	f2.run(t0)
	if !slices.Equal(a2.got, []uint32{2}) || !slices.Equal(b2.got, []uint32{1}) {
		t.Fatalf("reverse crossing: a %v b %v", a2.got, b2.got)
	}
}

func TestWrongStaticKeyRejected(t *testing.T) {
	f := newFabric(t)
	a, b, c := f.add(1, Config{}), f.add(2, Config{}), f.add(3, Config{})
	// c initiates to b, but the overlay frame claims to come from a.
	c.m.Send(t0, b.key, packet(c.key, b.key, 1))
	init := f.take()[0]
	if err := b.m.HandlePayload(t0, a.key, init.payload); err == nil {
		t.Fatal("initiation with a foreign static key accepted")
	}
	if st := b.m.Stats(); st.Counts[WrongStatic] != 1 || st.Counts[ResponsesSent] != 0 || st.Peers != 0 {
		t.Fatalf("b stats %+v", st)
	}
	if len(f.inflight) != 0 {
		t.Fatal("b answered")
	}
	// Delivered with its true source, the same kind of message works.
	c.m.Tick(t0.Add(5 * time.Second)) // retry
	f.run(t0.Add(5 * time.Second))
	if !slices.Equal(b.got, []uint32{1}) {
		t.Fatalf("b got %v", b.got)
	}
}

func TestReplayedInitiationDropped(t *testing.T) {
	f := newFabric(t)
	a, b := f.add(1, Config{}), f.add(2, Config{})
	a.m.Send(t0, b.key, packet(a.key, b.key, 1))
	init := f.take()[0]
	replay := bytes.Clone(init.payload)
	f.deliver(t0, init)
	f.run(t0)
	if err := b.m.HandlePayload(t0, a.key, replay); err == nil {
		t.Fatal("replayed initiation accepted")
	}
	if b.m.Stats().Counts[ReplayedInits] != 1 || b.m.Stats().Counts[ResponsesSent] != 1 {
		t.Fatalf("b stats %+v", b.m.Stats())
	}
	// The session is unharmed.
	a.m.Send(t0, b.key, packet(a.key, b.key, 2))
	f.run(t0)
	if !slices.Equal(b.got, []uint32{1, 2}) {
		t.Fatalf("b got %v", b.got)
	}
}

func TestSourceAddressChecked(t *testing.T) {
	f := newFabric(t)
	a, b, c := f.add(1, Config{}), f.add(2, Config{}), f.add(3, Config{})
	establish(t, f, t0, a, b)
	a.m.Send(t0, b.key, packetFromAddr(addressing.NodeAddr(c.key), b.key, 1))
	host := addressing.Subnet(a.key).Addr().As16()
	host[15] = 7
	sub := addressing.Subnet(a.key).Addr()
	a.m.Send(t0, b.key, packetFromAddr(sub.Next(), b.key, 2))
	a.m.Send(t0, b.key, packetFromAddr(addressing.Subnet(c.key).Addr().Next(), b.key, 3))
	f.run(t0)
	if !slices.Equal(b.got, []uint32{2}) || b.m.Stats().Counts[BadSource] != 2 {
		t.Fatalf("b got %v, stats %+v", b.got, b.m.Stats())
	}
}

func TestHandshakeGiveUpReportsUnreachable(t *testing.T) {
	f := newFabric(t)
	a := f.add(1, Config{})
	ghost := wire.PublicKeyOf(testhelp.SeedKey(9)) // no node on the fabric
	for i := range 70 {
		a.m.Send(t0, ghost, packet(a.key, ghost, uint32(i)))
	}
	a.m.SendEcho(t0, ghost, 1, nil)
	now := t0
	for now.Before(t0.Add(100 * time.Second)) {
		now = now.Add(time.Second)
		a.m.Tick(now)
		f.run(now)
		if len(a.unreachable) > 0 {
			break
		}
	}
	if now.Sub(t0) != 90*time.Second {
		t.Fatalf("gave up after %v", now.Sub(t0))
	}
	if len(a.unreachable) != 64 {
		t.Fatalf("unreachable got %d packets, want the 64 queued", len(a.unreachable))
	}
	for i, p := range a.unreachable {
		if !bytes.Equal(p, packet(a.key, ghost, uint32(i))) {
			t.Fatalf("unreachable packet %d differs", i)
		}
	}
	st := a.m.Stats()
	if st.Counts[DropQueueFull] != 7 || st.Counts[HandshakesFailed] != 1 || st.Counts[InitiationsSent] != 18 || st.Counts[DropUnreachable] != 64 {
		t.Fatalf("stats %+v", st)
	}
	si := a.m.Sessions(now)
	if len(si) != 1 || si[0].Queued != 0 || si[0].State != "waiting" {
		t.Fatalf("sessions %+v", si)
	}
}

func TestPeerRestartRecovers(t *testing.T) {
	f, a, b := establishedPair(t, Config{}, Config{})
	now := t0
	// b restarts: same identity, no session state.
	b2 := f.add(2, Config{})
	for s := range 40 {
		now = now.Add(time.Second)
		f.tick(now)
		a.m.Send(now, b.key, packet(a.key, b.key, uint32(s)))
		f.run(now)
	}
	if len(b2.got) == 0 || b2.got[len(b2.got)-1] != 39 {
		t.Fatalf("traffic did not resume after restart: %v", b2.got)
	}
	if b2.m.Stats().Counts[UnknownIndex] == 0 {
		t.Fatal("expected unknown-index drops before recovery")
	}
}

func TestLossyReorderingNetwork(t *testing.T) {
	f := newFabric(t)
	a, b := f.add(1, Config{}), f.add(2, Config{})
	r := rand.New(rand.NewPCG(7, 7))
	now := t0
	sent := 0
	for range 240 {
		now = now.Add(500 * time.Millisecond)
		f.tick(now)
		for range 5 {
			a.m.Send(now, b.key, packet(a.key, b.key, uint32(sent)))
			b.m.Send(now, a.key, packet(b.key, a.key, uint32(sent)))
			sent++
		}
		ms := f.take()
		shuffle(r, ms)
		for _, m := range ms {
			if r.IntN(10) < 2 { // 20% loss
				continue
			}
			if r.IntN(10) < 2 { // 20% duplicated
				f.deliver(now, msg{m.src, m.dst, bytes.Clone(m.payload)})
			}
			f.deliver(now, m)
		}
		// Whatever the deliveries produced goes through a lossy pass too.
		ms = f.take()
		for _, m := range ms {
			if r.IntN(10) >= 2 {
				f.deliver(now, m)
			}
		}
	}
	if len(a.got) < sent/2 || len(b.got) < sent/2 {
		t.Fatalf("too little got through: a %d b %d of %d\n%+v\n%+v", len(a.got), len(b.got), sent, a.m.Stats(), b.m.Stats())
	}
	for _, n := range []*node{a, b} {
		seen := map[uint32]bool{}
		for _, s := range n.got {
			if seen[s] {
				t.Fatalf("duplicate %d delivered", s)
			}
			seen[s] = true
		}
	}
	if a.m.Stats().Counts[Replays]+b.m.Stats().Counts[Replays] == 0 {
		t.Fatal("duplicates were not seen as replays")
	}
}

func TestGarbageCountedAndDropped(t *testing.T) {
	f := newFabric(t)
	a, b := f.add(1, Config{}), f.add(2, Config{})
	establish(t, f, t0, a, b)
	a.m.Send(t0, b.key, packet(a.key, b.key, 1))
	good := f.take()[0].payload
	a.m.Tick(t0)
	r := rand.New(rand.NewPCG(3, 4))
	before := b.m.Stats()
	n := 0
	feed := func(p []byte) {
		n++
		if err := b.m.HandlePayload(t0, a.key, p); err == nil {
			t.Fatalf("garbage %x accepted", p)
		}
	}
	feed(nil)
	feed([]byte("pineping"))
	feed([]byte{0xc3, 0, 0, 0, 1, 8})
	lr, _ := envelope.LookupRequest{Kind: envelope.LookupNode, Prefix: make([]byte, 15)}.Append(nil)
	feed(lr)
	for i := range len(good) {
		feed(bytes.Clone(good[:i]))
	}
	for i := range len(good) * 8 {
		p := bytes.Clone(good)
		p[i/8] ^= 1 << (i % 8)
		feed(p)
	}
	for range 2000 {
		p := make([]byte, r.IntN(200))
		for j := range p {
			p[j] = byte(r.Uint32())
		}
		if r.IntN(2) == 0 && len(p) >= 6 {
			copy(p, envelope.AppendHeader(nil, envelope.Type(3+r.IntN(3))))
		}
		feed(p)
	}
	after := b.m.Stats()
	counted := (after.Counts[Malformed] - before.Counts[Malformed]) + (after.Counts[DecryptFailures] - before.Counts[DecryptFailures]) +
		(after.Counts[UnknownIndex] - before.Counts[UnknownIndex]) + (after.Counts[BadHandshake] - before.Counts[BadHandshake]) +
		(after.Counts[Replays] - before.Counts[Replays]) + (after.Counts[TooOld] - before.Counts[TooOld]) + (after.Counts[DropBadKey] - before.Counts[DropBadKey])
	if counted != uint64(n) {
		t.Fatalf("%d garbage payloads, %d counted: %+v", n, counted, after)
	}
	if len(b.got) != 0 {
		t.Fatal("garbage delivered")
	}
	// The session still works.
	a.m.Send(t0, b.key, packet(a.key, b.key, 2))
	f.run(t0)
	if !slices.Equal(b.got, []uint32{2}) {
		t.Fatalf("session broken by garbage: %v", b.got)
	}
}

func TestBadResponseDoesNotBreakHandshake(t *testing.T) {
	f := newFabric(t)
	a, b := f.add(1, Config{}), f.add(2, Config{})
	a.m.Send(t0, b.key, packet(a.key, b.key, 1))
	f.deliver(t0, f.take()[0])
	resp := f.take()[0]
	forged := bytes.Clone(resp.payload)
	forged[len(forged)-20] ^= 0x80 // corrupt the responder's ephemeral key area
	forged2 := bytes.Clone(resp.payload)
	for i := envelope.HeaderSize + 8; i < envelope.HeaderSize+8+32; i++ {
		forged2[i] = 0 // low-order ephemeral: X25519 fails inside Noise
	}
	if a.m.HandlePayload(t0, b.key, forged) == nil || a.m.HandlePayload(t0, b.key, forged2) == nil {
		t.Fatal("corrupt response accepted")
	}
	f.deliver(t0, resp)
	f.run(t0)
	if !slices.Equal(b.got, []uint32{1}) {
		t.Fatalf("genuine response after corrupt ones failed: %v", b.got)
	}
}

func TestMaxPeersAndBadKeys(t *testing.T) {
	f := newFabric(t)
	a := f.add(1, Config{MaxPeers: 2})
	for s := byte(10); s < 14; s++ {
		k := wire.PublicKeyOf(testhelp.SeedKey(s))
		a.m.Send(t0, k, packet(a.key, k, 0))
	}
	a.m.Send(t0, a.key, packet(a.key, a.key, 0))
	var bad wire.PublicKey
	bad[0] = 1
	a.m.Send(t0, bad, packet(a.key, bad, 0))
	a.m.Send(t0, wire.PublicKeyOf(testhelp.SeedKey(10)), make([]byte, MaxPacket+1))
	st := a.m.Stats()
	if st.Peers != 2 || st.Counts[DropTooManyPeer] != 2 || st.Counts[DropBadKey] != 2 || st.Counts[DropTooBig] != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestCloseForgetsState(t *testing.T) {
	f := newFabric(t)
	a, b := f.add(1, Config{}), f.add(2, Config{})
	establish(t, f, t0, a, b)
	a.m.Close()
	if len(a.m.Sessions(t0)) != 0 || a.m.Stats().Peers != 0 {
		t.Fatal("Close kept sessions")
	}
	_ = ed25519.PublicKeySize
}
