package sim

import (
	"testing"
	"time"
)

// BenchmarkScaleFree500 measures the wall time of building a 500-node
// scale-free network, running it for 60 virtual seconds (tree and SNEK
// converge well within that) and routing 3 000 request/reply pairs.
func BenchmarkScaleFree500(b *testing.B) {
	g := ScaleFree(500, 2, 42)
	for b.Loop() {
		net := New(Config{})
		if _, err := net.Build(g, 1, 0); err != nil {
			b.Fatal(err)
		}
		net.RunFor(60 * time.Second)
		res := net.Probe(samplePairs(net, 3000, 99), probeWindow)
		if !res.OK() {
			b.Fatalf("not converged after 60 s: %v", res)
		}
		b.ReportMetric(float64(net.Stats().Events), "events/op")
	}
}
