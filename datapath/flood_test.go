package datapath

import (
	"crypto/ed25519"
	"encoding/binary"
	"log/slog"
	"math/rand/v2"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pineconed/pineconed/addressing"
	"github.com/pineconed/pineconed/envelope"
	"github.com/pineconed/pineconed/internal/testhelp"
	"github.com/pineconed/pineconed/overlay"
	"github.com/pineconed/pineconed/overlay/wire"
	"github.com/pineconed/pineconed/session"
)

// The hostile-node test runs in memory: two honest daemons' payload layers
// (the real handleDelivery dispatch, session Manager, handshake queue and
// goroutine, resolver and lookup limit) joined by a fabric that stands in
// for the overlay, and a hostile node writing straight into the victim's
// delivery queue, as a Pinecone node that forges Traffic source keys
// would. In memory rather than in namespaces because what is under test
// is how the victim's CPU is shared between the flood and the honest
// session: in namespaces the flood would also have to cross a link and
// its framing, and on these shared two-core machines the attacker process
// and the link goroutines would take most of the CPU the measurement is
// about. The overlay (routing, links) is not what a handshake flood
// attacks; its bounded queues are tested in overlay and overlay/link.

// floodDeliveryQueue is the delivery queue of a fabric node, the overlay
// node's default (overlay.DefaultDeliveryQueue): when the payload layers
// do not keep up, deliveries are dropped here, as the real node drops them.
const floodDeliveryQueue = overlay.DefaultDeliveryQueue

// floodRate is the initiations, and the lookups, a second the hostile node
// aims at: a little over the 10 000/s the scenario asks for, so that the
// rate reached is at least that.
const floodRate = 10500

// floodNode is one honest node's payload layers on the fabric: a Path
// whose Overlay is the fabric.
type floodNode struct {
	d       *Path
	f       *floodFabric
	in      chan overlay.Delivery
	dropped atomic.Uint64 // deliveries refused by a full queue
	echoes  chan uint64   // echo reply ids
}

// floodFabric connects floodNodes by key.
type floodFabric struct {
	nodes map[wire.PublicKey]*floodNode
	stop  chan struct{}
	wg    sync.WaitGroup
	paths []*Path
}

// SendBuffer carries a copy of the payload to dst's delivery queue.
func (n *floodNode) SendBuffer(dst wire.PublicKey, buf []byte, off int) error {
	to := n.f.nodes[dst]
	if to == nil {
		return nil // a forged key: nobody receives there
	}
	to.offer(overlay.Delivery{Source: n.d.key, Destination: dst, Payload: append([]byte(nil), buf[off:]...)})
	return nil
}

// Deliveries is the node's delivery queue.
func (n *floodNode) Deliveries() <-chan overlay.Delivery { return n.in }

// RoutesChanged never fires: the fabric has no routes to gain.
func (n *floodNode) RoutesChanged() <-chan struct{} { return nil }

// delivered is the IPv6 packets the path decrypted and checked: with no
// TUN, each is counted as a no_tun drop where it would have been written.
func (n *floodNode) delivered() uint64 { return n.d.Dropped(DropNoTUN) }

func (n *floodNode) offer(dl overlay.Delivery) {
	select {
	case n.in <- dl:
	default:
		n.dropped.Add(1)
	}
}

func (f *floodFabric) add(t testing.TB, seed byte) *floodNode {
	t.Helper()
	priv := testhelp.SeedKey(seed)
	key := wire.PublicKeyOf(priv)
	n := &floodNode{in: make(chan overlay.Delivery, floodDeliveryQueue), echoes: make(chan uint64, 4096)}
	n.f = f
	f.nodes[key] = n
	d, err := New(Config{
		Private: priv,
		Overlay: n,
		Logger:  slog.New(slog.DiscardHandler),
		EchoReply: func(_ wire.PublicKey, id uint64, _ []byte) {
			select {
			case n.echoes <- id:
			default:
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	n.d = d
	// The path's own goroutines: inbound over this queue instead of the
	// overlay node's, handshakes, timers.
	d.Start()
	f.paths = append(f.paths, d)
	return n
}

func newFloodFabric(t testing.TB) *floodFabric {
	f := &floodFabric{nodes: map[wire.PublicKey]*floodNode{}, stop: make(chan struct{})}
	t.Cleanup(func() {
		close(f.stop)
		for _, p := range f.paths {
			p.Close()
		}
		f.wg.Wait()
	})
	return f
}

// capture is a session.Transport that keeps the last message sent.
type capture struct{ sent []byte }

func (c *capture) Send(_ wire.PublicKey, buf []byte, off int)    { c.sent = buf[off:] }
func (*capture) Deliver(wire.PublicKey, []byte)                  {}
func (*capture) EchoReply(wire.PublicKey, uint64, []byte)        {}
func (*capture) Established(wire.PublicKey, bool, time.Duration) {}
func (*capture) Unreachable(wire.PublicKey, [][]byte)            {}

// hostile precomputes what the hostile node sends: valid initiations to
// victim from distinct random keys (each costs the victim full
// Diffie-Hellman before the replay check can refuse a repeat, so
// replaying them is as good as fresh ones), and lookup requests for
// random prefixes from random keys.
type hostile struct {
	inits   []overlay.Delivery
	lookups []overlay.Delivery
}

func newHostile(t testing.TB, victim wire.PublicKey, keys int) *hostile {
	t.Helper()
	h := &hostile{}
	rng := rand.New(rand.NewPCG(7, 8))
	for i := range keys {
		var seed [ed25519.SeedSize]byte
		binary.BigEndian.PutUint64(seed[:], rng.Uint64())
		binary.BigEndian.PutUint64(seed[8:], uint64(i))
		priv := ed25519.NewKeyFromSeed(seed[:])
		src := wire.PublicKeyOf(priv)
		var init capture
		m, err := session.NewManager(priv, session.Config{}, &init)
		if err != nil {
			t.Fatal(err)
		}
		m.SendEcho(time.Now(), victim, 0, nil)
		h.inits = append(h.inits, overlay.Delivery{Source: src, Destination: victim, Payload: init.sent})
		prefix := make([]byte, envelope.LookupNode.PrefixLen())
		for j := range prefix {
			prefix[j] = byte(rng.Uint32())
		}
		req, err := envelope.LookupRequest{Kind: envelope.LookupNode, Nonce: rng.Uint64(), Prefix: prefix}.Append(nil)
		if err != nil {
			t.Fatal(err)
		}
		h.lookups = append(h.lookups, overlay.Delivery{Source: src, Destination: wire.PublicKey(append(prefix, make([]byte, 17)...)), Payload: req})
	}
	return h
}

// flood sends rate initiations and rate lookups a second into victim until
// stop closes, in 100 rounds a second; it returns how many of each it sent
// and for how long.
func (h *hostile) flood(victim *floodNode, rate int, stop <-chan struct{}) (sent int, took time.Duration) {
	per := rate / 100
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	start := time.Now()
	i := 0
	for {
		select {
		case <-stop:
			return sent, time.Since(start)
		case <-t.C:
		}
		// Catch up on rounds the scheduler delayed, so the rate is kept.
		due := int(time.Since(start)/(10*time.Millisecond)) * per
		for sent < due {
			// Shared, not copied: the victim only reads handshake and
			// lookup payloads (the handshake queue copies them), and the
			// copies would be the attacker's CPU, spent on the victim's
			// cores only because this test runs both in one process.
			victim.offer(h.inits[i%len(h.inits)])
			victim.offer(h.lookups[i%len(h.lookups)])
			sent++
			i++
		}
	}
}

// floodRun is what one phase of the hostile-node scenario measured.
type floodRun struct {
	pings, replies int
	packets        uint64        // delivered at b in the throughput window
	window         time.Duration // the throughput window
	floodSent      int           // initiations (and as many lookups) sent
	floodTook      time.Duration // over this time
}

// floodRate is the initiations (and lookups) per second the hostile node
// sent.
func (r floodRun) floodRate() float64 { return float64(r.floodSent) / r.floodTook.Seconds() }

// throughput is the honest packets per second delivered at b.
func (r floodRun) throughput() float64 { return float64(r.packets) / r.window.Seconds() }

// runPhase measures, with or without the hostile node, ping success from
// a to b (pings every 10 ms, each answered within a second) and then the
// throughput of a→b (packets delivered at b while a sends as fast as it
// can for window).
func runPhase(t testing.TB, a, b *floodNode, h *hostile, rate, pings int, window time.Duration) floodRun {
	var r floodRun
	stop := make(chan struct{})
	var fw sync.WaitGroup
	if h != nil {
		fw.Add(1)
		go func() {
			defer fw.Done()
			r.floodSent, r.floodTook = h.flood(b, rate, stop)
		}()
		time.Sleep(200 * time.Millisecond) // let the flood reach its steady state
	}
	got := map[uint64]bool{}
	base := uint64(rand.Uint32()) << 20
	for i := range pings {
		a.d.sessions.SendEcho(time.Now(), b.d.key, base+uint64(i), nil)
		time.Sleep(10 * time.Millisecond)
		for drained := false; !drained; {
			select {
			case id := <-a.echoes:
				got[id] = true
			default:
				drained = true
			}
		}
	}
	for deadline := time.After(time.Second); len(got) < pings; {
		select {
		case id := <-a.echoes:
			got[id] = true
		case <-deadline:
			goto counted
		}
	}
counted:
	r.pings = pings
	for id := range got {
		if id >= base && id < base+uint64(pings) {
			r.replies++
		}
	}

	pkt := floodPacket(a.d.key, b.d.key)
	before := b.delivered()
	start := time.Now()
	var sent uint64
	for time.Since(start) < window {
		for range 64 {
			a.d.sessions.Send(time.Now(), b.d.key, pkt)
		}
		sent += 64
		// A window of 256 packets in flight, as a transport's would be,
		// so that what is measured is how fast b works them off, not how
		// fast its full queue drops them. A packet lost on the way would
		// keep the window shut: after 5 ms without room, send on.
		// (Gosched, not Sleep: under load a timer sleep lasts far longer
		// than asked and would measure the sleeps.)
		for wait := time.Now(); sent-(b.delivered()-before) > 256 && time.Since(wait) < 5*time.Millisecond; {
			runtime.Gosched()
		}
	}
	time.Sleep(20 * time.Millisecond)
	r.window = time.Since(start)
	r.packets = b.delivered() - before
	close(stop)
	fw.Wait()
	return r
}

// floodPacket is a 1 280-byte IPv6 packet from src's address to dst's.
func floodPacket(src, dst wire.PublicKey) []byte {
	p := make([]byte, 1280)
	p[0] = 0x60
	binary.BigEndian.PutUint16(p[4:], uint16(len(p)-40))
	p[6] = 17
	p[7] = 64
	s, d := addressing.NodeAddr(src).As16(), addressing.NodeAddr(dst).As16()
	copy(p[8:], s[:])
	copy(p[24:], d[:])
	return p
}

// TestHostileFlood: while a hostile node sends the victim 10 000
// initiations a second from random keys and 10 000 lookups a second, an
// established session to the victim keeps ≥ 99 % ping success, and the
// flood is held by the defences (initiations refused for want of a
// cookie or by the rate limit, lookups by theirs) rather than by the
// delivery queue. The throughput ratio (loaded / unloaded, measured in
// the same run) is logged; BenchmarkHostileFlood reports it as a metric.
func TestHostileFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("hostile flood: several seconds of real time (-short)")
	}
	if raceDetector {
		// The handshake queue, limits and cookies are race-tested in
		// package session; this is a load scenario in real time.
		t.Skip("hostile flood: the race detector's slowdown keeps the flood below 10 000/s")
	}
	f := newFloodFabric(t)
	a, b := f.add(t, 1), f.add(t, 2)
	h := newHostile(t, b.d.key, 2000)
	establishFlood(t, a, b)

	base := runPhase(t, a, b, nil, 0, 100, 500*time.Millisecond)
	loaded := runPhase(t, a, b, h, floodRate, 200, 500*time.Millisecond)
	// The throughput ratio over three interleaved pairs, logged with its
	// spread (BenchmarkHostileFlood runs more of them).
	ratios, _ := floodRatios(t, a, b, h, 3, 50, 300*time.Millisecond)
	st := b.d.sessions.Stats()
	t.Logf("unloaded: %d/%d pings, %.0f packets/s; flood of %d initiations and %d lookups (%.0f/s each): %d/%d pings, %.0f packets/s; throughput ratio median %.2f of %.2f",
		base.replies, base.pings, base.throughput(), loaded.floodSent, loaded.floodSent, loaded.floodRate(),
		loaded.replies, loaded.pings, loaded.throughput(), median(ratios), ratios)
	t.Logf("victim: responses %d, need cookie %d, rate limited %d, cookie replies %d (limited %d), handshake queue drops %d, lookups limited %d, delivery drops %d, peers %d (half-open %d, evicted %d)",
		st.Counts[session.ResponsesSent], st.Counts[session.NeedCookie], st.Counts[session.InitiationsLimited], st.Counts[session.CookieRepliesSent], st.Counts[session.CookieRepliesLimited],
		b.d.hsq.Drops(), b.d.Dropped(DropLookupRateLimited), b.dropped.Load(), st.Peers, st.HalfOpen, st.Counts[session.PeersEvicted])

	if base.replies < base.pings {
		t.Fatalf("unloaded: only %d of %d pings answered", base.replies, base.pings)
	}
	if loaded.replies*100 < loaded.pings*99 {
		t.Errorf("under the flood: %d of %d pings answered, want ≥ 99 %%", loaded.replies, loaded.pings)
	}
	if loaded.floodRate() < 10000 {
		t.Errorf("the hostile node sent only %.0f initiations/s: not a 10 000/s flood", loaded.floodRate())
	}
	// The defences, not luck, held the flood: most initiations were
	// refused before Diffie-Hellman, and lookups were limited.
	if refused := st.Counts[session.NeedCookie] + st.Counts[session.InitiationsLimited] + b.d.hsq.Drops(); refused*2 < uint64(loaded.floodSent) {
		t.Errorf("only %d of %d initiations refused before Diffie-Hellman", refused, loaded.floodSent)
	}
	if b.d.Dropped(DropLookupRateLimited)*2 < uint64(loaded.floodSent) {
		t.Errorf("only %d of %d lookups rate limited", b.d.Dropped(DropLookupRateLimited), loaded.floodSent)
	}
	if us := b.d.sessions.Sessions(time.Now()); !hasEstablished(us, a.d.key) {
		t.Error("the honest session is no longer established at the victim")
	}
}

func hasEstablished(infos []session.Info, key wire.PublicKey) bool {
	for _, s := range infos {
		if s.Remote == key && s.State == "established" {
			return true
		}
	}
	return false
}

// establishFlood sets up the honest session a→b before any flood.
func establishFlood(t testing.TB, a, b *floodNode) {
	t.Helper()
	testhelp.WaitFor(t, "a session between the honest nodes", 5*time.Second, func() bool {
		a.d.sessions.SendEcho(time.Now(), b.d.key, 1, nil)
		select {
		case <-a.echoes:
			return true
		case <-time.After(100 * time.Millisecond):
			return false
		}
	})
}

// floodRatios runs trials pairs of an unloaded and a loaded phase of
// window each, alternating which comes first so that a drift of the
// machine's load falls on both sides alike, and returns each pair's
// throughput ratio (loaded / unloaded) sorted, with the loaded phases.
func floodRatios(t testing.TB, a, b *floodNode, h *hostile, trials, pings int, window time.Duration) ([]float64, []floodRun) {
	ratios := make([]float64, 0, trials)
	var loaded []floodRun
	for i := range trials {
		var u, l floodRun
		if i%2 == 0 {
			u = runPhase(t, a, b, nil, 0, 20, window)
			l = runPhase(t, a, b, h, floodRate, pings, window)
		} else {
			l = runPhase(t, a, b, h, floodRate, pings, window)
			u = runPhase(t, a, b, nil, 0, 20, window)
		}
		ratios = append(ratios, l.throughput()/u.throughput())
		loaded = append(loaded, l)
	}
	sort.Float64s(ratios)
	return ratios, loaded
}

// median of sorted values.
func median(sorted []float64) float64 {
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

// BenchmarkHostileFlood reports the hostile-node scenario of
// TestHostileFlood: the honest session's ping success under the flood,
// and the median, least and greatest of its throughput ratio (loaded /
// unloaded) over interleaved pairs of phases (floodRatios), so that one
// run gives the figure and its spread on a noisy machine; each iteration
// is 5 pairs of 1 s phases.
func BenchmarkHostileFlood(b *testing.B) {
	f := newFloodFabric(b)
	x, y := f.add(b, 1), f.add(b, 2)
	h := newHostile(b, y.d.key, 2000)
	establishFlood(b, x, y)
	var all []float64
	var rate float64
	var pings, replies, phases int
	for b.Loop() {
		ratios, loaded := floodRatios(b, x, y, h, 5, 200, time.Second)
		all = append(all, ratios...)
		for _, l := range loaded {
			rate += l.floodRate()
			pings += l.pings
			replies += l.replies
			phases++
		}
	}
	sort.Float64s(all)
	b.ReportMetric(float64(replies)/float64(pings)*100, "%ping")
	b.ReportMetric(median(all), "throughput-ratio-median")
	b.ReportMetric(all[0], "throughput-ratio-min")
	b.ReportMetric(all[len(all)-1], "throughput-ratio-max")
	b.ReportMetric(rate/float64(phases), "flood/s")
}
