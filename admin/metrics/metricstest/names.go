// Package metricstest lists the metric series pineconed really exports, so
// that tests of things written against them (the Grafana dashboard, the
// Prometheus alert rules) fail when a name they use does not exist.
package metricstest

import (
	"context"
	"fmt"
	"regexp"
	"time"

	"github.com/pineconed/pineconed/admin"
	"github.com/pineconed/pineconed/admin/metrics"
)

// Names returns the name of every pineconed_* series a scrape can return,
// histogram series (_bucket, _sum, _count) included, gathered from a
// metrics registry fed a snapshot with every map filled.
func Names() (map[string]bool, error) {
	one := map[string]uint64{"x": 1}
	m := metrics.New("v0", func(context.Context) (admin.Stats, error) {
		return admin.Stats{
			PeersByTransport: one, Drops: one, SessionsByState: one, Handshakes: one, Lookups: one,
			Frames: map[string]admin.FrameCounters{"traffic": {FramesIn: 1}},
		}, nil
	})
	m.ObserveLookup("found", time.Millisecond)
	fams, err := m.Registry().Gather()
	if err != nil {
		return nil, fmt.Errorf("gather: %w", err)
	}
	names := map[string]bool{}
	for _, f := range fams {
		n := f.GetName()
		names[n] = true
		if f.GetType().String() == "HISTOGRAM" {
			names[n+"_bucket"], names[n+"_sum"], names[n+"_count"] = true, true, true
		}
	}
	return names, nil
}

var used = regexp.MustCompile(`\bpineconed_[a-z_]+\b`)

// Unknown returns the pineconed_* names used in text that no scrape
// returns.
func Unknown(text string) ([]string, error) {
	names, err := Names()
	if err != nil {
		return nil, err
	}
	var out []string
	seen := map[string]bool{}
	for _, n := range used.FindAllString(text, -1) {
		if !names[n] && !seen[n] {
			out = append(out, n)
			seen[n] = true
		}
	}
	return out, nil
}
