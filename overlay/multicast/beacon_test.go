package multicast

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/netip"
	"regexp"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pineconed/pineconed/internal/testhelp"
	"github.com/pineconed/pineconed/overlay"
	"github.com/pineconed/pineconed/overlay/router"
	"github.com/pineconed/pineconed/overlay/wire"
)

// Key B sorts below key A (docs/protocol.md §12), so B dials A at once and A waits.
var keyA, keyB = wire.PublicKeyOf(testhelp.SeedKey(1)), wire.PublicKeyOf(testhelp.SeedKey(2))

type handled struct {
	info overlay.PeerInfo
	pin  wire.PublicKey
}

// fakePeerer records Handle calls; each blocks until release is closed,
// as a running peering would.
type fakePeerer struct {
	mu        sync.Mutex
	calls     []handled
	connected map[string]bool
	release   chan struct{}
}

func newFakePeerer() *fakePeerer {
	return &fakePeerer{connected: map[string]bool{}, release: make(chan struct{})}
}

func (p *fakePeerer) Handle(ctx context.Context, nc net.Conn, info overlay.PeerInfo, pin wire.PublicKey) error {
	p.mu.Lock()
	p.calls = append(p.calls, handled{info, pin})
	p.mu.Unlock()
	defer nc.Close()
	select {
	case <-p.release:
	case <-ctx.Done():
	}
	return errors.New("ended")
}

func (p *fakePeerer) HandleAccepted(ctx context.Context, nc net.Conn, info overlay.PeerInfo, handshook func()) error {
	handshook()
	return p.Handle(ctx, nc, info, wire.PublicKey{})
}

func (p *fakePeerer) Connected(key wire.PublicKey, iface string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.connected[key.String()+"|"+iface]
}

// PeerTimeout is the default: these tests never make a TCP connection.
func (p *fakePeerer) PeerTimeout() time.Duration { return 0 }

func (p *fakePeerer) handled() []handled {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]handled(nil), p.calls...)
}

type dialed struct {
	local, remote netip.AddrPort
	zone          string
}

// testDiscovery is a Discovery without sockets, with one interface "eth9"
// (index 7, fe80::1) in use, whose dials are recorded and handed a pipe.
func testDiscovery(t *testing.T, key wire.PublicKey) (*Discovery, *fakePeerer, func() []dialed) {
	t.Helper()
	p := newFakePeerer()
	d := newDiscovery(Config{Key: key, Interfaces: []*regexp.Regexp{regexp.MustCompile(`^eth9$`)}}, p)
	d.ifaces["eth9"] = &iface{
		ifi: net.Interface{Index: 7, Name: "eth9"},
		ll:  netip.MustParseAddr("fe80::1"),
	}
	var mu sync.Mutex
	var calls []dialed
	d.dial = func(_ context.Context, local, remote netip.AddrPort, zone string) (net.Conn, error) {
		mu.Lock()
		calls = append(calls, dialed{local, remote, zone})
		mu.Unlock()
		a, b := net.Pipe()
		b.Close()
		return a, nil
	}
	t.Cleanup(func() {
		close(p.release)
		d.Close()
	})
	return d, p, func() []dialed {
		mu.Lock()
		defer mu.Unlock()
		return append([]dialed(nil), calls...)
	}
}

var peerSrc = netip.MustParseAddrPort("[fe80::2]:60606")

// Short, long, empty and port-0 datagrams are ignored and counted, and the
// next valid beacon on the same interface is still acted on (the reference
// stops listening on an interface after a short one).
func TestGarbageBeaconsIgnored(t *testing.T) {
	d, p, dials := testDiscovery(t, keyB)
	valid := wire.AppendBeacon(nil, keyA, 4242)
	garbage := [][]byte{
		nil,
		{1},
		valid[:33],
		append(bytes.Clone(valid), 0),
		bytes.Repeat([]byte{0xff}, 1500),
		wire.AppendBeacon(nil, keyA, 0),
	}
	for _, g := range garbage {
		d.handleBeacon(7, peerSrc, g)
	}
	if n := d.Stats().Ignored["malformed"]; n != uint64(len(garbage)) {
		t.Fatalf("ignored as malformed: %d, want %d", n, len(garbage))
	}
	if len(dials()) != 0 {
		t.Fatal("dialled on garbage")
	}
	d.handleBeacon(7, peerSrc, valid)
	testhelp.WaitFor(t, "the dial", 2*time.Second, func() bool { return len(p.handled()) == 1 })
	want := dialed{
		local:  netip.MustParseAddrPort("[fe80::1%eth9]:0"),
		remote: netip.MustParseAddrPort("[fe80::2%eth9]:4242"),
		zone:   "eth9",
	}
	if got := dials(); len(got) != 1 || got[0] != want {
		t.Fatalf("dials %+v, want %+v", got, want)
	}
	h := p.handled()[0]
	wantInfo := overlay.PeerInfo{URI: "tcp://[fe80::2%eth9]:4242", Transport: "tcp", Origin: overlay.OriginLAN, Interface: "eth9", Type: router.PeerMulticast}
	if h.info != wantInfo || h.pin != keyA {
		t.Fatalf("handled %+v pin %s", h.info, h.pin)
	}
}

func TestOwnBeaconIgnored(t *testing.T) {
	d, _, dials := testDiscovery(t, keyB)
	d.handleBeacon(7, netip.MustParseAddrPort("[fe80::1]:60606"), wire.AppendBeacon(nil, keyB, 4242))
	if d.Stats().Ignored["own"] != 1 || len(dials()) != 0 {
		t.Fatalf("own beacon not ignored: %+v", d.Stats())
	}
}

// While a peering with a key is up in a zone (ours or one the manager
// knows), its beacons there are ignored; beacons on interfaces we do not
// use and from unusable sources are ignored too.
func TestBeaconsWhileConnected(t *testing.T) {
	d, p, dials := testDiscovery(t, keyB)
	b := wire.AppendBeacon(nil, keyA, 4242)
	d.handleBeacon(7, peerSrc, b)
	testhelp.WaitFor(t, "the dial", 2*time.Second, func() bool { return len(p.handled()) == 1 })
	d.handleBeacon(7, peerSrc, b)
	d.handleBeacon(7, peerSrc, b)
	if n := d.Stats().Ignored["connected"]; n != 2 || len(dials()) != 1 {
		t.Fatalf("ignored %d, dials %d", n, len(dials()))
	}

	c := wire.AppendBeacon(nil, wire.PublicKeyOf(testhelp.SeedKey(3)), 5000)
	p.mu.Lock()
	p.connected[wire.PublicKeyOf(testhelp.SeedKey(3)).String()+"|eth9"] = true
	p.mu.Unlock()
	d.handleBeacon(7, peerSrc, c)
	d.handleBeacon(8, peerSrc, c)                                    // not our interface
	d.handleBeacon(7, netip.MustParseAddrPort("[::]:60606"), c)      // unspecified source
	d.handleBeacon(7, netip.MustParseAddrPort("[ff02::1]:60606"), c) // multicast source
	d.handleBeacon(7, netip.MustParseAddrPort("127.0.0.1:60606"), c) // loopback source
	st := d.Stats()
	if st.Ignored["connected"] != 3 || st.Ignored["interface"] != 1 || st.Ignored["source"] != 3 || len(dials()) != 1 {
		t.Fatalf("stats %+v, dials %d", st, len(dials()))
	}
}

// The node with the higher key lets the lower one dial first, and dials
// itself only once the grace period has passed without a peering.
func TestHigherKeyWaitsForGrace(t *testing.T) {
	d, p, dials := testDiscovery(t, keyA)
	now := time.Unix(1000, 0)
	d.now = func() time.Time { return now }
	b := wire.AppendBeacon(nil, keyB, 4242)
	d.handleBeacon(7, peerSrc, b)
	now = now.Add(d.cfg.DialGrace / 2)
	d.handleBeacon(7, peerSrc, b)
	if d.Stats().Ignored["waiting"] != 2 || len(dials()) != 0 {
		t.Fatalf("dialled the lower key within the grace period: %+v", d.Stats())
	}
	now = now.Add(d.cfg.DialGrace)
	d.handleBeacon(7, peerSrc, b)
	testhelp.WaitFor(t, "the dial after the grace period", 2*time.Second, func() bool { return len(p.handled()) == 1 })
}

// IPv4 beacons dial from the interface's IPv4 address, with no zone.
func TestIPv4Beacon(t *testing.T) {
	d, p, dials := testDiscovery(t, keyB)
	d.mu.Lock()
	d.ifaces["eth9"].v4 = netip.MustParseAddr("192.0.2.1")
	d.mu.Unlock()
	d.handleBeacon(7, netip.MustParseAddrPort("192.0.2.7:60606"), wire.AppendBeacon(nil, keyA, 4242))
	testhelp.WaitFor(t, "the dial", 2*time.Second, func() bool { return len(p.handled()) == 1 })
	want := dialed{netip.MustParseAddrPort("192.0.2.1:0"), netip.MustParseAddrPort("192.0.2.7:4242"), "eth9"}
	if got := dials(); got[0] != want {
		t.Fatalf("dial %+v, want %+v", got[0], want)
	}
	if z := p.handled()[0].info.Interface; z != "eth9" {
		t.Fatalf("zone %q", z)
	}
}

func TestUsableInterfaces(t *testing.T) {
	d := newDiscovery(Config{
		Interfaces: []*regexp.Regexp{regexp.MustCompile(`^(eth.*|wl.*)$`)},
		Exclude:    []string{"eth-tun"},
	}, newFakePeerer())
	ok := net.FlagUp | net.FlagMulticast
	for _, c := range []struct {
		ifi  net.Interface
		want bool
	}{
		{net.Interface{Name: "eth0", Flags: ok}, true},
		{net.Interface{Name: "wlan0", Flags: ok | net.FlagBroadcast}, true},
		{net.Interface{Name: "docker0", Flags: ok}, false},
		{net.Interface{Name: "eth-tun", Flags: ok}, false},
		{net.Interface{Name: "eth1", Flags: net.FlagMulticast}, false},
		{net.Interface{Name: "eth2", Flags: net.FlagUp}, false},
		{net.Interface{Name: "eth3", Flags: ok | net.FlagLoopback}, false},
		{net.Interface{Name: "eth4", Flags: ok | net.FlagPointToPoint}, false},
	} {
		if got := d.usable(c.ifi); got != c.want {
			t.Errorf("%s: usable = %v", c.ifi.Name, got)
		}
	}
}

// A neighbour we cannot peer with (it refuses us, say at max_peers) is
// re-dialled with back-off, as static peers are, not at every beacon.
func TestRefusingNeighbourBackedOff(t *testing.T) {
	d, _, _ := testDiscovery(t, keyB)
	var mu sync.Mutex
	now := time.Unix(1000, 0)
	d.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(dt time.Duration) { mu.Lock(); now = now.Add(dt); mu.Unlock() }
	var dials atomic.Int64
	d.dial = func(context.Context, netip.AddrPort, netip.AddrPort, string) (net.Conn, error) {
		dials.Add(1)
		return nil, errors.New("connection refused")
	}
	b := wire.AppendBeacon(nil, keyA, 4242)
	beacon := func() {
		d.handleBeacon(7, peerSrc, b)
		// Wait for the attempt, if one started, to be over.
		testhelp.WaitFor(t, "no dial in flight", 2*time.Second, func() bool {
			d.mu.Lock()
			defer d.mu.Unlock()
			return len(d.pending) == 0
		})
	}
	// One beacon a second for a minute: the waits double from 1 s up to
	// a minute, so a handful of dials, not sixty.
	for range 60 {
		beacon()
		advance(time.Second)
	}
	if n := dials.Load(); n < 3 || n > 8 {
		t.Fatalf("%d dials in 60 s of beacons from a neighbour that refuses us, want a back-off (3..8)", n)
	}
	if d.Stats().Ignored["backoff"] == 0 {
		t.Fatal("beacons during the back-off not counted as ignored")
	}
	// Past the longest wait, the next beacon dials again.
	advance(2 * time.Minute)
	before := dials.Load()
	beacon()
	if dials.Load() != before+1 {
		t.Fatal("no dial once the back-off was over")
	}
}
