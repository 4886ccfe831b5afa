package session

import (
	"crypto/ed25519"
	"encoding/binary"
	"testing"
	"time"

	"github.com/pineconed/pineconed/envelope"
	"github.com/pineconed/pineconed/overlay/wire"
)

// forgedInitiations makes n valid initiations to target, each from its own
// freshly generated key, as a hostile node replaying them would send them:
// each costs the responder full Diffie-Hellman before anything can tell it
// apart from an honest one.
func forgedInitiations(t testing.TB, target wire.PublicKey, n int) []msg {
	t.Helper()
	out := make([]msg, 0, n)
	for i := range n {
		var seed [ed25519.SeedSize]byte
		binary.BigEndian.PutUint64(seed[:], uint64(i)+0xF00D0000)
		priv := ed25519.NewKeyFromSeed(seed[:])
		var got []byte
		m, err := NewManager(priv, Config{}, funcs{send: func(_ wire.PublicKey, p []byte) { got = p }})
		if err != nil {
			t.Fatal(err)
		}
		m.SendEcho(t0, target, 0, nil)
		if typ, _ := envelope.ParseHeader(got); typ != envelope.TypeHandshakeInit {
			t.Fatalf("forged initiation %d: type %v", i, typ)
		}
		out = append(out, msg{src: wire.PublicKeyOf(priv), dst: target, payload: got})
	}
	return out
}

// TestCookieUnderLoad: initiations from forged keys use up half the
// initiation budget; from then on the responder answers initiations with
// cookies instead of Diffie-Hellman, so further forged ones cost it no DH
// and create no state, while an honest initiator, which receives its
// cookie, repeats its initiation with the mac and gets its session.
func TestCookieUnderLoad(t *testing.T) {
	f := newFabric(t)
	cfg := Config{InitiationRate: 10, InitiationBurst: 20}
	a, b := f.add(1, cfg), f.add(2, cfg)
	forged := forgedInitiations(t, b.key, 40)
	for _, m := range forged {
		f.deliver(t0, m)
	}
	f.take() // responses and cookie replies to the forged keys: nobody
	st := b.m.Stats()
	if st.Counts[ResponsesSent] != 11 {
		t.Fatalf("%d forged initiations answered, want 11 (down to half the burst of 20)", st.Counts[ResponsesSent])
	}
	if st.Counts[NeedCookie] != 29 || st.Counts[CookieRepliesSent] != 29 {
		t.Fatalf("under load: %d refused for want of a cookie, %d cookie replies; want 29 each", st.Counts[NeedCookie], st.Counts[CookieRepliesSent])
	}
	if st.Peers != 11 {
		t.Fatalf("%d peers after the flood, want only the 11 answered", st.Peers)
	}

	// The honest initiator: initiation → cookie reply → initiation with
	// mac → response → confirmation, all while b stays under load.
	a.m.SendEcho(t0, b.key, 7, []byte("hi"))
	f.run(t0)
	if len(a.echoes) != 1 || a.echoes[0].id != 7 {
		t.Fatalf("honest session under load: echoes %v; a %+v; b %+v", a.echoes, a.m.Stats(), b.m.Stats())
	}
	as, bs := a.m.Stats(), b.m.Stats()
	if as.Counts[CookiesReceived] != 1 || bs.Counts[CookieRepliesSent] != 30 || bs.Counts[ResponsesSent] != 12 {
		t.Fatalf("cookie round: a got %d cookies, b sent %d replies and %d responses", as.Counts[CookiesReceived], bs.Counts[CookieRepliesSent], bs.Counts[ResponsesSent])
	}

	// A forged mac is refused like no mac, and a cookie reply for an
	// initiation we did not send is ignored.
	in, err := envelope.ParseHandshakeInit(forgedInitiations(t, b.key, 1)[0].payload)
	if err != nil {
		t.Fatal(err)
	}
	bad, err := in.AppendWithMAC(nil, func([]byte) (m [envelope.CookieSize]byte) { return m })
	if err != nil {
		t.Fatal(err)
	}
	if err := b.m.HandlePayload(t0, forged[0].src, bad); err == nil {
		t.Fatal("initiation with a forged mac accepted under load")
	}
	f.take()
	if err := a.m.HandlePayload(t0, b.key, mustCookieReply(t, 12345)); err == nil || a.m.Stats().Counts[UnknownIndex] == 0 {
		t.Fatalf("unsolicited cookie reply: %v", err)
	}

	// The budget is back above half 0.9 s later, but the load state
	// holds for UnderLoadFor: a sustained flood does not get the tokens
	// each time they pass half.
	f.deliver(t0.Add(900*time.Millisecond), forged[38])
	if st := b.m.Stats(); st.Counts[ResponsesSent] != 12 || st.Counts[NeedCookie] != 32 {
		t.Fatalf("0.9 s later: %d responses, %d needing a cookie; want 12, 32", st.Counts[ResponsesSent], st.Counts[NeedCookie])
	}
	f.take()
	// Once that has passed, plain initiations are answered again.
	later := t0.Add(3 * time.Second)
	f.deliver(later, forged[39])
	if got := b.m.Stats().Counts[ResponsesSent]; got != 13 {
		t.Fatalf("after the load: %d responses, want 13", got)
	}
}

func mustCookieReply(t *testing.T, receiver uint32) []byte {
	t.Helper()
	b, err := envelope.CookieReply{Receiver: receiver, Sealed: make([]byte, envelope.SealedCookieSize)}.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestPerSourceLimit: one source gets its burst of initiations at once and
// then its rate, whatever the global budget.
func TestPerSourceLimit(t *testing.T) {
	f := newFabric(t)
	b := f.add(2, Config{PerSourceRate: 1, PerSourceBurst: 3, InitiationBurst: 1000})
	m := forgedInitiations(t, b.key, 1)[0]
	for range 10 {
		f.deliver(t0, m)
	}
	// Only the first is answered (the rest are replays of it), but all
	// three within the burst cost DH; seven never reach it.
	st := b.m.Stats()
	if st.Counts[InitiationsLimited] != 7 || st.Counts[ResponsesSent] != 1 || st.Counts[ReplayedInits] != 2 {
		t.Fatalf("limited %d, responses %d, replays %d; want 7, 1, 2", st.Counts[InitiationsLimited], st.Counts[ResponsesSent], st.Counts[ReplayedInits])
	}
	f.deliver(t0.Add(time.Second), m)
	if st := b.m.Stats(); st.Counts[InitiationsLimited] != 7 || st.Counts[ReplayedInits] != 3 {
		t.Fatalf("after 1 s: limited %d, replays %d", st.Counts[InitiationsLimited], st.Counts[ReplayedInits])
	}
}

// TestHalfOpenEviction: forged initiations (not under load: a generous
// budget) can hold at most MaxHalfOpen peers, evicting each other, never
// an established session; and a new honest peer still finds room.
func TestHalfOpenEviction(t *testing.T) {
	f := newFabric(t)
	cfg := Config{MaxPeers: 8, MaxHalfOpen: 4, InitiationBurst: 10000}
	a, b, c := f.add(1, cfg), f.add(2, cfg), f.add(3, cfg)
	establish(t, f, t0, a, b)
	for _, m := range forgedInitiations(t, b.key, 50) {
		f.deliver(t0, m)
	}
	f.take()
	st := b.m.Stats()
	if st.HalfOpen != 4 || st.Peers != 5 || st.Counts[PeersEvicted] != 46 {
		t.Fatalf("after 50 forged initiations: %d half-open, %d peers, %d evicted; want 4, 5, 46", st.HalfOpen, st.Peers, st.Counts[PeersEvicted])
	}
	a.m.Send(t0, b.key, packet(a.key, b.key, 1))
	f.run(t0)
	if len(b.got) != 1 {
		t.Fatal("the established session did not survive the flood")
	}
	c.m.SendEcho(t0, b.key, 3, nil)
	f.run(t0)
	if len(c.echoes) != 1 {
		t.Fatalf("a new honest peer found no room: %+v", b.m.Stats())
	}
	// c's initiation evicted the oldest forged peer and c then confirmed:
	// a, c and three forged peers remain.
	if st := b.m.Stats(); st.HalfOpen != 3 || st.Peers != 5 || st.Counts[PeersEvicted] != 47 {
		t.Fatalf("after the honest session: %d half-open, %d peers, %d evicted; want 3, 5, 47", st.HalfOpen, st.Peers, st.Counts[PeersEvicted])
	}
}
