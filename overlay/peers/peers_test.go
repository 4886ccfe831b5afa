package peers

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pineconed/pineconed/internal/testhelp"
	"github.com/pineconed/pineconed/internal/testhelp/testframe"
	"github.com/pineconed/pineconed/overlay"
	"github.com/pineconed/pineconed/overlay/link"
	"github.com/pineconed/pineconed/overlay/router"
	"github.com/pineconed/pineconed/overlay/wire"
)

// exchange checks that two fake nodes peered with each other got each
// other's greeting and can send traffic both ways.
func exchange(t *testing.T, na, nb *fakeNode, ka, kb wire.PublicKey) {
	t.Helper()
	var pa, pb router.Port
	testhelp.WaitFor(t, "both attached", 5*time.Second, func() bool {
		var ok1, ok2 bool
		pa, ok1 = na.portFor(kb)
		pb, ok2 = nb.portFor(ka)
		return ok1 && ok2
	})
	fa, fb := testframe.Of(wire.TypeTraffic, 500, 0xa), testframe.Of(wire.TypeTraffic, 70000%65535, 0xb)
	if !na.send(pa, fa) || !nb.send(pb, fb) {
		t.Fatal("send refused")
	}
	testhelp.WaitFor(t, "frames both ways", 5*time.Second, func() bool {
		return len(na.got(pa)) == 2 && len(nb.got(pb)) == 2
	})
	for _, c := range []struct {
		got  [][]byte
		want []byte
	}{{nb.got(pb), fa}, {na.got(pa), fb}} {
		if !bytes.Equal(c.got[0], greeting) || !bytes.Equal(c.got[1], c.want) {
			t.Fatal("frames differ")
		}
	}
}

func TestPeeringTransports(t *testing.T) {
	srvTLS, cliTLS := selfSigned(t)
	cases := []struct {
		listen string
		static func(addr string) string
	}{
		{"tcp://127.0.0.1:0", func(a string) string { return "tcp://" + a }},
		{"tcp://[::1]:0", func(a string) string { return a }}, // bare host:port is TCP
		{"ws://127.0.0.1:0/pinecone", func(a string) string { return "ws://" + a + "/pinecone" }},
		{"wss://127.0.0.1:0/p", func(a string) string { return "wss://" + a + "/p" }},
	}
	for _, tc := range cases {
		t.Run(tc.listen, func(t *testing.T) {
			testhelp.CheckNoLeak(t)
			ma, na := newManager(t, Config{Listen: mkURIs(tc.listen), TLS: srvTLS}, privA)
			addr := ma.ListenAddrs()[0].String()
			uri := tc.static(addr) + "?key=" + keyA.String()
			_, nb := newManager(t, Config{Static: mkURIs(uri), TLS: cliTLS}, privB)
			exchange(t, na, nb, keyA, keyB)

			pa, _ := na.portFor(keyB)
			pb, _ := nb.portFor(keyA)
			ia, ib := na.info(pa), nb.info(pb)
			scheme := strings.SplitN(tc.listen, ":", 2)[0]
			if !ia.Inbound || ia.Origin != overlay.OriginListener || ia.Transport != scheme || ia.Type != router.PeerRemote ||
				!strings.HasPrefix(ia.URI, scheme+"://") {
				t.Fatalf("listener side info %+v", ia)
			}
			if ib.Inbound || ib.Origin != overlay.OriginStatic || ib.Transport != scheme || !strings.HasSuffix(ib.URI, "?key="+keyA.String()) {
				t.Fatalf("dialler side info %+v", ib)
			}
		})
	}
}

// Several listeners of each kind in one manager, all reachable.
func TestSeveralListeners(t *testing.T) {
	testhelp.CheckNoLeak(t)
	ma, na := newManager(t, Config{Listen: mkURIs(
		"tcp://127.0.0.1:0", "tcp://[::1]:0", "ws://127.0.0.1:0/a", "ws://[::1]:0/b",
	)}, privA)
	addrs := ma.ListenAddrs()
	if len(addrs) != 4 {
		t.Fatalf("%d listeners", len(addrs))
	}
	statics := mkURIs(
		"tcp://"+addrs[0].String(), "tcp://"+addrs[1].String(),
		"ws://"+addrs[2].String()+"/a", "ws://"+addrs[3].String()+"/b",
	)
	_, nb := newManager(t, Config{Static: statics}, privB)
	testhelp.WaitFor(t, "four peerings", 5*time.Second, func() bool { return na.live() == 4 && nb.live() == 4 })
	peers := nb.Peerings()
	for _, p := range peers {
		if p.Info.Key != keyA {
			t.Fatalf("peer %+v is not A", p.Info)
		}
	}
	if len(peers) != 4 || peers[0].Port != 1 || peers[3].Port != 4 {
		t.Fatalf("peers: %+v", peers)
	}
	// Every link carries frames both ways: the greeting each fake node
	// queues in Attach arrives at the other, once. A peering is live once
	// both ends attached, while a greeting may still be on the wire, so
	// wait for them rather than race them.
	testhelp.WaitFor(t, "the greeting each way on every link", 5*time.Second, func() bool {
		for p := router.Port(1); p <= 4; p++ {
			if len(na.got(p)) == 0 || len(nb.got(p)) == 0 {
				return false
			}
		}
		return true
	})
	for p := router.Port(1); p <= 4; p++ {
		for name, n := range map[string]*fakeNode{"A": na, "B": nb} {
			if got := n.got(p); len(got) != 1 || !bytes.Equal(got[0], greeting) {
				t.Fatalf("%s received %d frames on port %d, want the one greeting", name, len(got), p)
			}
		}
	}
}

func TestPinnedKeyMismatch(t *testing.T) {
	testhelp.CheckNoLeak(t)
	log, buf := testhelp.NewLogger(t)
	ma, na := newManager(t, Config{Listen: mkURIs("tcp://127.0.0.1:0")}, privA)
	uri := "tcp://" + ma.ListenAddrs()[0].String() + "?key=" + keyC.String()
	mb, nb := newManager(t, Config{Static: mkURIs(uri), Logger: log,
		Backoff: Backoff{Min: 20 * time.Millisecond, Max: 50 * time.Millisecond}}, privB)
	testhelp.WaitFor(t, "the refusal to be logged twice", 5*time.Second, func() bool { return len(buf.Lines("key mismatch")) >= 2 })
	if nb.attachCount() != 0 {
		t.Fatal("B attached a peer with the wrong key")
	}
	line := buf.Lines("key mismatch")[0]
	if !strings.Contains(line, "peer="+keyA.String()) || !strings.Contains(line, "want="+keyC.String()) {
		t.Fatalf("log line does not name both keys: %s", line)
	}
	st := mb.List()
	if len(st) != 1 || !strings.Contains(st[0].LastError, ErrKeyMismatch.Error()) || st[0].Failures < 1 {
		t.Fatalf("status %+v", st)
	}
	// A saw B complete a handshake and then hang up; whatever it did with
	// that is its business, but it must not be left attached.
	testhelp.WaitFor(t, "A to let go of B", 5*time.Second, func() bool { return na.live() == 0 })
}

// The remote listener goes away and comes back on the same port: the
// static peer retries with growing, logged back-off and reconnects.
func TestReconnectAfterListenerRestart(t *testing.T) {
	testhelp.CheckNoLeak(t)
	log, buf := testhelp.NewLogger(t)
	ma, _ := newManager(t, Config{Listen: mkURIs("tcp://127.0.0.1:0")}, privA)
	addr := ma.ListenAddrs()[0].String()
	mb, nb := newManager(t, Config{Static: mkURIs(addr), Logger: log,
		Backoff: Backoff{Min: 40 * time.Millisecond, Max: 320 * time.Millisecond}}, privB)
	testhelp.WaitFor(t, "first peering", 5*time.Second, func() bool { return nb.live() == 1 })
	if st := mb.List(); st[0].State != StateConnected || st[0].Key != keyA || st[0].Port != 1 {
		t.Fatalf("status %+v", st)
	}

	ma.Close()
	testhelp.WaitFor(t, "B to notice", 5*time.Second, func() bool { return nb.live() == 0 })
	testhelp.WaitFor(t, "five failed attempts", 10*time.Second, func() bool { return len(buf.Lines("msg=reconnecting")) >= 6 })
	if st := mb.List(); st[0].State != StateBackoff || st[0].NextAttempt.IsZero() || st[0].LastError == "" {
		t.Fatalf("status while A is down: %+v", st)
	}

	ma2, na2 := newManager(t, Config{Listen: mkURIs("tcp://" + addr)}, privA)
	_ = ma2
	exchange(t, na2, nb, keyA, keyB)

	var delays []time.Duration
	for _, l := range buf.Lines("msg=reconnecting") {
		i := strings.Index(l, "delay=")
		d, err := time.ParseDuration(strings.Fields(l[i+len("delay="):])[0])
		if err != nil {
			t.Fatalf("bad delay in %q: %v", l, err)
		}
		delays = append(delays, d)
	}
	t.Logf("back-off delays: %v", delays)
	// The first line is the disconnect; after it the delays double (with
	// jitter in [step/2, step]) up to the 320ms cap.
	for i, d := range delays {
		step := min(40*time.Millisecond<<i, 320*time.Millisecond)
		if d < step/2 || d > step {
			t.Fatalf("delay %d is %v, want within [%v, %v]", i, d, step/2, step)
		}
	}
}

func TestAllowedKeys(t *testing.T) {
	testhelp.CheckNoLeak(t)
	log, buf := testhelp.NewLogger(t)
	ma, na := newManager(t, Config{Listen: mkURIs("tcp://127.0.0.1:0"), AllowedKeys: []wire.PublicKey{keyC}, Logger: log}, privA)
	addr := ma.ListenAddrs()[0].String()
	fast := Backoff{Min: 20 * time.Millisecond, Max: 40 * time.Millisecond}
	newManager(t, Config{Static: mkURIs(addr), Backoff: fast}, privB)
	testhelp.WaitFor(t, "B refused", 5*time.Second, func() bool { return len(buf.Lines(ErrNotAllowed.Error())) >= 1 })
	if !strings.Contains(buf.Lines(ErrNotAllowed.Error())[0], "peer="+keyB.String()) {
		t.Fatal("refusal does not name the key")
	}
	newManager(t, Config{Static: mkURIs(addr), Backoff: fast}, privC)
	testhelp.WaitFor(t, "C accepted", 5*time.Second, func() bool { _, ok := na.portFor(keyC); return ok })
	waitRefusals(t, buf, keyB, ErrNotAllowed, 2)
	na.mu.Lock()
	defer na.mu.Unlock()
	for _, info := range na.attaches {
		if info.Key == keyB {
			t.Fatal("B got in although it is not in allowed_keys")
		}
	}
	// B's side completed its handshake and saw A hang up at once: it
	// cannot know why, so it attached, detached, and keeps retrying.
}

// Static peers are not subject to allowed_keys: they are chosen by
// configuration.
func TestAllowedKeysDoNotFilterStatic(t *testing.T) {
	testhelp.CheckNoLeak(t)
	ma, _ := newManager(t, Config{Listen: mkURIs("tcp://127.0.0.1:0")}, privA)
	_, nb := newManager(t, Config{Static: mkURIs(ma.ListenAddrs()[0].String()), AllowedKeys: []wire.PublicKey{keyC}}, privB)
	testhelp.WaitFor(t, "B peered with A", 5*time.Second, func() bool { _, ok := nb.portFor(keyA); return ok })
}

func TestSelfConnection(t *testing.T) {
	testhelp.CheckNoLeak(t)
	log, buf := testhelp.NewLogger(t)
	ma, na := newManager(t, Config{Listen: mkURIs("tcp://127.0.0.1:0"), Logger: log,
		Backoff: Backoff{Min: 20 * time.Millisecond, Max: 40 * time.Millisecond}}, privA)
	if err := ma.Add(mkURI(ma.ListenAddrs()[0].String()), overlay.OriginAdmin); err != nil {
		t.Fatal(err)
	}
	// Both ends of the loop refuse: the dialler and the listener, each
	// with one ERROR naming the remote, then at debug level.
	testhelp.WaitFor(t, "refusals", 5*time.Second, func() bool { return len(buf.Lines("our own public key")) >= 6 })
	if errs := buf.Lines("level=ERROR msg=\"refusing peer: it presents our own public key"); len(errs) != 2 || !strings.Contains(errs[0], "remote=127.0.0.1:") {
		t.Fatalf("want one ERROR naming the remote per end of the loop, got %q", errs)
	}
	if na.attachCount() != 0 {
		t.Fatal("a connection to ourselves was attached")
	}
	if st := ma.List(); !strings.Contains(st[0].LastError, ErrSelf.Error()) {
		t.Fatalf("status %+v", st)
	}
}

func TestMaxPeers(t *testing.T) {
	testhelp.CheckNoLeak(t)
	log, buf := testhelp.NewLogger(t)
	ma, na := newManager(t, Config{Listen: mkURIs("tcp://127.0.0.1:0"), MaxPeers: 1, Logger: log}, privA)
	addr := ma.ListenAddrs()[0].String()
	fast := Backoff{Min: 20 * time.Millisecond, Max: 40 * time.Millisecond}
	newManager(t, Config{Static: mkURIs(addr), Backoff: fast}, privB)
	testhelp.WaitFor(t, "B in", 5*time.Second, func() bool { return na.live() == 1 })
	newManager(t, Config{Static: mkURIs(addr), Backoff: fast}, privC)
	testhelp.WaitFor(t, "C refused", 5*time.Second, func() bool { return len(buf.Lines("max_peers reached")) >= 2 })
	if na.live() != 1 || na.attachCount() != 1 {
		t.Fatalf("%d peers live, %d attached, limit 1", na.live(), na.attachCount())
	}
	// The refusing side says why at INFO once per remote per minute; the
	// retries go to DEBUG.
	if info := buf.Lines(`level=INFO msg="refusing peer"`); len(info) != 1 || !strings.Contains(info[0], "max_peers reached") || !strings.Contains(info[0], "remote=127.0.0.1:") {
		t.Fatalf("INFO refusals %q, want one naming the remote and the reason", info)
	}
	if dbg := buf.Lines(`level=DEBUG msg="refusing peer"`); len(dbg) == 0 {
		t.Fatal("later refusals not logged at DEBUG")
	}
	if _, err := New(Config{PrivateKey: privA, MaxPeers: 254}, newFakeNode()); err == nil {
		t.Fatal("max_peers 254 accepted")
	}
}

// The node's own refusal (no free port) closes the connection and
// attaches nothing.
func TestNodeRefusesAttach(t *testing.T) {
	testhelp.CheckNoLeak(t)
	ma, na := newManager(t, Config{Listen: mkURIs("tcp://127.0.0.1:0")}, privA)
	na.mu.Lock()
	na.maxPorts = 0
	na.mu.Unlock()
	log, buf := testhelp.NewLogger(t)
	newManager(t, Config{Static: mkURIs(ma.ListenAddrs()[0].String()), Logger: log,
		Backoff: Backoff{Min: 20 * time.Millisecond, Max: 40 * time.Millisecond}}, privB)
	testhelp.WaitFor(t, "B's peering to be ended by A", 5*time.Second, func() bool { return len(buf.Lines("msg=reconnecting")) >= 2 })
	if na.attachCount() != 0 {
		t.Fatal("attached")
	}
}

func TestAddRemoveList(t *testing.T) {
	testhelp.CheckNoLeak(t)
	ma, na := newManager(t, Config{Listen: mkURIs("tcp://127.0.0.1:0", "ws://127.0.0.1:0/")}, privA)
	addrs := ma.ListenAddrs()
	mb, nb := newManager(t, Config{}, privB)
	tcpURI := addrs[0].String()
	wsURI := "ws://" + addrs[1].String()
	if err := mb.Add(mkURI(tcpURI), overlay.OriginAdmin); err != nil {
		t.Fatal(err)
	}
	if err := mb.Add(mkURI("tcp://"+tcpURI), overlay.OriginAdmin); !errors.Is(err, ErrExists) {
		t.Fatalf("the same peer added twice (bare and tcp:// are one URI): %v", err)
	}
	if err := mb.Add(mkURI(wsURI), overlay.OriginAdmin); err != nil {
		t.Fatal(err)
	}
	if err := mb.Add(mkURI("tcp://x:0"), overlay.OriginAdmin); err == nil {
		t.Fatal("a static peer on port 0 accepted")
	}
	if err := mb.Add(mkURI("tcp://x:1"), overlay.OriginListener); err == nil {
		t.Fatal("a static peer with origin listener accepted")
	}
	testhelp.WaitFor(t, "both connected", 5*time.Second, func() bool {
		l := mb.List()
		return len(l) == 2 && l[0].State == StateConnected && l[1].State == StateConnected
	})
	l := mb.List()
	if l[0].URI.String() != "tcp://"+tcpURI || l[1].URI.String() != wsURI+"/" {
		t.Fatalf("list %+v", l)
	}
	if err := mb.Remove(mkURI(tcpURI)); err != nil {
		t.Fatal(err)
	}
	testhelp.WaitFor(t, "tcp link detached", 5*time.Second, func() bool { return nb.live() == 1 && na.live() == 1 })
	if r := nb.detachReasons(); len(r) != 1 || !errors.Is(r[0], ErrRemoved) {
		t.Fatalf("detach reasons %v", r)
	}
	if l := mb.List(); len(l) != 1 || l[0].URI.String() != wsURI+"/" {
		t.Fatalf("list after remove %+v", l)
	}
	if err := mb.Remove(mkURI(tcpURI)); !errors.Is(err, ErrUnknown) {
		t.Fatalf("second remove: %v", err)
	}
	// Removed and added again: a fresh peering.
	if err := mb.Add(mkURI(tcpURI), overlay.OriginAdmin); err != nil {
		t.Fatal(err)
	}
	testhelp.WaitFor(t, "re-added peer connected", 5*time.Second, func() bool { return nb.live() == 2 })
}

// Close ends every peering (each detached once), stops the listeners and
// leaves nothing running.
func TestCloseStopsEverything(t *testing.T) {
	testhelp.CheckNoLeak(t)
	ma, na := newManager(t, Config{Listen: mkURIs("tcp://127.0.0.1:0", "ws://127.0.0.1:0/x")}, privA)
	addrs := ma.ListenAddrs()
	newManager(t, Config{Static: mkURIs(addrs[0].String(), "ws://"+addrs[1].String()+"/x")}, privB)
	testhelp.WaitFor(t, "peerings", 5*time.Second, func() bool { return na.live() == 2 })
	// An inbound connection stuck in its handshake is ended too.
	stuck, err := net.Dial("tcp", addrs[0].String())
	if err != nil {
		t.Fatal(err)
	}
	defer stuck.Close()
	if err := ma.Close(); err != nil {
		t.Fatal(err)
	}
	if na.live() != 0 || len(na.detachReasons()) != 2 {
		t.Fatalf("after Close: %d live, detaches %v", na.live(), na.detachReasons())
	}
	for _, r := range na.detachReasons() {
		if !errors.Is(r, ErrClosed) {
			t.Fatalf("detach reason %v", r)
		}
	}
	_ = stuck.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.Copy(io.Discard, stuck); err != nil {
		t.Fatalf("connection in its handshake not closed: %v", err)
	}
	for _, a := range addrs {
		if c, err := net.DialTimeout("tcp", a.String(), time.Second); err == nil {
			c.Close()
			t.Fatalf("%s still accepting", a)
		}
	}
	if err := ma.Add(mkURI("127.0.0.1:1"), overlay.OriginAdmin); !errors.Is(err, ErrClosed) {
		t.Fatalf("Add after Close: %v", err)
	}
}

// A peer that connects and never sends a hello is given up on after the
// handshake timeout, without holding up other peers.
func TestInboundHandshakeLimit(t *testing.T) {
	testhelp.CheckNoLeak(t)
	log, buf := testhelp.NewLogger(t)
	ma, na := newManager(t, Config{Listen: mkURIs("tcp://127.0.0.1:0"), MaxHandshakes: 2, Logger: log}, privA)
	addr := ma.ListenAddrs()[0].String()
	var idle []net.Conn
	for range 3 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		idle = append(idle, c)
		defer c.Close()
	}
	testhelp.WaitFor(t, "third idle connection refused", 5*time.Second, func() bool {
		return len(buf.Lines("too many handshakes")) == 1
	})
	for _, c := range idle[:2] {
		c.Close()
	}
	newManager(t, Config{Static: mkURIs(addr), Backoff: Backoff{Min: 20 * time.Millisecond}}, privB)
	testhelp.WaitFor(t, "B in once the slots are free", 5*time.Second, func() bool { return na.live() == 1 })
}

func TestBadConfig(t *testing.T) {
	for _, cfg := range []Config{
		// URI syntax is peeruri's (its own tests); what New checks is
		// what a URI value may still get wrong for its use.
		{Static: mkURIs("tcp://:1")},                               // no host to dial
		{Static: mkURIs("tcp://h:0")},                              // port 0
		{Listen: mkURIs("tcp://127.0.0.1:0?key=" + keyB.String())}, // a pin on a listener
		{Listen: mkURIs("wss://127.0.0.1:0/")},                     // no certificate
		{Listen: mkURIs("tcp://192.0.2.1:1")},                      // not our address
	} {
		cfg.PrivateKey = privA
		if m, err := New(cfg, newFakeNode()); err == nil {
			m.Close()
			t.Errorf("config %+v accepted", cfg)
		} else {
			t.Log(err)
		}
	}
	if _, err := New(Config{}, newFakeNode()); err == nil {
		t.Error("no private key accepted")
	}
}

var _ Switch = (*fakeNode)(nil)
var _ link.Receiver = Switch(nil)

// allowed_keys and max_peers change at run time: a key taken off the list
// loses its peering, one put on it gets in, and a raised bound lets a
// refused peer in.
func TestReloadPolicy(t *testing.T) {
	testhelp.CheckNoLeak(t)
	log, buf := testhelp.NewLogger(t)
	ma, na := newManager(t, Config{Listen: mkURIs("tcp://127.0.0.1:0"), MaxPeers: 1, Logger: log}, privA)
	addr := ma.ListenAddrs()[0].String()
	fast := Backoff{Min: 20 * time.Millisecond, Max: 40 * time.Millisecond}
	newManager(t, Config{Static: mkURIs(addr), Backoff: fast}, privB)
	testhelp.WaitFor(t, "B in", 5*time.Second, func() bool { _, ok := na.portFor(keyB); return ok })
	newManager(t, Config{Static: mkURIs(addr), Backoff: fast}, privC)
	waitRefusals(t, buf, keyC, ErrTooManyPeers, 2)
	if _, ok := na.portFor(keyC); ok {
		t.Fatal("C in above max_peers 1")
	}
	if err := ma.SetMaxPeers(254); err == nil {
		t.Fatal("max_peers 254 accepted")
	}
	if err := ma.SetMaxPeers(2); err != nil {
		t.Fatal(err)
	}
	testhelp.WaitFor(t, "C in after max_peers was raised", 5*time.Second, func() bool { _, ok := na.portFor(keyC); return ok })

	ma.SetAllowedKeys([]wire.PublicKey{keyC})
	testhelp.WaitFor(t, "B dropped", 5*time.Second, func() bool { _, ok := na.portFor(keyB); return !ok })
	found := false
	for _, r := range na.detachReasons() {
		found = found || errors.Is(r, ErrNotAllowed)
	}
	if !found {
		t.Fatalf("detach reasons %v", na.detachReasons())
	}
	waitRefusals(t, buf, keyB, ErrNotAllowed, 2) // B keeps retrying and keeps being refused
	if _, ok := na.portFor(keyB); ok {
		t.Fatal("B back in although not allowed")
	}
	if _, ok := na.portFor(keyC); !ok {
		t.Fatal("C dropped although allowed")
	}
	ma.SetAllowedKeys(nil)
	testhelp.WaitFor(t, "B back once every key is allowed", 5*time.Second, func() bool { _, ok := na.portFor(keyB); return ok })
}

// A static peer refused by the remote's allowed_keys is not first logged
// as "peer connected" on the dialling side: the remote closes right after
// the handshake, and that is logged as the refusal it is.
func TestRefusedByAllowedKeysNotLoggedConnected(t *testing.T) {
	testhelp.CheckNoLeak(t)
	ma, _ := newManager(t, Config{Listen: mkURIs("tcp://127.0.0.1:0"), AllowedKeys: []wire.PublicKey{keyC}}, privA)
	log, buf := testhelp.NewLogger(t)
	mb, _ := newManager(t, Config{Static: mkURIs(ma.ListenAddrs()[0].String()), Logger: log,
		Backoff: Backoff{Min: 20 * time.Millisecond, Max: 40 * time.Millisecond}}, privB)
	testhelp.WaitFor(t, "two refused attempts", 5*time.Second, func() bool { return len(buf.Lines("probably refuses us")) >= 2 })
	if lines := buf.Lines(`msg="peer connected"`); len(lines) != 0 {
		t.Fatalf("a refused peering was logged as connected: %q", lines)
	}
	if st := mb.List(); !strings.Contains(st[0].LastError, "refused by the remote?") {
		t.Fatalf("status %+v", st)
	}
}

// attachHookNode is a fakeNode that runs a hook at the start of Attach:
// what lands between the manager's checks and the node's registry.
type attachHookNode struct {
	*fakeNode
	beforeAttach func()
}

func (n *attachHookNode) Attach(info overlay.PeerInfo, l overlay.Link) (router.Port, error) {
	if n.beforeAttach != nil {
		n.beforeAttach()
	}
	return n.fakeNode.Attach(info, l)
}

// A reload that tightens allowed_keys while a peering has passed the
// check but is not yet attached (so the reload's sweep cannot see it)
// still ends that peering: it does not slip in under the old list.
func TestAllowedKeysTightenedDuringAttach(t *testing.T) {
	testhelp.CheckNoLeak(t)
	na := &attachHookNode{fakeNode: newFakeNode()}
	log, _ := testhelp.NewLogger(t)
	ma := startManager(t, Config{PrivateKey: privA, Listen: mkURIs("tcp://127.0.0.1:0"), Logger: log}, na)
	var once sync.Once
	na.beforeAttach = func() { once.Do(func() { ma.SetAllowedKeys([]wire.PublicKey{keyC}) }) }
	newManager(t, Config{Static: mkURIs(ma.ListenAddrs()[0].String()),
		Backoff: Backoff{Min: 20 * time.Millisecond, Max: 40 * time.Millisecond}}, privB)
	testhelp.WaitFor(t, "B's peering attached and then closed as not allowed", 5*time.Second, func() bool {
		for _, err := range na.detachReasons() {
			if errors.Is(err, ErrNotAllowed) {
				return true
			}
		}
		return false
	})
	testhelp.WaitFor(t, "no peering left on A", 5*time.Second, func() bool { return na.live() == 0 })
}
