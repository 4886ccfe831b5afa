package netns

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pineconed/pineconed/admin"
)

// TestCtl drives a running daemon with pineconectl: status, peers, adding
// and removing a peer at run time, and ping through the overlay to a node
// two hops away.
func TestCtl(t *testing.T) {
	n := newNet(t)
	a, b, c, d := n.Node("a"), n.Node("b"), n.Node("c"), n.Node("d")
	ab, bc := n.Connect(a, b, true), n.Connect(b, c, true)
	ad := n.Connect(a, d, true) // d listens; nobody dials it yet
	n.Peer(a, b, ab, "tcp")
	n.Peer(b, c, bc, "tcp")
	d.listenOn("tcp")
	n.StartAll()
	a.WaitPeer(b)
	b.WaitPeer(c)

	// status --json: our own identity.
	out, errOut, code := a.Ctl("status", "--json")
	if code != 0 {
		t.Fatalf("pineconectl status --json: exit %d: %s", code, errOut)
	}
	var status struct {
		Self  admin.Self  `json:"self"`
		Stats admin.Stats `json:"stats"`
	}
	if err := json.Unmarshal([]byte(out), &status); err != nil {
		t.Fatalf("status --json is not JSON: %v\n%s", err, out)
	}
	if status.Self.Address != a.Addr.String() || status.Self.TunName != tunName || status.Self.PeerCount != 1 {
		t.Errorf("status: address %s, tun %q, %d peers; want %s, %q, 1", status.Self.Address, status.Self.TunName, status.Self.PeerCount, a.Addr, tunName)
	}

	// peers: the neighbour b, as a table and as JSON.
	out, errOut, code = a.Ctl("peers")
	if code != 0 {
		t.Fatalf("pineconectl peers: exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, b.Key.String()[:16]) || !regexp.MustCompile(`(?m)\btcp\b.*\bout\b`).MatchString(out) {
		t.Errorf("pineconectl peers on a does not show b (%s…) as an outbound tcp peer:\n%s", b.Key.String()[:16], out)
	}
	if strings.Contains(out, c.Key.String()[:16]) {
		t.Errorf("pineconectl peers on a shows c, which is not a neighbour:\n%s", out)
	}

	// peer add: a dials d at run time.
	dURI := uri("tcp", ad.AddrB)
	out, errOut, code = a.Ctl("peer", "add", dURI)
	if code != 0 {
		t.Fatalf("pineconectl peer add %s: exit %d: %s%s", dURI, code, out, errOut)
	}
	a.WaitPeer(d)
	// --wide: the default table leaves the scheme out and clips URIs.
	out, _, _ = a.Ctl("peers", "--wide")
	if !strings.Contains(out, d.Key.String()[:16]) || !strings.Contains(out, dURI) {
		t.Errorf("after peer add, pineconectl peers does not show d (%s…) at %s:\n%s", d.Key.String()[:16], dURI, out)
	}
	a.WaitReach(d.Addr)

	// peer remove: the link goes and is not dialled again. a logs the
	// removal once the peer's dialer has stopped, so nothing dials d
	// after it.
	removed := a.logCount(`msg="static peer removed"`, dURI)
	out, errOut, code = a.Ctl("peer", "remove", dURI)
	if code != 0 {
		t.Fatalf("pineconectl peer remove %s: exit %d: %s%s", dURI, code, out, errOut)
	}
	a.WaitLogged(removed+1, 10*time.Second, `msg="static peer removed"`, dURI)
	a.WaitNoPeer(d, 10*time.Second)
	d.WaitNoPeer(a, 10*time.Second)

	// ping through b to c, two hops away.
	out, errOut, code = a.Ctl("ping", c.Addr.String(), "-c", "3", "-i", "200ms")
	if code != 0 {
		t.Fatalf("pineconectl ping %s -c 3: exit %d\n%s%s", c.Addr, code, out, errOut)
	}
	replies := regexp.MustCompile(`(?m)^reply from \S+: seq=\d time=(\d+\.\d+) ms$`).FindAllStringSubmatch(out, -1)
	if len(replies) != 3 || !strings.Contains(out, "3 probes sent, 3 received") {
		t.Fatalf("pineconectl ping -c 3 to c: want 3 replies with RTTs:\n%s", out)
	}
	t.Logf("pineconectl ping a→c:\n%s", out)

	out, errOut, code = a.Ctl("--json", "ping", c.Key.String(), "-c", "2", "-i", "100ms")
	var pr admin.PingResponse
	if code != 0 || json.Unmarshal([]byte(out), &pr) != nil || pr.Received != 2 || pr.MinRTTMS <= 0 || pr.PublicKey != c.Key.String() {
		t.Errorf("pineconectl --json ping <c's key> -c 2: exit %d, %+v\n%s%s", code, pr, out, errOut)
	}
}

// TestMetrics scrapes /metrics inside the namespaces before and after
// traffic a→c through b: the TUN counters of the ends and the Traffic
// frame counters of all three move by at least the traffic sent.
func TestMetrics(t *testing.T) {
	needTool(t, "ping")
	n := newNet(t)
	nodes, _ := n.Line(3, "tcp")
	a, b, c := nodes[0], nodes[1], nodes[2]
	a.WaitReach(c.Addr)

	before := map[string]Metrics{}
	for _, nd := range nodes {
		before[nd.Name] = nd.Metrics()
	}
	const pings = 50
	if out, err := a.Ping6(c.Addr, "-c", fmt.Sprint(pings), "-i", "0.01", "-W", "2"); err != nil || !strings.Contains(out, fmt.Sprintf("%d received", pings)) {
		t.Fatalf("ping -c %d a→c: %v\n%s", pings, err, out)
	}
	delta := func(nd *Node, after Metrics, name string, labels ...string) float64 {
		t.Helper()
		v1, ok1 := before[nd.Name].Sum(name, labels...)
		v2, ok2 := after.Sum(name, labels...)
		if !ok1 || !ok2 {
			t.Fatalf("node %s: /metrics has no %s{%s}", nd.Name, name, strings.Join(labels, ","))
		}
		return v2 - v1
	}
	after := map[string]Metrics{}
	for _, nd := range nodes {
		after[nd.Name] = nd.Metrics()
	}
	checks := []struct {
		nd     *Node
		name   string
		labels []string
		min    float64
	}{
		// a reads the requests from its TUN and writes the replies to it;
		// c the other way round.
		{a, "pineconed_tun_packets_total", []string{`direction="read"`}, pings},
		{a, "pineconed_tun_packets_total", []string{`direction="write"`}, pings},
		{c, "pineconed_tun_packets_total", []string{`direction="read"`}, pings},
		{c, "pineconed_tun_packets_total", []string{`direction="write"`}, pings},
		{a, "pineconed_frames_total", []string{`type="traffic"`, `direction="out"`}, pings},
		{a, "pineconed_frames_total", []string{`type="traffic"`, `direction="in"`}, pings},
		// b forwards both ways.
		{b, "pineconed_frames_total", []string{`type="traffic"`, `direction="in"`}, 2 * pings},
		{b, "pineconed_frames_total", []string{`type="traffic"`, `direction="out"`}, 2 * pings},
		{a, "pineconed_frame_bytes_total", []string{`type="traffic"`, `direction="out"`}, pings * 64},
	}
	for _, ch := range checks {
		if d := delta(ch.nd, after[ch.nd.Name], ch.name, ch.labels...); d < ch.min {
			t.Errorf("node %s: %s{%s} moved by %v, want ≥ %v", ch.nd.Name, ch.name, strings.Join(ch.labels, ","), d, ch.min)
		} else {
			t.Logf("node %s: %s{%s} +%v", ch.nd.Name, ch.name, strings.Join(ch.labels, ","), d)
		}
	}
	if v, ok := after["b"].Sum("pineconed_peers"); !ok || v != 2 {
		t.Errorf("node b: pineconed_peers sums to %v (found %t), want 2", v, ok)
	}
}
