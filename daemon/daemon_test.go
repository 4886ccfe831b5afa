package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pineconed/pineconed/addressing"
	"github.com/pineconed/pineconed/addressing/lookup"
	"github.com/pineconed/pineconed/admin"
	"github.com/pineconed/pineconed/config"
	"github.com/pineconed/pineconed/internal/testhelp"
	"github.com/pineconed/pineconed/overlay"
	"github.com/pineconed/pineconed/overlay/peers"
	"github.com/pineconed/pineconed/overlay/wire"
)

func TestDefaultMTUArithmetic(t *testing.T) {
	// Frame: 10-byte header, u16 payload length, two coordinate lists
	// (u16 length + CoordAllowance bytes each), destination and source keys,
	// and for SNEK the watermark key and a varint sequence of at most 10
	// bytes. Session: 6-byte envelope header, 4-byte index, 8-byte counter,
	// 1 inner type byte, 16-byte tag.
	const frame = 10 + 2 + 2*(2+CoordAllowance) + 2*32 + 32 + 10
	const sess = 6 + 4 + 8 + 1 + 16
	want := 65535 - frame - sess
	if got := DefaultMTU(); got != want {
		t.Fatalf("DefaultMTU() = %d, want %d", got, want)
	}
	if SessionOverhead != sess {
		t.Fatalf("SessionOverhead = %d, want %d", SessionOverhead, sess)
	}

	// A packet of DefaultMTU bytes, sealed and framed with coordinates of
	// CoordAllowance bytes on both sides, must encode; the worst case for
	// each routing method is checked.
	long := make(wire.Coordinates, CoordAllowance/2)
	for i := range long {
		long[i] = 200 // two varint bytes each
	}
	if long.EncodedLen() != 2+CoordAllowance {
		t.Fatalf("test coordinates take %d bytes", long.EncodedLen())
	}
	payload := make([]byte, DefaultMTU()+SessionOverhead)
	snek := wire.Traffic{SourceCoords: long, Watermark: wire.Watermark{Seq: ^uint64(0)}, Payload: payload}
	tree := wire.Traffic{SourceCoords: long, DestinationCoords: long, Payload: payload}
	bs, err := snek.Append(nil)
	if err != nil {
		t.Fatalf("SNEK frame with a %d-byte packet: %v", DefaultMTU(), err)
	}
	// A SNEK frame carries no destination coordinates, so exactly that
	// allowance is left over; nothing else may be.
	if slack := wire.MaxFrameSize - len(bs); slack != CoordAllowance {
		t.Fatalf("SNEK frame leaves %d bytes, want %d", slack, CoordAllowance)
	}
	bt, err := tree.Append(nil)
	if err != nil || len(bt) > wire.MaxFrameSize {
		t.Fatalf("tree frame with a %d-byte packet: %d bytes, %v", DefaultMTU(), len(bt), err)
	}
	if DefaultMTU() < config.MinMTU || DefaultMTU() > config.MaxMTU() || MaxMTU() != config.MaxMTU() {
		t.Fatalf("DefaultMTU() = %d outside [%d, %d], or MaxMTU() %d differs", DefaultMTU(), config.MinMTU, config.MaxMTU(), MaxMTU())
	}
	if got := effectiveMTU(1400); got != 1400 {
		t.Fatalf("configured MTU 1400 became %d", got)
	}
	if overlay.MaxPayload(CoordAllowance)-SessionOverhead != DefaultMTU() {
		t.Fatal("DefaultMTU does not follow overlay.MaxPayload")
	}
}

type testNode struct {
	d      *Daemon
	dir    string
	path   string
	logs   *testhelp.LogBuffer
	level  *slog.LevelVar
	client *admin.Client
	notes  chan string
}

// writeConfig writes a configuration file for an in-process daemon: no TUN,
// no multicast, everything under dir, listeners and metrics on free ports.
func writeConfig(t *testing.T, dir string, extraPeers string) string {
	t.Helper()
	cfg := fmt.Sprintf(`private_key_file = %q
log_level = "info"
[tun]
enable = false
[peers]
listen = ["tcp://127.0.0.1:0"]
%s
[multicast]
enable = false
[admin]
socket = %q
[metrics]
listen = "127.0.0.1:0"
`, filepath.Join(dir, "private.key"), extraPeers, filepath.Join(dir, "admin.sock"))
	path := filepath.Join(dir, "pineconed.toml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func startNode(t *testing.T, extraPeers string) *testNode {
	t.Helper()
	return startNodeWith(t, extraPeers, nil)
}

// startNodeWith is startNode with a hook that adjusts the Options.
func startNodeWith(t *testing.T, extraPeers string, adjust func(*Options)) *testNode {
	t.Helper()
	dir := t.TempDir()
	path := writeConfig(t, dir, extraPeers)
	cfg, err := LoadConfig(path, false)
	if err != nil {
		t.Fatal(err)
	}
	n := &testNode{dir: dir, path: path, logs: &testhelp.LogBuffer{}, level: new(slog.LevelVar), notes: make(chan string, 64)}
	n.level.Set(cfg.LogLevel)
	opts := Options{
		Config: cfg, ConfigPath: path,
		Logger:  NewLogger(io.MultiWriter(n.logs, testWriter{t}), "text", n.level),
		Level:   n.level,
		Version: "test",
		Notify: func(s string) {
			select {
			case n.notes <- s:
			default:
			}
		},
	}
	if adjust != nil {
		adjust(&opts)
	}
	d, err := New(opts)
	if err != nil {
		t.Fatalf("start daemon: %v", err)
	}
	n.d = d
	t.Cleanup(func() { d.Close() })
	n.client, err = admin.Dial(d.AdminPath())
	if err != nil {
		t.Fatalf("dial admin socket: %v", err)
	}
	t.Cleanup(func() { n.client.Close() })
	return n
}

// testWriter sends log lines to t.Log when -v is on.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	if testing.Verbose() {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func TestDaemonAdminAPI(t *testing.T) {
	a := startNode(t, "")
	b := startNode(t, fmt.Sprintf("static = [%q]", "tcp://"+a.d.ListenAddrs()[0]))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// getSelf describes the node from its key.
	self, err := b.client.Self(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if self.PublicKey != b.d.PublicKey().String() || self.Address != addressing.NodeAddr(b.d.PublicKey()).String() ||
		self.Subnet != addressing.Subnet(b.d.PublicKey()).String() || self.Version != "test" || self.TunName != "" {
		t.Fatalf("getSelf: %+v", self)
	}

	// The static peering comes up; both sides list it.
	testhelp.WaitFor(t, "peering", 10*time.Second, func() bool {
		pa, _ := a.client.Peers(ctx)
		pb, _ := b.client.Peers(ctx)
		return len(pa) == 1 && len(pb) == 1
	})
	pb, _ := b.client.Peers(ctx)
	if pb[0].PublicKey != a.d.PublicKey().String() || pb[0].Inbound || pb[0].Transport != admin.TransportTCP || pb[0].Port != 1 {
		t.Fatalf("b's peer: %+v", pb[0])
	}
	pa, _ := a.client.Peers(ctx)
	if pa[0].PublicKey != b.d.PublicKey().String() || !pa[0].Inbound {
		t.Fatalf("a's peer: %+v", pa[0])
	}

	// Both agree on one tree: the higher key is the root.
	root := a.d.PublicKey()
	if b.d.PublicKey().Compare(root) > 0 {
		root = b.d.PublicKey()
	}
	testhelp.WaitFor(t, "tree", 10*time.Second, func() bool {
		ta, _ := a.client.Tree(ctx)
		tb, _ := b.client.Tree(ctx)
		return ta.RootKey == root.String() && tb.RootKey == root.String() && len(ta.Announcements) == 1 && len(tb.Announcements) == 1
	})
	// The non-root's only ancestor is the root, and the root lists it as
	// its one child, on the port it has at the root.
	rootC, leafC, leafKey := a.client, b.client, b.d.PublicKey()
	if root == b.d.PublicKey() {
		rootC, leafC, leafKey = b.client, a.client, a.d.PublicKey()
	}
	testhelp.WaitFor(t, "ancestors and children", 10*time.Second, func() bool {
		tr, _ := rootC.Tree(ctx)
		tl, _ := leafC.Tree(ctx)
		pr, _ := rootC.Peers(ctx)
		return len(tl.Ancestors) == 1 && tl.Ancestors[0] == root.String() && len(tl.Children) == 0 &&
			len(tr.Ancestors) == 0 && len(tr.Children) == 1 && tr.Children[0].PublicKey == leafKey.String() &&
			len(pr) == 1 && tr.Children[0].Port == pr[0].Port
	})

	// lookup of a's address from b goes over the overlay (not cached).
	lk, err := b.client.Lookup(ctx, a.d.Address().String())
	if err != nil {
		t.Fatalf("lookup: %v", err)
	}
	if lk.PublicKey != a.d.PublicKey().String() || lk.Cached {
		t.Fatalf("lookup: %+v", lk)
	}
	lk, err = b.client.Lookup(ctx, a.d.Address().String())
	if err != nil || !lk.Cached {
		t.Fatalf("second lookup: %+v, %v", lk, err)
	}
	if _, err := b.client.Lookup(ctx, "2001:db8::1"); err == nil {
		t.Fatal("lookup of a non-overlay address succeeded")
	}

	// ping by address: session handshake, then echo replies matched by id.
	pr, err := b.client.Ping(ctx, admin.PingArgs{Target: a.d.Address().String(), Count: 3, IntervalMS: 50, TimeoutMS: 5000})
	if err != nil {
		t.Fatalf("ping: %v", err)
	}
	if pr.Received != 3 || pr.PublicKey != a.d.PublicKey().String() {
		t.Fatalf("ping: %+v", pr)
	}

	// Sessions now exist on both sides.
	ss, err := b.client.Sessions(ctx)
	if err != nil || len(ss) != 1 || ss[0].RemoteKey != a.d.PublicKey().String() || ss[0].State != admin.SessionEstablished {
		t.Fatalf("getSessions: %+v, %v", ss, err)
	}
	if ss[0].PeerMTU != DefaultMTU() {
		t.Fatalf("peer MTU %d, want %d", ss[0].PeerMTU, DefaultMTU())
	}

	// getSnake answers; with two nodes the lower key's ascending
	// neighbour is the higher key.
	lower, higher := a, b
	if a.d.PublicKey().Compare(b.d.PublicKey()) > 0 {
		lower, higher = b, a
	}
	testhelp.WaitFor(t, "snake", 15*time.Second, func() bool {
		sn, err := lower.client.Snake(ctx)
		return err == nil && sn.Ascending != nil && sn.Ascending.PublicKey == higher.d.PublicKey().String()
	})
	// The higher key never bootstraps through the lower one (nothing is
	// above it), so the lower knows no expiry for its ascending
	// neighbour: null, not 0. The higher one's descending neighbour is the
	// lower one's bootstrap route, which has an expiry.
	if sn, err := lower.client.Snake(ctx); err != nil || sn.Ascending == nil || sn.Ascending.ExpiresInSeconds != nil {
		t.Fatalf("lower's getSnake: %+v, %v; want an ascending neighbour without expiry", sn, err)
	}
	testhelp.WaitFor(t, "the higher key's descending neighbour", 15*time.Second, func() bool {
		sn, err := higher.client.Snake(ctx)
		return err == nil && sn.Descending != nil && sn.Descending.PublicKey == lower.d.PublicKey().String() &&
			sn.Descending.ExpiresInSeconds != nil && *sn.Descending.ExpiresInSeconds > 0
	})

	// Counters reflect the traffic and are node-wide.
	st, err := b.client.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.PeersByTransport["tcp"] != 1 || st.Handshakes["ok"] < 1 || st.Frames["traffic"].FramesOut == 0 ||
		st.SessionsByState[admin.SessionEstablished] != 1 || st.Lookups["found"] < 1 {
		t.Fatalf("getStats: %+v", st)
	}
	if _, ok := st.Drops["keepalive"]; ok {
		t.Fatalf("keepalives counted as drops: %v", st.Drops)
	}

	// Metrics over HTTP.
	body := scrapeMetrics(t, b.d)
	for _, want := range []string{`pineconed_build_info{`, `pineconed_peers{transport="tcp"} 1`, `pineconed_handshakes_total{result="ok"}`,
		`pineconed_lookup_duration_seconds_bucket{result="found"`} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}

	// The status page beside /metrics serves the admin API's answers and
	// the history its sampler took (one sample at start, one every 2 s).
	testhelp.WaitFor(t, "status page with a peer and a throughput point", 10*time.Second, func() bool {
		resp, err := http.Get("http://" + b.d.MetricsAddr() + "/api/status")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var st struct {
			GetSelf  admin.Self          `json:"getSelf"`
			GetPeers admin.PeersResponse `json:"getPeers"`
			Rates    struct {
				History []json.RawMessage `json:"history"`
				Peers   []struct {
					PublicKey string `json:"public_key"`
				} `json:"peers"`
			} `json:"rates"`
		}
		if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&st) != nil {
			return false
		}
		return st.GetSelf.PublicKey == b.d.PublicKey().String() && len(st.GetPeers.Peers) == 1 &&
			st.GetPeers.Peers[0].PublicKey == a.d.PublicKey().String() && len(st.Rates.History) >= 1 &&
			len(st.Rates.Peers) == 1 && st.Rates.Peers[0].PublicKey == a.d.PublicKey().String()
	})

	// addPeer / removePeer go to the peer manager; errors come back.
	if err := b.client.AddPeer(ctx, "tcp://127.0.0.1:1"); err != nil {
		t.Fatalf("addPeer: %v", err)
	}
	if err := b.client.AddPeer(ctx, "tcp://127.0.0.1:1"); err == nil {
		t.Fatal("adding the same peer twice succeeded")
	}
	if err := b.client.AddPeer(ctx, "udp://127.0.0.1:1"); err == nil {
		t.Fatal("addPeer accepted a udp:// URI")
	}
	if !hasStatic(b.d, "tcp://127.0.0.1:1") {
		t.Fatal("added peer not in the peer manager")
	}
	if err := b.client.RemovePeer(ctx, "tcp://127.0.0.1:1"); err != nil {
		t.Fatalf("removePeer: %v", err)
	}
	if err := b.client.RemovePeer(ctx, "tcp://127.0.0.1:1"); err == nil || !strings.Contains(err.Error(), peers.ErrUnknown.Error()) {
		t.Fatalf("removing an unknown peer: %v", err)
	}

	// ping of a key nobody has times out as a lost probe.
	pr, err = b.client.Ping(ctx, admin.PingArgs{Target: strings.Repeat("0d", 32), Count: 1, TimeoutMS: 200})
	if err != nil || pr.Received != 0 || len(pr.Probes) != 1 || !pr.Probes[0].Lost {
		t.Fatalf("ping of nobody: %+v, %v", pr, err)
	}
}

func hasStatic(d *Daemon, uri string) bool {
	for _, sp := range d.peers.List() {
		if sp.URI.String() == uri {
			return true
		}
	}
	return false
}

func TestReload(t *testing.T) {
	a := startNode(t, "")
	b := startNode(t, "")
	addrA := "tcp://" + a.d.ListenAddrs()[0]

	// A good file: a new static peer, a new log level, and a key that needs
	// a restart.
	cfg := strings.Replace(readFile(t, b.path), `log_level = "info"`, `log_level = "debug"`, 1)
	cfg = strings.Replace(cfg, "[peers]\n", fmt.Sprintf("[peers]\nstatic = [%q]\nmax_peers = 10\n", addrA), 1)
	cfg = strings.Replace(cfg, "[tun]\n", "[tun]\nmtu = 1400\n", 1)
	writeFile(t, b.path, cfg)
	if err := b.d.Reload(); err != nil {
		t.Fatalf("reload: %v", err)
	}
	if b.level.Level() != slog.LevelDebug {
		t.Fatalf("log level %v after reload", b.level.Level())
	}
	if !hasStatic(b.d, addrA) {
		t.Fatal("static peer not added by reload")
	}
	testhelp.WaitFor(t, "peering after reload", 10*time.Second, func() bool { return len(b.d.node.Peers()) == 1 })
	logs := b.logs.String()
	if !strings.Contains(logs, "configuration reloaded") || !strings.Contains(logs, "tun.mtu") {
		t.Fatalf("reload not logged with the restart key:\n%s", logs)
	}
	if b.d.MTU() != DefaultMTU() {
		t.Fatal("MTU changed without a restart")
	}
	notes := drain(b.notes)
	if len(notes) != 2 || !strings.HasPrefix(notes[0], "RELOADING=1\nMONOTONIC_USEC=") || notes[1] != "READY=1" {
		t.Fatalf("notifications: %q", notes)
	}

	// A bad file changes nothing.
	writeFile(t, b.path, strings.Replace(cfg, "max_peers = 10", "max_peers = 1000\nstatc = []", 1))
	err := b.d.Reload()
	var errs config.Errors
	if !errors.As(err, &errs) || len(errs) != 2 {
		t.Fatalf("bad reload: %v", err)
	}
	if !strings.Contains(err.Error(), "pineconed.toml:") || !strings.Contains(err.Error(), "peers.statc") {
		t.Fatalf("error without file, line and key: %v", err)
	}
	if !hasStatic(b.d, addrA) || b.level.Level() != slog.LevelDebug {
		t.Fatal("a failed reload changed the running state")
	}
	if n := drain(b.notes); len(n) != 2 || n[1] != "READY=1" {
		t.Fatalf("notifications after a failed reload: %q", n)
	}

	// allowed_keys on a, without b's key, ends b's inbound peering there
	// and keeps it out; max_peers is applied to the peer manager and node.
	// At debug level a logs every refusal (at info, one a minute per
	// host), so the test sees b's re-dial after its back-off being refused.
	cfgA := strings.Replace(readFile(t, a.path), "[peers]\n",
		fmt.Sprintf("[peers]\nallowed_keys = [%q]\nmax_peers = 5\n", strings.Repeat("ab", 32)), 1)
	cfgA = strings.Replace(cfgA, `log_level = "info"`, `log_level = "debug"`, 1)
	writeFile(t, a.path, cfgA)
	if err := a.d.Reload(); err != nil {
		t.Fatal(err)
	}
	testhelp.WaitFor(t, "disallowed peering to end", 10*time.Second, func() bool { return len(a.d.node.Peers()) == 0 })
	testhelp.WaitFor(t, "b's re-dial refused by allowed_keys", 20*time.Second, func() bool {
		for _, l := range a.logs.Lines(`msg="refusing peer"`) {
			if strings.Contains(l, peers.ErrNotAllowed.Error()) {
				return true
			}
		}
		return false
	})
	if n := len(a.d.node.Peers()); n != 0 {
		t.Fatalf("a has %d peerings after allowed_keys excluded b", n)
	}
	if !strings.Contains(a.logs.String(), "peers.allowed_keys") {
		t.Fatal("allowed_keys change not logged")
	}

	// Removing the peer from the file stops it.
	writeFile(t, b.path, strings.Replace(cfg, fmt.Sprintf("static = [%q]\n", addrA), "", 1))
	if err := b.d.Reload(); err != nil {
		t.Fatal(err)
	}
	if hasStatic(b.d, addrA) {
		t.Fatal("static peer still configured after reload removed it")
	}
	testhelp.WaitFor(t, "peering to end", 10*time.Second, func() bool { return len(b.d.node.Peers()) == 0 })
}

func TestRunNotifiesAndShutsDown(t *testing.T) {
	a := startNode(t, "")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		a.d.Run(ctx, nil)
		close(done)
	}()
	testhelp.WaitFor(t, "READY=1", 5*time.Second, func() bool {
		select {
		case s := <-a.notes:
			return s == "READY=1"
		default:
			return false
		}
	})
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
	if n := drain(a.notes); len(n) != 1 || n[0] != "STOPPING=1" {
		t.Fatalf("notifications at shutdown: %q", n)
	}
	if _, err := os.Stat(filepath.Join(a.dir, "admin.sock")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("admin socket left behind: %v", err)
	}
	if _, err := admin.Dial(filepath.Join(a.dir, "admin.sock")); err == nil {
		t.Fatal("admin socket still answers")
	}
}

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.toml")
	cfg, err := LoadConfig(missing, true)
	if err != nil || cfg.TUN.Name != config.Default().TUN.Name {
		t.Fatalf("optional missing file: %v", err)
	}
	if _, err := LoadConfig(missing, false); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("explicit missing file: %v", err)
	}
	// An MTU that cannot fit a frame with its overheads is refused when
	// the file is loaded, naming file, line and key.
	big := filepath.Join(dir, "big.toml")
	writeFile(t, big, fmt.Sprintf("[tun]\nmtu = %d\n", MaxMTU()+1))
	if _, err := LoadConfig(big, false); err == nil || !strings.Contains(err.Error(), big+":2: tun.mtu: ") ||
		!strings.Contains(err.Error(), fmt.Sprint(MaxMTU())) {
		t.Fatalf("MTU over the frame limit: %v", err)
	}
	writeFile(t, big, fmt.Sprintf("[tun]\nmtu = %d\n", MaxMTU()))
	if _, err := LoadConfig(big, false); err != nil {
		t.Fatalf("largest MTU: %v", err)
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func writeFile(t *testing.T, p, s string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

func drain(ch chan string) []string {
	var out []string
	for {
		select {
		case s := <-ch:
			out = append(out, s)
		default:
			return out
		}
	}
}

// An admin lookup of an address nobody owns fails as soon as the resolver
// gives up (not at the request's deadline), naming the address.
func TestLookupOfNobodyEndsWhenResolverGivesUp(t *testing.T) {
	fast := func(o *Options) {
		o.resolver = lookup.Config{RetryInterval: 100 * time.Millisecond}
	}
	a := startNodeWith(t, "", fast)
	b := startNodeWith(t, fmt.Sprintf("static = [%q]", "tcp://"+a.d.ListenAddrs()[0]), fast)
	testhelp.WaitFor(t, "peering", 10*time.Second, func() bool { return len(b.d.node.Peers()) == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// Requests at 0, 0.1, 0.3 and 0.7 s; the resolver gives up at 1.1 s,
	// seen on its next 250 ms tick.
	const giveUp = 1100 * time.Millisecond
	for _, nobody := range []string{"fd00:1234:5678::1", "fc00:1234:5678:9abc::1"} {
		start := time.Now()
		_, err := b.client.Lookup(ctx, nobody)
		took := time.Since(start)
		if err == nil || !strings.Contains(err.Error(), "no node owns "+nobody) {
			t.Fatalf("lookup %s: %v", nobody, err)
		}
		if took < giveUp || took > giveUp+2*time.Second {
			t.Fatalf("lookup %s ended after %v; the resolver gives up after %v", nobody, took, giveUp)
		}
	}
	st, err := b.client.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Lookups["timeout"] != 2 {
		t.Fatalf("lookups %v, want 2 timeouts", st.Lookups)
	}
	// A real address still resolves, and a second waiter on the same
	// prefix gets the same answer.
	errs := make(chan error, 2)
	for range 2 {
		go func() {
			r, err := b.client.Lookup(ctx, a.d.Address().String())
			if err == nil && r.PublicKey != a.d.PublicKey().String() {
				err = fmt.Errorf("got %s", r.PublicKey)
			}
			errs <- err
		}()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatalf("lookup of a: %v", err)
		}
	}
}

// peers.listen is live: a reload opens a new listener that accepts a
// peering at once, and closes a removed one, which then refuses new
// connections while the peering it accepted earlier, and the session over
// it, carry on as the same peering and the same session.
func TestReloadListeners(t *testing.T) {
	a := startNode(t, "")
	b := startNode(t, fmt.Sprintf("static = [%q]", "tcp://"+a.d.ListenAddrs()[0]))
	oldAddr := a.d.ListenAddrs()[0]
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// A session from b to a over the first listener's peering (the first
	// probes may go before the peering and its routes are up).
	testhelp.WaitFor(t, "peering", 10*time.Second, func() bool { return len(a.d.node.Peers()) == 1 })
	for try := 0; ; try++ {
		pr, err := b.client.Ping(ctx, admin.PingArgs{Target: a.d.PublicKey().String(), Count: 1, TimeoutMS: 2000})
		if err == nil && pr.Received == 1 {
			break
		}
		if try == 4 {
			t.Fatalf("ping before reload: %+v, %v", pr, err)
		}
	}
	peerOf := func(n *testNode, k wire.PublicKey) (overlay.PeerStatus, bool) {
		for _, p := range n.d.node.Peers() {
			if p.Info.Key == k {
				return p, true
			}
		}
		return overlay.PeerStatus{}, false
	}
	sessionOf := func(n *testNode, k wire.PublicKey) time.Time {
		for _, s := range n.d.path.Sessions().Sessions(time.Now()) {
			if s.Remote == k && s.State == "established" {
				return s.LastRekey
			}
		}
		t.Fatalf("no established session to %s", k)
		return time.Time{}
	}
	peerBefore, ok := peerOf(a, b.d.PublicKey())
	if !ok {
		t.Fatal("a has no peering with b")
	}
	keypairBefore := sessionOf(b, a.d.PublicKey())
	statsBefore, _ := b.client.Stats(ctx)

	// Reload 1: a second listener.
	cfg := strings.Replace(readFile(t, a.path), `listen = ["tcp://127.0.0.1:0"]`, `listen = ["tcp://127.0.0.1:0", "tcp://[::1]:0"]`, 1)
	writeFile(t, a.path, cfg)
	if err := a.d.Reload(); err != nil {
		t.Fatal(err)
	}
	if n := len(a.d.ListenAddrs()); n != 2 {
		t.Fatalf("%d listeners after adding one", n)
	}
	newAddr := a.d.ListenAddrs()[1]
	c := startNode(t, fmt.Sprintf("static = [%q]", "tcp://"+newAddr))
	testhelp.WaitFor(t, "peering through the new listener", 10*time.Second, func() bool {
		_, ok := peerOf(a, c.d.PublicKey())
		return ok
	})

	// Reload 2: the first listener goes.
	writeFile(t, a.path, strings.Replace(cfg, `listen = ["tcp://127.0.0.1:0", "tcp://[::1]:0"]`, `listen = ["tcp://[::1]:0"]`, 1))
	if err := a.d.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := a.d.ListenAddrs(); len(got) != 1 || got[0] != newAddr {
		t.Fatalf("listeners after removing one: %v", got)
	}
	if conn, err := net.DialTimeout("tcp", oldAddr, time.Second); err == nil {
		conn.Close()
		t.Fatalf("removed listener %s still accepts", oldAddr)
	}
	if logs := a.logs.String(); !strings.Contains(logs, "listen_removed") || strings.Contains(logs, "only after a restart") {
		t.Fatalf("listener change not logged as live:\n%s", logs)
	}

	// The peering b made through the removed listener is the same one,
	// and so is the session over it: a ping goes through without a new
	// handshake.
	pr, err := b.client.Ping(ctx, admin.PingArgs{Target: a.d.PublicKey().String(), Count: 2, IntervalMS: 50, TimeoutMS: 5000})
	if err != nil || pr.Received != 2 {
		t.Fatalf("ping after reload: %+v, %v", pr, err)
	}
	peerAfter, ok := peerOf(a, b.d.PublicKey())
	if !ok || peerAfter.Port != peerBefore.Port || !peerAfter.Since.Equal(peerBefore.Since) {
		t.Fatalf("b's peering changed: before port %d since %v, after %+v (%v)", peerBefore.Port, peerBefore.Since, peerAfter, ok)
	}
	if got := sessionOf(b, a.d.PublicKey()); !got.Equal(keypairBefore) {
		t.Fatalf("session keypair made at %v, was %v: a new session", got, keypairBefore)
	}
	statsAfter, _ := b.client.Stats(ctx)
	if statsAfter.Handshakes["ok"] != statsBefore.Handshakes["ok"] {
		t.Fatalf("handshakes %v, before the reloads %v", statsAfter.Handshakes, statsBefore.Handshakes)
	}
	if _, ok := peerOf(a, c.d.PublicKey()); !ok {
		t.Fatal("c's peering through the kept listener ended")
	}
}

// A listener that fails to open at a reload is logged as an error and not
// as added; the running configuration keeps it out, so the next reload
// tries again.
func TestReloadFailedListenerNotLoggedAsAdded(t *testing.T) {
	a := startNode(t, "")
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	busy := "tcp://" + held.Addr().String()
	writeFile(t, a.path, strings.Replace(readFile(t, a.path), `listen = ["tcp://127.0.0.1:0"]`, fmt.Sprintf(`listen = ["tcp://127.0.0.1:0", %q]`, busy), 1))
	if err := a.d.Reload(); err != nil {
		t.Fatal(err)
	}
	logs := a.logs.String()
	if !strings.Contains(logs, "reload: listener did not open") {
		t.Fatalf("no error for the listener that did not open:\n%s", logs)
	}
	if lines := a.logs.Lines("configuration reloaded"); len(lines) != 0 {
		t.Fatalf("a reload that applied nothing logged %q", lines)
	}
	if !strings.Contains(logs, "reload: no change could be applied live") {
		t.Fatalf("the reload's outcome is not logged:\n%s", logs)
	}
	if n := len(a.d.ListenAddrs()); n != 1 {
		t.Fatalf("%d listeners, want the one that was running", n)
	}
}

// A reload after the configuration file was deleted keeps the running
// configuration and says the file is missing, rather than reverting to
// built-in defaults.
func TestReloadMissingFileKeepsRunningConfig(t *testing.T) {
	a := startNode(t, "")
	listenBefore := a.d.ListenAddrs()
	if err := os.Remove(a.path); err != nil {
		t.Fatal(err)
	}
	err := a.d.Reload()
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Reload with the file gone: %v, want a not-exist error", err)
	}
	if !strings.Contains(a.logs.String(), "reload: configuration file is missing; keeping the running configuration") {
		t.Fatalf("missing file not reported:\n%s", a.logs.String())
	}
	if got := a.d.ListenAddrs(); !slices.Equal(got, listenBefore) {
		t.Fatalf("listeners %v after the failed reload, were %v", got, listenBefore)
	}
	a.d.reloadMu.Lock()
	listen := a.d.cfg.Peers.Listen
	a.d.reloadMu.Unlock()
	if len(listen) != 1 || listen[0].String() != "tcp://127.0.0.1:0" {
		t.Fatalf("running configuration changed: peers.listen %v", listen)
	}
}

// peer_timeout is applied live: a reload gives the peer manager the new
// value (for peerings made afterwards), and a bad one is refused naming
// its line and field, keeping the running value.
func TestReloadPeerTimeout(t *testing.T) {
	a := startNode(t, "")
	if got := a.d.peers.PeerTimeout(); got != 1500*time.Millisecond {
		t.Fatalf("starting peer timeout %v, want the 1.5s default", got)
	}
	cfg := strings.Replace(readFile(t, a.path), "[peers]\n", "[peers]\npeer_timeout = \"4s\"\n", 1)
	writeFile(t, a.path, cfg)
	if err := a.d.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := a.d.peers.PeerTimeout(); got != 4*time.Second {
		t.Fatalf("peer timeout %v after reload, want 4s", got)
	}
	if !strings.Contains(a.logs.String(), "peers.peer_timeout") {
		t.Fatal("peer_timeout change not logged")
	}
	writeFile(t, a.path, strings.Replace(cfg, `peer_timeout = "4s"`, `peer_timeout = "10ms"`, 1))
	err := a.d.Reload()
	if err == nil || !strings.Contains(err.Error(), "pineconed.toml:") || !strings.Contains(err.Error(), "peers.peer_timeout: 10ms is out of range") {
		t.Fatalf("bad peer_timeout: %v", err)
	}
	if got := a.d.peers.PeerTimeout(); got != 4*time.Second {
		t.Fatalf("a refused reload changed the peer timeout to %v", got)
	}
}
