package session

import (
	"bytes"
	"encoding/binary"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pineconed/pineconed/envelope"
	"github.com/pineconed/pineconed/internal/bufpool"
	"github.com/pineconed/pineconed/internal/testhelp"
	"github.com/pineconed/pineconed/overlay/wire"
)

// TestConcurrentSendAndReceive runs Send from two goroutines per node while
// another goroutine per node feeds HandlePayload and a third ticks, the way
// the daemon will. Run with -race; it checks delivery and that every
// goroutine it started has stopped.
func TestConcurrentSendAndReceive(t *testing.T) {
	type qnode struct {
		key   wire.PublicKey
		m     *Manager
		inbox chan msg
		got   atomic.Uint64
	}
	var dropped atomic.Uint64
	nodes := map[wire.PublicKey]*qnode{}
	mk := func(seed byte) *qnode {
		priv := testhelp.SeedKey(seed)
		n := &qnode{key: wire.PublicKeyOf(priv), inbox: make(chan msg, 1024)}
		nodes[n.key] = n
		return n
	}
	a, b := mk(1), mk(2)
	for _, n := range []*qnode{a, b} {
		var err error
		n.m, err = NewManager(testhelp.SeedKey(map[*qnode]byte{a: 1, b: 2}[n]), Config{RekeyAfterMessages: 500}, funcs{
			send: func(dst wire.PublicKey, p []byte) {
				select {
				case nodes[dst].inbox <- msg{n.key, dst, p}:
				default:
					dropped.Add(1) // bounded "overlay": drop when full
				}
			},
			deliver: func(src wire.PublicKey, p []byte) { n.got.Add(1) },
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, n := range []*qnode{a, b} {
		wg.Add(2)
		go func() { // overlay receive goroutine
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				case m := <-n.inbox:
					_ = n.m.HandlePayload(time.Now(), m.src, m.payload)
				}
			}
		}()
		go func() { // timer goroutine
			defer wg.Done()
			tk := time.NewTicker(5 * time.Millisecond)
			defer tk.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tk.C:
					n.m.Tick(time.Now())
				}
			}
		}()
	}
	// Open the sessions first, so the burst measures the data path rather
	// than the handshake queue.
	for _, pair := range [][2]*qnode{{a, b}, {b, a}} {
		pair[0].m.SendEcho(time.Now(), pair[1].key, 0, nil)
		testhelp.WaitFor(t, "an established session", 5*time.Second, func() bool {
			si := pair[0].m.Sessions(time.Now())
			return len(si) == 1 && si[0].State == "established"
		})
	}
	var senders sync.WaitGroup
	for _, pair := range [][2]*qnode{{a, b}, {a, b}, {b, a}, {b, a}} {
		senders.Add(1)
		go func() { // TUN reader goroutines
			defer senders.Done()
			for i := range 3000 {
				pair[0].m.Send(time.Now(), pair[1].key, packet(pair[0].key, pair[1].key, uint32(i)))
				if i%100 == 0 {
					_ = pair[0].m.Sessions(time.Now())
					_ = pair[0].m.Stats()
				}
			}
		}()
	}
	senders.Wait()
	testhelp.WaitFor(t, "the overlay's queues to drain", 20*time.Second, func() bool {
		return len(a.inbox) == 0 && len(b.inbox) == 0
	})
	close(stop)
	wg.Wait()
	if a.got.Load() == 0 || b.got.Load() == 0 {
		t.Fatalf("nothing delivered: a %d b %d (overlay drops %d)", a.got.Load(), b.got.Load(), dropped.Load())
	}
	as, bs := a.m.Stats(), b.m.Stats()
	if as.Counts[HandshakesCompleted]+bs.Counts[HandshakesCompleted] < 2 || as.Counts[DecryptFailures]+bs.Counts[DecryptFailures] != 0 {
		t.Fatalf("a stats %+v\nb stats %+v", as, bs)
	}
	t.Logf("delivered a %d b %d of 6000 each way, overlay drops %d", a.got.Load(), b.got.Load(), dropped.Load())
}

func FuzzHandlePayload(f *testing.F) {
	// Seed with one real message of every kind.
	ft := &testing.T{}
	fb := newFabric(ft)
	a, b := fb.add(1, Config{}), fb.add(2, Config{})
	a.m.Send(t0, b.key, packet(a.key, b.key, 1))
	init := fb.take()[0]
	f.Add(bytes.Clone(init.payload), true)
	fb.deliver(t0, init)
	resp := fb.take()[0]
	f.Add(bytes.Clone(resp.payload), false)
	fb.deliver(t0, resp)
	for _, m := range fb.take() {
		f.Add(bytes.Clone(m.payload), true)
	}
	f.Add([]byte("pineping"), true)
	f.Add(envelope.AppendHeader(nil, envelope.TypeTransport), true)

	f.Fuzz(func(t *testing.T, payload []byte, toB bool) {
		fab := newFabric(t)
		a, b := fab.add(1, Config{}), fab.add(2, Config{})
		establish(t, fab, t0, a, b)
		dst, src := b, a
		if !toB {
			dst, src = a, b
		}
		before := dst.m.Stats()
		err := dst.m.HandlePayload(t0, src.key, bytes.Clone(payload))
		fab.run(t0)
		after := dst.m.Stats()
		if len(dst.got) != 0 {
			t.Fatal("fuzzed payload delivered a packet")
		}
		if err != nil {
			drops := func(s Stats) uint64 {
				return s.Counts[Malformed] + s.Counts[DecryptFailures] + s.Counts[UnknownIndex] + s.Counts[BadHandshake] + s.Counts[WrongStatic] +
					s.Counts[ReplayedInits] + s.Counts[Replays] + s.Counts[TooOld] + s.Counts[Expired] + s.Counts[BadInner] + s.Counts[BadSource] + s.Counts[DropBadKey] + s.Counts[DropTooManyPeer]
			}
			if drops(after) <= drops(before) {
				t.Fatalf("error %v not counted", err)
			}
		}
		// The session survives whatever came in.
		src.m.Send(t0, dst.key, packet(src.key, dst.key, 77))
		fab.run(t0)
		if len(dst.got) != 1 || binary.BigEndian.Uint32(packet(src.key, dst.key, 77)[40:]) != dst.got[0] {
			t.Fatalf("session broken after fuzz input: %v", dst.got)
		}
	})
}

func benchKeypairs(b *testing.B) (*keypair, *keypair) {
	t := &testing.T{}
	f := newFabric(t)
	x, y := f.add(1, Config{}), f.add(2, Config{})
	establish(t, f, t0, x, y)
	x.m.Send(t0, y.key, packet(x.key, y.key, 0))
	f.run(t0)
	px, py := x.m.peers[y.key], y.m.peers[x.key]
	if px == nil || py == nil || px.cur == nil || py.cur == nil {
		b.Fatal("no session")
	}
	return px.cur, py.cur
}

func benchSealOpen(b *testing.B, size int, open bool) {
	s, r := benchKeypairs(b)
	data := make([]byte, size)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	if !open {
		for i := 0; b.Loop(); i++ {
			_ = s.seal(nil, uint64(i), envelope.InnerIPv6, data, nil)
		}
		return
	}
	msgs := make([][]byte, 64)
	for i := range msgs {
		msgs[i] = s.seal(nil, uint64(i), envelope.InnerIPv6, data, nil)
	}
	scratch := make([]byte, len(msgs[0]))
	for i := 0; b.Loop(); i++ {
		m := msgs[i%len(msgs)]
		copy(scratch, m) // open decrypts in place
		tr, err := envelope.ParseTransport(scratch)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := r.open(tr.Counter, tr.Ciphertext, scratch[:envelope.TransportHeaderSize]); err != nil {
			b.Fatal(err)
		}
	}
}

// benchRawAEAD is the baseline: chacha20poly1305 sealing in place with no
// framing, no allocation and no counter handling. Compare Seal/Open to it.
func benchRawAEAD(b *testing.B, size int) {
	s, _ := benchKeypairs(b)
	buf := make([]byte, size+envelope.TagSize)
	var nonce [12]byte
	b.SetBytes(int64(size))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		binary.LittleEndian.PutUint64(nonce[4:], uint64(i))
		s.send.Seal(buf[:0], nonce[:], buf[:size], nil)
	}
}

func BenchmarkBaselineAEAD1400(b *testing.B) { benchRawAEAD(b, 1400) }
func BenchmarkBaselineAEAD64K(b *testing.B)  { benchRawAEAD(b, 64*1024) }

func BenchmarkSeal1400(b *testing.B) { benchSealOpen(b, 1400, false) }
func BenchmarkOpen1400(b *testing.B) { benchSealOpen(b, 1400, true) }
func BenchmarkSeal64K(b *testing.B)  { benchSealOpen(b, 64*1024, false) }
func BenchmarkOpen64K(b *testing.B)  { benchSealOpen(b, 64*1024, true) }

// BenchmarkSealPooled64K seals 64 KiB packets into bufpool buffers, as the
// Manager does for every transport message, and reports the rate as a ratio to the
// raw AEAD sealing the same bytes in place, measured in the same run.
func BenchmarkSealPooled64K(b *testing.B) {
	const size = 64*1024 - 64
	s, _ := benchKeypairs(b)
	data := make([]byte, size)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	start := time.Now()
	n := 0
	for i := 0; b.Loop(); i++ {
		buf := bufpool.Get()
		off := bufpool.Headroom(buf)
		msg := s.seal(buf[off:off], uint64(i), envelope.InnerIPv6, data, nil)
		bufpool.Put(buf[:off+len(msg)])
		n++
	}
	el := time.Since(start)
	b.StopTimer()
	raw := make([]byte, size+envelope.TagSize)
	var nonce [12]byte
	rawStart := time.Now()
	for i := range n {
		binary.LittleEndian.PutUint64(nonce[4:], uint64(i))
		s.send.Seal(raw[:0], nonce[:], raw[:size], nil)
	}
	b.ReportMetric(time.Since(rawStart).Seconds()/el.Seconds(), "ratio_to_raw_aead")
}
