package sim

import (
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/pineconed/pineconed/overlay/router"
	"github.com/pineconed/pineconed/overlay/wire"
)

// hopTrace is one first packet followed through the snapshots.
type hopTrace struct {
	path    []*Node
	wms     []wire.Watermark
	end     *Node
	outcome string // "ok", "misdelivered", "drop:<reason>", "loop"
}

func traceFirstPacket(net *Network, from *Node, to wire.PublicKey) hopTrace {
	now := net.Now()
	f := from.Router.Snapshot().NewTraffic(now, to, []byte("x"))
	f.DestinationCoords = nil
	cur, in := from, router.LocalPort
	var t hopTrace
	for range 64 {
		t.path = append(t.path, cur)
		v := cur.Router.Snapshot().Route(now, &f, in)
		t.wms = append(t.wms, f.Watermark)
		switch v.Kind {
		case router.VerdictDrop:
			t.end, t.outcome = cur, "drop:"+v.Reason.String()
			return t
		case router.VerdictDeliver:
			t.end = cur
			if cur.Key == to {
				t.outcome = "ok"
			} else {
				t.outcome = "misdelivered"
			}
			return t
		}
		l := cur.LinkOn(v.Port)
		cur, in = l.Far(cur)
	}
	t.outcome = "loop"
	return t
}

// TestDiagColdStart is a diagnostic, not a check: it replays the
// simulator's cold start on a graph file (DIAG_GRAPH=path; the pairs are
// drawn as Experiment draws them for seed 1) and, every virtual second,
// follows every pair's first packet hop by hop through the nodes'
// snapshots (no frame is sent, so routing state evolves as without
// probes). It logs, per second, how the first packets end (delivered,
// delivered to the destination's key-order successor or to some other
// node, dropped and why), how many nodes' last bootstrap ended at their
// true successor, the routers' bootstrap drops and bootstraps sent. It
// stops at the first second with every pair delivered unless DIAG_STEADY
// is set; DIAG_SECONDS bounds it (130 s), DIAG_DETAIL=n prints the hops
// of the first n failures from 20 s on, with each hop's route to the
// destination and the bootstrap paths of the destination and its
// successor. docs/simulation/README.md quotes its output.
func TestDiagColdStart(t *testing.T) {
	path := os.Getenv("DIAG_GRAPH")
	if path == "" {
		t.Skip("DIAG_GRAPH not set")
	}
	g, err := LoadGraph(path)
	if err != nil {
		t.Fatal(err)
	}
	g, _ = g.CapDegree(int(router.MaxPort))
	net := New(Config{Router: router.Options{InsecureSkipSignatures: true}})
	nodes, err := net.Build(g, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 0x5e1ec7))
	var pairs []Pair
	for len(pairs) < 2000 {
		a, b := nodes[rng.IntN(len(nodes))], nodes[rng.IntN(len(nodes))]
		if a != b {
			pairs = append(pairs, Pair{a, b})
		}
	}
	sorted := slices.Clone(nodes)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Key.Less(sorted[j].Key) })
	succ := map[wire.PublicKey]*Node{}
	for i, n := range sorted {
		if i+1 < len(sorted) {
			succ[n.Key] = sorted[i+1]
		}
	}
	byKey := map[wire.PublicKey]*Node{}
	for _, n := range nodes {
		byKey[n.Key] = n
	}
	limit := 130
	if s := os.Getenv("DIAG_SECONDS"); s != "" {
		fmt.Sscan(s, &limit)
	}
	detail := 0
	if s := os.Getenv("DIAG_DETAIL"); s != "" {
		var n int
		fmt.Sscan(s, &n)
		detail = -n
	}
	prevAfter := map[string]uint64{}
	for sec := 0; sec <= limit; sec++ {
		net.RunUntil(net.cfg.Start.Add(time.Duration(sec) * time.Second))
		net.ForgetCoords()
		cur := dropTotals(nodes)
		dline := ""
		for _, k := range []string{"bootstrap_replay", "ingress", "watermark", "no_route", "bootstrap_wrong_root", "bootstraps_out"} {
			dline += fmt.Sprintf(" %s=%d", k, cur[k]-prevAfter[k])
		}
		counts := map[string]int{}
		for _, p := range pairs {
			tr := traceFirstPacket(net, p.From, p.To.Key)
			c := tr.outcome
			if c == "misdelivered" {
				// Does the end know a route to the destination?
				if succ[p.To.Key] == tr.end {
					c += "/at-successor"
				} else {
					c += "/elsewhere"
				}
			}
			counts[c]++
			if c != "ok" && detail < 0 && sec >= 20 {
				detail++
				t.Logf("t=%ds %s -> %s (%.8s): %s", sec, p.From, p.To, p.To.Key, c)
				for i, n := range tr.path {
					desc := ""
					if d, ok := n.Router.Descending(net.Now()); ok {
						desc = fmt.Sprintf("%.8s", d.Originator)
					}
					entry := "-"
					for _, e := range n.Router.SNEKEntries(net.Now()) {
						if e.Originator == p.To.Key {
							entry = fmt.Sprintf("src %v dst %v seq %d seen %v ago", e.Source, e.Destination, e.Watermark.Seq%100000, net.Now().Sub(e.LastSeen))
						}
					}
					asc, _, _ := n.Router.Ascending(net.Now())
					t.Logf("   hop %d %s key %.8s wm %.8s/%d desc %s asc %.8s route-to-dest: %s", i, n, n.Key, tr.wms[i].Key, tr.wms[i].Seq%100000, desc, asc, entry)
				}
				// Where is the destination's bootstrap going?
				d := p.To
				asc, port, ok := d.Router.Ascending(net.Now())
				t.Logf("   dest %.8s true successor %.8s ascending %.8s via %v (%v); dest parent %v coords %v root %.8s", d.Key, keyOf(succ[d.Key]), asc, port, ok, d.Router.Parent(), d.Router.Coords(), d.Router.Root().Key)
				for _, o := range []*Node{d, succ[d.Key]} {
					bp := bootstrapPath(net, o)
					line := fmt.Sprintf("   bootstrap path of %.8s:", o.Key)
					for _, h := range bp {
						line += fmt.Sprintf(" %.8s%v", h.Key, h.Router.Coords())
					}
					t.Log(line)
				}
			}
		}
		keys := make([]string, 0, len(counts))
		for k := range counts {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		line := fmt.Sprintf("t=%3ds tree=%v", sec, net.TreeConverged() == nil)
		for _, k := range keys {
			line += fmt.Sprintf(" %s=%d", k, counts[k])
		}
		ends := 0
		for _, n := range nodes {
			bp := bootstrapPath(net, n)
			if len(bp) > 1 && succ[n.Key] != nil && bp[len(bp)-1] == succ[n.Key] {
				ends++
			}
		}
		line += fmt.Sprintf(" bootstrap-ends-at-successor=%d", ends)
		t.Log(line + " |" + dline)
		prevAfter = dropTotals(nodes)
		if counts["ok"] == len(pairs) && os.Getenv("DIAG_STEADY") == "" {
			break
		}
	}
}

// bootstrapPath follows the routes left by o's last bootstrap: o, then
// every node with a route to o, along its Destination ports.
func bootstrapPath(net *Network, o *Node) []*Node {
	path := []*Node{o}
	_, port, ok := o.Router.Ascending(net.Now())
	if !ok {
		return path
	}
	cur := o
	for range 64 {
		l := cur.LinkOn(port)
		if l == nil {
			return path
		}
		cur, _ = l.Far(cur)
		var e *router.SNEKEntryView
		for _, x := range cur.Router.SNEKEntries(net.Now()) {
			if x.Originator == o.Key {
				e = &x
			}
		}
		if e == nil {
			path = append(path, nil)
			return path[:len(path)-1]
		}
		path = append(path, cur)
		if e.Destination == router.NoPort || e.Destination == router.LocalPort {
			return path
		}
		port = e.Destination
	}
	return path
}

func dropTotals(nodes []*Node) map[string]uint64 {
	m := map[string]uint64{}
	for _, n := range nodes {
		st := n.Router.Stats()
		for k, v := range st.Drops {
			m[k] += v
		}
		m["bootstraps_out"] += n.Sent(wire.TypeBootstrap).Frames
	}
	return m
}

func keyOf(n *Node) wire.PublicKey {
	if n == nil {
		return wire.PublicKey{}
	}
	return n.Key
}
