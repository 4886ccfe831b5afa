package router

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/pineconed/pineconed/overlay/wire"
)

// randomSnapshot builds a snapshot with few distinct keys, so that keys
// repeat across ancestries, peers, routes, our own key and the root, and
// ties of every kind happen often.
func randomSnapshot(rng *rand.Rand, now time.Time) *Snapshot {
	key := func() wire.PublicKey { return wire.PublicKey{byte(1+rng.IntN(7)) << 4} }
	s := &Snapshot{key: key(), parent: NoPort}
	s.root = wire.Root{Key: key(), Seq: uint64(rng.IntN(2))}
	order := uint64(0)
	for port := Port(1); port <= Port(1+rng.IntN(8)); port++ {
		if rng.IntN(4) == 0 {
			continue
		}
		q := &peerInfo{port: port, key: key(), typ: PeerType(rng.IntN(3))}
		if rng.IntN(5) > 0 {
			order += uint64(1 + rng.IntN(3))
			a := &annInfo{root: wire.Root{Key: key(), Seq: uint64(rng.IntN(2))}, order: uint64(rng.IntN(20))}
			if rng.IntN(2) == 0 {
				a.root = s.root
			}
			for range 1 + rng.IntN(4) {
				a.keys = append(a.keys, key())
			}
			a.keys = append(a.keys, q.key)
			q.ann = a
		}
		s.peers = append(s.peers, q)
		s.index[port] = uint8(len(s.peers))
	}
	if rng.IntN(4) > 0 {
		for _, q := range s.peers {
			if q.ann != nil && rng.IntN(2) == 0 {
				s.parent = q.port
				break
			}
		}
	}
	for _, q := range s.peers {
		if rng.IntN(3) == 0 {
			continue
		}
		k := key()
		if rng.IntN(3) == 0 {
			k[31] = 1 // just above a pool key
		}
		dup := false
		for _, e := range s.entries {
			dup = dup || e.origin == k
		}
		if !dup {
			s.entries = append(s.entries, testEntry(k, uint64(rng.IntN(4)), q.port,
				now.Add(time.Duration(rng.IntN(3)-1)*time.Second)))
		}
	}
	s.peerIdx = new(peerIndex)
	s.sortEntries()
	return s
}

// TestTrafficSearchMatchesLiteral checks on random snapshots that the
// indexed search used for traffic picks exactly the next hop and watermark
// of the literal algorithm of §5.3, with the routes walked in random order.
func TestTrafficSearchMatchesLiteral(t *testing.T) {
	kinds := checkSearchMatchesLiteral(t, rand.New(rand.NewPCG(1, 2)), false,
		func(rng *rand.Rand, _ *Snapshot, dest *wire.PublicKey) {
			if rng.IntN(3) == 0 {
				dest[31] = byte(rng.IntN(2))
			}
		},
		func(s *Snapshot, now time.Time, dest wire.PublicKey, w wire.Watermark) (Port, wire.Watermark) {
			return s.nextHopTraffic(now, dest, w)
		})
	t.Logf("next hops by port (0 = local, 9 = higher): %v", kinds)
}

// BenchmarkSNEKSearch compares the literal walk (the baseline) with the
// indexed search traffic uses, on a snapshot shaped like a hub: 64 peers
// with ancestries of 5 keys and 200 routes, all keys random.
func BenchmarkSNEKSearch(b *testing.B) {
	rng := rand.New(rand.NewPCG(3, 4))
	key := func() (k wire.PublicKey) {
		for i := range k {
			k[i] = byte(rng.IntN(256))
		}
		return k
	}
	s := &Snapshot{key: key(), parent: 1, root: wire.Root{Key: wire.FullMask}}
	for port := Port(1); port <= 64; port++ {
		q := &peerInfo{port: port, key: key(), ann: &annInfo{root: s.root, order: uint64(port)}}
		q.ann.keys = []wire.PublicKey{s.root.Key, key(), key(), key(), q.key}
		s.peers = append(s.peers, q)
		s.index[port] = uint8(len(s.peers))
	}
	for i := 0; i < 200; i++ {
		s.entries = append(s.entries, testEntry(key(), 1, Port(1+i%64), t0.Add(time.Minute)))
	}
	s.peerIdx = new(peerIndex)
	s.sortEntries()
	dests := make([]wire.PublicKey, 1024)
	for i := range dests {
		dests[i] = key()
	}
	b.Run("literal", func(b *testing.B) {
		i := 0
		for b.Loop() {
			s.nextHopSNEK(t0, dests[i%len(dests)], false, wire.StartWatermark)
			i++
		}
	})
	b.Run("indexed", func(b *testing.B) {
		i := 0
		for b.Loop() {
			s.nextHopTraffic(t0, dests[i%len(dests)], wire.StartWatermark)
			i++
		}
	})
	b.Run("bootstrap-literal", func(b *testing.B) {
		i := 0
		for b.Loop() {
			s.nextHopSNEK(t0, dests[i%len(dests)], true, wire.StartWatermark)
			i++
		}
	})
	routes := routesOf(s)
	b.Run("bootstrap-indexed", func(b *testing.B) {
		i := 0
		for b.Loop() {
			s.nextHopBootstrap(t0, dests[i%len(dests)], wire.StartWatermark, routes)
			i++
		}
	})
}

// TestBootstrapSearchMatchesLiteral checks on random snapshots that the
// indexed bootstrap search picks exactly the next hop and watermark of the
// literal algorithm of §5.3 in bootstrap mode, with the routes walked in
// random order.
func TestBootstrapSearchMatchesLiteral(t *testing.T) {
	kinds := checkSearchMatchesLiteral(t, rand.New(rand.NewPCG(5, 6)), true,
		func(rng *rand.Rand, s *Snapshot, dest *wire.PublicKey) {
			switch rng.IntN(4) {
			case 0:
				dest[31] = byte(rng.IntN(2))
			case 1:
				*dest = s.key // our own bootstrap
			}
		},
		func(s *Snapshot, now time.Time, dest wire.PublicKey, w wire.Watermark) (Port, wire.Watermark) {
			return s.nextHopBootstrap(now, dest, w, routesOf(s))
		})
	if len(kinds) < 4 {
		t.Fatalf("next hops by port %v: the cases do not exercise the search", kinds)
	}
	t.Logf("next hops by port (0 = local, 9 = higher, %d = none): %v", NoPort, kinds)
}

// checkSearchMatchesLiteral runs one indexed search against the literal
// walk (nextHopSNEK in the given mode) on random snapshots, with the
// literal walk's routes shuffled so that its result cannot depend on
// their order. adjust varies each case's destination (its first byte is
// random already), so that each search meets the edge cases it has. It
// fails the test on the first case where the two disagree, and returns
// how many cases ended at each next hop (ports above 8 counted as 9).
func checkSearchMatchesLiteral(t *testing.T, rng *rand.Rand, bootstrap bool,
	adjust func(rng *rand.Rand, s *Snapshot, dest *wire.PublicKey),
	indexed func(s *Snapshot, now time.Time, dest wire.PublicKey, w wire.Watermark) (Port, wire.Watermark),
) map[Port]int {
	t.Helper()
	now := t0
	n := 200_000
	if testing.Short() {
		n = 20_000
	}
	kinds := map[Port]int{}
	for i := 0; i < n; i++ {
		s := randomSnapshot(rng, now)
		dest := wire.PublicKey{byte(rng.IntN(9)) << 4}
		adjust(rng, s, &dest)
		w := wire.StartWatermark
		if rng.IntN(2) == 0 {
			w = wire.Watermark{Key: wire.PublicKey{byte(1+rng.IntN(7)) << 4}, Seq: uint64(rng.IntN(4))}
		}
		gotPort, gotWM := indexed(s, now, dest, w)
		lit := *s
		lit.entries = append([]*snekEntry(nil), s.entries...)
		rng.Shuffle(len(lit.entries), func(i, j int) { lit.entries[i], lit.entries[j] = lit.entries[j], lit.entries[i] })
		wantPort, wantWM := lit.nextHopSNEK(now, dest, bootstrap, w)
		if gotPort != wantPort || gotWM != wantWM {
			t.Fatalf("case %d: indexed search gives %v %x/%d, literal %v %x/%d\nown %x root %x parent %v dest %x wm %x/%d",
				i, gotPort, gotWM.Key[:1], gotWM.Seq, wantPort, wantWM.Key[:1], wantWM.Seq, s.key[:1], s.root.Key[:1], s.parent, dest[:1], w.Key[:1], w.Seq)
		}
		kinds[min(gotPort, 9)]++
	}
	t.Logf("%d cases", n)
	return kinds
}

// routesOf gives a snapshot's sorted entries as Router routes sharing
// their versions.
func routesOf(s *Snapshot) []*snekEntry {
	out := make([]*snekEntry, len(s.entries))
	for i, e := range s.entries {
		out[i] = &snekEntry{origin: e.origin, source: e.source}
		out[i].ver.Store(e.ver.Load())
	}
	return out
}

func (s *Snapshot) sortEntries() {
	slices.SortFunc(s.entries, func(a, b *snekEntry) int { return a.origin.Compare(b.origin) })
}

// testEntry is a snapshot route with its own version.
func testEntry(origin wire.PublicKey, seq uint64, source Port, expires time.Time) *snekEntry {
	e := &snekEntry{origin: origin, source: source}
	e.ver.Store(&routeVersion{seq: seq, expires: expires})
	return e
}
