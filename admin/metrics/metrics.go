// Package metrics exposes pineconed's counters to Prometheus.
//
// The packages that count things (overlay, session, addressing, tun) keep
// plain atomic counters and know nothing of Prometheus. At every scrape the
// collector here calls a StatsSource, which the daemon implements by copying
// those counters into an admin.Stats snapshot, and turns the snapshot into
// constant metrics. Only the lookup latency histogram keeps state here,
// since a histogram cannot be rebuilt from counters: the daemon reports each
// lookup with ObserveLookup.
//
// Metric names (all with HELP text; counters end in _total; units are
// seconds and bytes):
//
//	pineconed_build_info{version,goversion}            gauge, always 1
//	pineconed_peers{transport}                         gauge
//	pineconed_static_peers{state}                      gauge (connected, dialling, waiting)
//	pineconed_frames_total{type,direction}             counter (direction: in, out)
//	pineconed_frame_bytes_total{type,direction}        counter
//	pineconed_drops_total{reason}                      counter
//	pineconed_tree_root_changes_total                  counter
//	pineconed_tree_depth                               gauge
//	pineconed_tree_is_root                             gauge (0 or 1)
//	pineconed_snake_entries                            gauge
//	pineconed_sessions{state}                          gauge
//	pineconed_handshakes_total{result}                 counter
//	pineconed_lookups_total{result}                    counter
//	pineconed_lookup_duration_seconds{result}          histogram
//	pineconed_tun_packets_total{direction}             counter (direction: read, write)
//	pineconed_tun_bytes_total{direction}               counter
//	pineconed_stats_errors_total                       counter (failed snapshots)
//
// plus the standard go_* and process_* collectors, and the Go runtime's
// own view of its memory (RuntimeMetrics), which is what tells a leak from
// garbage the collector has not reached yet: a process's RSS follows the
// heap up to the GC's goal and back only as fast as the scavenger
// releases pages, so only the heap found live by the last collection
// (go_gc_heap_live_bytes) grows with held state.
package metrics

import (
	"context"
	"regexp"
	"runtime"
	"sort"
	"sync/atomic"
	"time"

	"github.com/pineconed/pineconed/admin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

const namespace = "pineconed"

// SnapshotTimeout bounds one call to the StatsSource during a scrape.
const SnapshotTimeout = 5 * time.Second

// LookupBuckets are the lookup latency histogram buckets, in seconds: a
// cached answer takes microseconds, one over the overlay takes milliseconds
// to seconds, and lookups give up after about 11 s (the resolver) or 15 s
// (admin.DefaultLookupTimeout). The last buckets lie past both, so that a
// lookup that ran into a timeout lands in a finite bucket of its own
// instead of only in +Inf.
var LookupBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 15, 20, 30}

// RuntimeMetrics are the runtime/metrics names exported besides the Go
// collector's defaults, with the names Prometheus gives them:
//
//	/gc/heap/live:bytes                 go_gc_heap_live_bytes: heap marked live by the last GC
//	/gc/heap/goal:bytes                 go_gc_heap_goal_bytes: heap size at which the next GC ends
//	/gc/cycles/total:gc-cycles          go_gc_cycles_total_gc_cycles_total: GCs run
//	/memory/classes/heap/free:bytes     go_memory_classes_heap_free_bytes: free heap still mapped (in RSS if touched)
//	/memory/classes/heap/released:bytes go_memory_classes_heap_released_bytes: free heap given back to the OS
//	/memory/classes/total:bytes         go_memory_classes_total_bytes: all memory the runtime has mapped
//
// (go_gc_gogc_percent and go_gc_gomemlimit_bytes, the collector's
// settings, are among the defaults.) Heap goal less live heap is the room
// garbage may take before the next collection; free less released is what
// the scavenger has yet to give back.
var RuntimeMetrics = []string{
	"/gc/heap/live:bytes",
	"/gc/heap/goal:bytes",
	"/gc/cycles/total:gc-cycles",
	"/memory/classes/heap/free:bytes",
	"/memory/classes/heap/released:bytes",
	"/memory/classes/total:bytes",
}

// Metrics owns a private Prometheus registry holding pineconed's metrics.
type Metrics struct {
	reg     *prometheus.Registry
	lookups *prometheus.HistogramVec
}

// New builds the registry. version is the daemon's version for
// pineconed_build_info; source is called at every scrape.
func New(version string, source admin.StatsSource) *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		reg: reg,
		lookups: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace,
			Name:      "lookup_duration_seconds",
			Help:      "Time taken to resolve an overlay address to a key, by result.",
			Buckets:   LookupBuckets,
		}, []string{"result"}),
	}
	rules := make([]collectors.GoRuntimeMetricsRule, len(RuntimeMetrics))
	for i, name := range RuntimeMetrics {
		rules[i] = collectors.GoRuntimeMetricsRule{Matcher: regexp.MustCompile("^" + regexp.QuoteMeta(name) + "$")}
	}
	reg.MustRegister(
		collectors.NewGoCollector(collectors.WithGoCollectorRuntimeMetrics(rules...)),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		newStatsCollector(version, source),
		m.lookups,
	)
	return m
}

// Registry returns the registry, e.g. for promhttp.HandlerFor or tests.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// ObserveLookup records one address lookup and how long it took. result
// should come from a small fixed set ("found", "not_found", "timeout",
// "cached") since it becomes a label value.
func (m *Metrics) ObserveLookup(result string, d time.Duration) {
	m.lookups.WithLabelValues(result).Observe(d.Seconds())
}

// statsCollector turns an admin.Stats snapshot into constant metrics.
type statsCollector struct {
	source    admin.StatsSource
	buildInfo prometheus.Metric
	errors    atomic.Uint64

	peers, staticPeers, frames, frameBytes, drops *prometheus.Desc
	rootChanges, depth, isRoot, snake             *prometheus.Desc
	sessions, handshakes, lookups                 *prometheus.Desc
	tunPackets, tunBytes, statsErrors, buildDesc  *prometheus.Desc
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(namespace, "", name), help, labels, nil)
}

func newStatsCollector(version string, source admin.StatsSource) *statsCollector {
	c := &statsCollector{
		source:      source,
		buildDesc:   desc("build_info", "Always 1; the labels say which pineconed build is running.", "version", "goversion"),
		peers:       desc("peers", "Current peerings, by transport.", "transport"),
		staticPeers: desc("static_peers", "Configured static peers, by state: connected, dialling, waiting (backing off after a failure).", "state"),
		frames:      desc("frames_total", "Overlay frames received (in) from and sent (out) to peers, by frame type.", "type", "direction"),
		frameBytes:  desc("frame_bytes_total", "Bytes of overlay frames received (in) from and sent (out) to peers, by frame type.", "type", "direction"),
		drops:       desc("drops_total", "Frames and packets dropped, by reason.", "reason"),
		rootChanges: desc("tree_root_changes_total", "Times the spanning tree root key this node follows changed."),
		depth:       desc("tree_depth", "Distance of this node from the spanning tree root, in hops."),
		isRoot:      desc("tree_is_root", "1 if this node is the root of its spanning tree, else 0."),
		snake:       desc("snake_entries", "Entries in the SNEK routing table."),
		sessions:    desc("sessions", "End-to-end encrypted sessions, by state.", "state"),
		handshakes:  desc("handshakes_total", "Session handshakes finished, by result.", "result"),
		lookups:     desc("lookups_total", "Address to key lookups, by result.", "result"),
		tunPackets:  desc("tun_packets_total", "Packets read from (read) and written to (write) the TUN device.", "direction"),
		tunBytes:    desc("tun_bytes_total", "Bytes of packets read from (read) and written to (write) the TUN device.", "direction"),
		statsErrors: desc("stats_errors_total", "Scrapes for which the daemon could not produce a statistics snapshot."),
	}
	if version == "" {
		version = "unknown"
	}
	c.buildInfo = prometheus.MustNewConstMetric(c.buildDesc, prometheus.GaugeValue, 1, version, runtime.Version())
	return c
}

func (c *statsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		c.buildDesc, c.peers, c.staticPeers, c.frames, c.frameBytes, c.drops, c.rootChanges, c.depth,
		c.isRoot, c.snake, c.sessions, c.handshakes, c.lookups, c.tunPackets, c.tunBytes,
		c.statsErrors,
	} {
		ch <- d
	}
}

func (c *statsCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- c.buildInfo
	ctx, cancel := context.WithTimeout(context.Background(), SnapshotTimeout)
	defer cancel()
	st, err := c.source(ctx)
	if err != nil {
		c.errors.Add(1)
		ch <- prometheus.MustNewConstMetric(c.statsErrors, prometheus.CounterValue, float64(c.errors.Load()))
		ch <- prometheus.NewInvalidMetric(c.peers, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.statsErrors, prometheus.CounterValue, float64(c.errors.Load()))

	perLabel(ch, c.peers, prometheus.GaugeValue, st.PeersByTransport)
	perLabel(ch, c.staticPeers, prometheus.GaugeValue, st.StaticPeers)
	for _, typ := range sortedKeys(st.Frames) {
		f := st.Frames[typ]
		ch <- prometheus.MustNewConstMetric(c.frames, prometheus.CounterValue, float64(f.FramesIn), typ, "in")
		ch <- prometheus.MustNewConstMetric(c.frames, prometheus.CounterValue, float64(f.FramesOut), typ, "out")
		ch <- prometheus.MustNewConstMetric(c.frameBytes, prometheus.CounterValue, float64(f.BytesIn), typ, "in")
		ch <- prometheus.MustNewConstMetric(c.frameBytes, prometheus.CounterValue, float64(f.BytesOut), typ, "out")
	}
	perLabel(ch, c.drops, prometheus.CounterValue, st.Drops)
	ch <- prometheus.MustNewConstMetric(c.rootChanges, prometheus.CounterValue, float64(st.TreeRootChanges))
	ch <- prometheus.MustNewConstMetric(c.depth, prometheus.GaugeValue, float64(st.TreeDepth))
	isRoot := 0.0
	if st.IsRoot {
		isRoot = 1
	}
	ch <- prometheus.MustNewConstMetric(c.isRoot, prometheus.GaugeValue, isRoot)
	ch <- prometheus.MustNewConstMetric(c.snake, prometheus.GaugeValue, float64(st.SnakeEntries))
	perLabel(ch, c.sessions, prometheus.GaugeValue, st.SessionsByState)
	perLabel(ch, c.handshakes, prometheus.CounterValue, st.Handshakes)
	perLabel(ch, c.lookups, prometheus.CounterValue, st.Lookups)
	ch <- prometheus.MustNewConstMetric(c.tunPackets, prometheus.CounterValue, float64(st.Tun.PacketsRead), "read")
	ch <- prometheus.MustNewConstMetric(c.tunPackets, prometheus.CounterValue, float64(st.Tun.PacketsWritten), "write")
	ch <- prometheus.MustNewConstMetric(c.tunBytes, prometheus.CounterValue, float64(st.Tun.BytesRead), "read")
	ch <- prometheus.MustNewConstMetric(c.tunBytes, prometheus.CounterValue, float64(st.Tun.BytesWritten), "write")
}

// perLabel emits one sample per map entry, the key being the only label.
// Label values are free text in Prometheus, so any key is valid.
func perLabel(ch chan<- prometheus.Metric, d *prometheus.Desc, t prometheus.ValueType, m map[string]uint64) {
	for _, k := range sortedKeys(m) {
		ch <- prometheus.MustNewConstMetric(d, t, float64(m[k]), k)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
