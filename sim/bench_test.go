package sim

import (
	"testing"
	"time"

	"github.com/pineconed/pineconed/overlay/router"
)

// BenchmarkScaleFree500 measures the wall time of building a 500-node
// scale-free network, running it for 60 virtual seconds (tree and SNEK
// converge within that) and routing 3 000 first packets and replies. With
// signatures every announcement hop, bootstrap and wakeup is really signed
// and verified, as between real nodes; without, the simulator's fast mode.
func BenchmarkScaleFree500(b *testing.B) {
	g := ScaleFree(500, 2, 42)
	for _, mode := range []struct {
		name string
		opts router.Options
	}{
		{"signatures", router.Options{}},
		{"nosignatures", router.Options{InsecureSkipSignatures: true}},
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
