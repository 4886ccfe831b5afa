package sim

import (
	"testing"
	"time"

	"github.com/pineconed/pineconed/overlay/router"
	"github.com/pineconed/pineconed/overlay/wire"
)

// BenchmarkScaleFree500 measures the wall time of building a 500-node
// scale-free network, running it for 60 virtual seconds (tree and SNEK
// converge within that) and routing 3 000 first packets and replies. With
// signatures every announcement hop, bootstrap and wakeup is really signed
// and verified, as between real nodes; without, the simulator's fast mode.
// rebuild=every-change is the fast mode with the routing snapshot rebuilt
// after every change instead of at Router.Publish's bounded rate.
func BenchmarkScaleFree500(b *testing.B) {
	g := ScaleFree(500, 2, 42)
	for _, mode := range []struct {
		name string
		opts router.Options
	}{
		{"signatures", router.Options{}},
		{"nosignatures", router.Options{InsecureSkipSignatures: true}},
		// The snapshot rebuilt after every change, as overlay.Node did
		// before Router.Publish bounded it: the simulator publishes as
		// the node does, so it pays the difference.
		{"nosignatures/rebuild=every-change", router.Options{InsecureSkipSignatures: true, SnapshotInterval: -1}},
	} {
		b.Run(mode.name, func(b *testing.B) {
			for b.Loop() {
				net := New(Config{Router: mode.opts})
				if _, err := net.Build(g, 1, 0); err != nil {
					b.Fatal(err)
				}
				net.RunFor(60 * time.Second)
				res := net.Probe(samplePairs(net, 3000, 99), probeWindow)
				if res.Requests < 2990 || res.Replies < res.Requests {
					b.Fatalf("not converged after 60 s: %v", res)
				}
				b.ReportMetric(float64(net.Stats().Events), "events/op")
				b.ReportMetric(float64(res.Replies)/float64(res.Pairs)*100, "%delivered")
			}
		})
	}
}

// BenchmarkRoute measures Snapshot.Route, the per-frame forwarding
// decision of the data plane, on nodes of a converged 500-node scale-free
// network: the node with the most links (a hub, whose SNEK search walks
// the most ancestries and routes) and a node with two links. Tree frames
// carry the destination's coordinates; SNEK frames only its key.
func BenchmarkRoute(b *testing.B) {
	net := New(Config{Router: router.Options{InsecureSkipSignatures: true}})
	nodes, err := net.Build(ScaleFree(500, 2, 42), 1, 0)
	if err != nil {
		b.Fatal(err)
	}
	net.RunFor(60 * time.Second)
	hub, small := nodes[0], nodes[len(nodes)-1]
	for _, n := range nodes {
		if len(n.Links()) > len(hub.Links()) {
			hub = n
		}
	}
	pairs := samplePairs(net, 256, 5)
	for _, at := range []struct {
		name string
		node *Node
	}{{"hub", hub}, {"leaf", small}} {
		s := at.node.Router.Snapshot()
		// Frames come in on the node's first link.
		l := at.node.Links()[0]
		ingress := l.PortA
		if l.B == at.node {
			ingress = l.PortB
		}
		frames := make([]wire.Traffic, 0, len(pairs))
		for _, p := range pairs {
			if p.To == at.node || p.From == at.node {
				continue
			}
			frames = append(frames, wire.Traffic{HopLimit: 10, DestinationCoords: p.To.Router.Coords(),
				SourceCoords: p.From.Router.Coords(), Destination: p.To.Key, Source: p.From.Key,
				Watermark: wire.StartWatermark, Payload: []byte("x")})
		}
		for _, mode := range []string{"tree", "snek"} {
			b.Run(at.name+"/"+mode, func(b *testing.B) {
				b.ReportAllocs()
				now := net.Now()
				i := 0
				for b.Loop() {
					f := frames[i%len(frames)]
					if mode == "snek" {
						f.DestinationCoords = nil
					}
					s.Route(now, &f, ingress)
					i++
				}
				b.ReportMetric(float64(len(at.node.Links())), "links")
				b.ReportMetric(float64(len(at.node.Router.SNEKEntries(now))), "routes")
			})
		}
	}
}
