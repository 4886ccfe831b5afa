package metrics_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pineconed/pineconed/admin"
	"github.com/pineconed/pineconed/admin/metrics"
	"github.com/pineconed/pineconed/internal/testhelp"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// fakeSource is a StatsSource the test can change and break.
type fakeSource struct {
	mu    sync.Mutex
	stats admin.Stats
	err   error
}

func (f *fakeSource) set(fn func(*admin.Stats)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(&f.stats)
}

func (f *fakeSource) Stats(ctx context.Context) (admin.Stats, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stats, f.err
}

func initialStats() admin.Stats {
	return admin.Stats{
		PeersByTransport: map[string]uint64{"tcp": 2, "wss": 1},
		Frames: map[string]admin.FrameCounters{
			"traffic":           {FramesIn: 10, FramesOut: 20, BytesIn: 1000, BytesOut: 2000},
			"tree_announcement": {FramesIn: 5, FramesOut: 5, BytesIn: 500, BytesOut: 510},
		},
		Drops:           map[string]uint64{"queue_full": 1},
		TreeRootChanges: 1,
		TreeDepth:       3,
		SnakeEntries:    7,
		SessionsByState: map[string]uint64{"established": 2},
		Handshakes:      map[string]uint64{"ok": 2, "timeout": 1},
		Lookups:         map[string]uint64{"found": 4},
		Tun:             admin.TunCounters{PacketsRead: 100, PacketsWritten: 90, BytesRead: 10000, BytesWritten: 9000},
	}
}

// scrape fetches /metrics over HTTP and returns sample values by series
// ("name{labels}") and the set of metric names that have HELP text.
func scrape(t *testing.T, addr string) (map[string]float64, map[string]bool) {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
	samples, help := map[string]float64{}, map[string]bool{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "# HELP "); ok {
			name, text, _ := strings.Cut(rest, " ")
			help[name] = text != ""
			continue
		}
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("bad sample line %q", line)
		}
		samples[line[:i]] = v
	}
	return samples, help
}

func TestScrapeOverHTTP(t *testing.T) {
	src := &fakeSource{stats: initialStats()}
	m := metrics.New("v1.2.3", src.Stats)
	srv := metrics.NewServer("127.0.0.1:0", m, nil)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()

	before, help := scrape(t, srv.Addr())
	want := map[string]float64{
		`pineconed_build_info{goversion="` + runtime.Version() + `",version="v1.2.3"}`: 1,
		`pineconed_peers{transport="tcp"}`:                                             2,
		`pineconed_peers{transport="wss"}`:                                             1,
		`pineconed_frames_total{direction="in",type="traffic"}`:                        10,
		`pineconed_frames_total{direction="out",type="traffic"}`:                       20,
		`pineconed_frame_bytes_total{direction="out",type="tree_announcement"}`:        510,
		`pineconed_drops_total{reason="queue_full"}`:                                   1,
		`pineconed_tree_root_changes_total`:                                            1,
		`pineconed_tree_depth`:                                                         3,
		`pineconed_tree_is_root`:                                                       0,
		`pineconed_snake_entries`:                                                      7,
		`pineconed_sessions{state="established"}`:                                      2,
		`pineconed_handshakes_total{result="timeout"}`:                                 1,
		`pineconed_lookups_total{result="found"}`:                                      4,
		`pineconed_tun_packets_total{direction="read"}`:                                100,
		`pineconed_tun_bytes_total{direction="write"}`:                                 9000,
		`pineconed_stats_errors_total`:                                                 0,
	}
	for series, v := range want {
		if got, ok := before[series]; !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", series, got, ok, v)
		}
	}
	for _, name := range []string{"pineconed_peers", "pineconed_frames_total", "pineconed_tun_bytes_total", "go_goroutines", "process_cpu_seconds_total"} {
		if !help[name] {
			t.Errorf("no HELP for %s", name)
		}
	}

	// The node keeps counting; the next scrape sees it.
	src.set(func(s *admin.Stats) {
		s.Frames["traffic"] = admin.FrameCounters{FramesIn: 15, FramesOut: 20, BytesIn: 1600, BytesOut: 2000}
		s.Drops["no_route"] = 2
		s.IsRoot, s.TreeDepth = true, 0
		s.Tun.PacketsRead = 130
	})
	m.ObserveLookup("found", 3*time.Millisecond)
	m.ObserveLookup("timeout", 4*time.Second)
	after, help := scrape(t, srv.Addr())
	if !help["pineconed_lookup_duration_seconds"] {
		t.Error("no HELP for pineconed_lookup_duration_seconds")
	}
	moved := map[string]float64{
		`pineconed_frames_total{direction="in",type="traffic"}`:                15,
		`pineconed_frame_bytes_total{direction="in",type="traffic"}`:           1600,
		`pineconed_drops_total{reason="no_route"}`:                             2,
		`pineconed_tree_is_root`:                                               1,
		`pineconed_tree_depth`:                                                 0,
		`pineconed_tun_packets_total{direction="read"}`:                        130,
		`pineconed_lookup_duration_seconds_count{result="found"}`:              1,
		`pineconed_lookup_duration_seconds_bucket{result="found",le="0.005"}`:  1,
		`pineconed_lookup_duration_seconds_bucket{result="found",le="0.0025"}`: 0,
		`pineconed_lookup_duration_seconds_bucket{result="timeout",le="2.5"}`:  0,
		`pineconed_lookup_duration_seconds_bucket{result="timeout",le="+Inf"}`: 1,
	}
	for series, v := range moved {
		if got, ok := after[series]; !ok || got != v {
			t.Errorf("after update: %s = %v (present %v), want %v", series, got, ok, v)
		}
	}
	for series, v := range before {
		if strings.HasPrefix(series, "pineconed_") && strings.Contains(series, "_total") && after[series] < v {
			t.Errorf("counter %s went down: %v -> %v", series, v, after[series])
		}
	}
}

func TestLint(t *testing.T) {
	src := &fakeSource{stats: initialStats()}
	m := metrics.New("v1", src.Stats)
	m.ObserveLookup("found", time.Millisecond)
	problems, err := testutil.GatherAndLint(m.Registry())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "pineconed_") {
			t.Errorf("lint: %s: %s", p.Metric, p.Text)
		}
	}
	if n := testutil.CollectAndCount(m.Registry(), "pineconed_frames_total"); n != 4 {
		t.Errorf("pineconed_frames_total has %d series, want 4", n)
	}
}

func TestSourceErrorKeepsServing(t *testing.T) {
	src := &fakeSource{err: errors.New("node stopping")}
	m := metrics.New("v1", src.Stats)
	srv := metrics.NewServer("127.0.0.1:0", m, nil)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	s, _ := scrape(t, srv.Addr())
	if s["pineconed_stats_errors_total"] != 1 {
		t.Errorf("stats_errors_total = %v, want 1", s["pineconed_stats_errors_total"])
	}
	if _, ok := s["go_goroutines"]; !ok {
		t.Error("runtime metrics missing when the source fails")
	}
}

func TestServerOffAndClose(t *testing.T) {
	m := metrics.New("v1", (&fakeSource{}).Stats)
	off := metrics.NewServer("", m, nil)
	if err := off.Start(); err != nil || off.Addr() != "" || off.Close() != nil {
		t.Fatalf("disabled server: start/addr/close misbehaved")
	}

	before := runtime.NumGoroutine()
	srv := metrics.NewServer("127.0.0.1:0", m, nil)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	addr := srv.Addr()
	scrape(t, addr)
	if err := srv.Start(); err == nil {
		t.Error("second Start succeeded")
	}
	if err := metrics.NewServer(addr, m, nil).Start(); err == nil {
		t.Error("Start on a busy address succeeded")
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	http.DefaultClient.CloseIdleConnections()
	if _, err := http.Get("http://" + addr + "/metrics"); err == nil {
		t.Error("still serving after Close")
	}
	http.DefaultClient.CloseIdleConnections()
	testhelp.WaitFor(t, "the server's goroutines to end", 5*time.Second,
		func() bool { return runtime.NumGoroutine() <= before },
		func() string {
			return fmt.Sprintf("%d goroutines after Close, %d before", runtime.NumGoroutine(), before)
		})
}

// A lookup that ends at its timeout must land in a finite bucket.
func TestLookupBucketsPastTimeout(t *testing.T) {
	last := metrics.LookupBuckets[len(metrics.LookupBuckets)-1]
	if limit := admin.DefaultLookupTimeout.Seconds(); last <= limit {
		t.Fatalf("largest lookup bucket %v s is not past the lookup timeout %v s", last, limit)
	}
}

// TestPageBesideMetrics: Page serves the other paths; /metrics stays the
// collector's, and without a Page the other paths are not found.
func TestPageBesideMetrics(t *testing.T) {
	m := metrics.New("v1", (&fakeSource{}).Stats)
	for _, withPage := range []bool{true, false} {
		srv := metrics.NewServer("127.0.0.1:0", m, nil)
		if withPage {
			srv.Page = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "page "+r.URL.Path) })
		}
		if err := srv.Start(); err != nil {
			t.Fatal(err)
		}
		if s, _ := scrape(t, srv.Addr()); s[`pineconed_build_info{goversion="`+runtime.Version()+`",version="v1"}`] != 1 {
			t.Errorf("page %t: /metrics lost pineconed_build_info", withPage)
		}
		resp, body := testhelp.Fetch(t, http.DefaultClient, http.MethodGet, "http://"+srv.Addr()+"/api/status", nil)
		if withPage && (resp.StatusCode != 200 || string(body) != "page /api/status") ||
			!withPage && resp.StatusCode != http.StatusNotFound {
			t.Errorf("page %t: GET /api/status: %d %q", withPage, resp.StatusCode, body)
		}
		srv.Close()
	}
}

// gauge reads one unlabelled gauge from a gather of m's registry.
func gauge(t *testing.T, m *metrics.Metrics, name string) float64 {
	t.Helper()
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() == name && len(f.GetMetric()) == 1 {
			return f.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no gauge %s in a scrape", name)
	return 0
}

// TestRuntimeHeapMetricsMove: the live heap follows what the program holds
// across a collection, up and down, and freed heap handed back to the OS
// shows as released (TestRuntimeMemoryMetrics checks that the series are
// there; this that they move).
func TestRuntimeHeapMetricsMove(t *testing.T) {
	m := metrics.New("v0", (&fakeSource{stats: initialStats()}).Stats)
	const held = 64 << 20
	runtime.GC()
	live0 := gauge(t, m, "go_gc_heap_live_bytes")
	buf := make([]byte, held)
	for i := range buf {
		buf[i] = byte(i)
	}
	runtime.GC()
	live1 := gauge(t, m, "go_gc_heap_live_bytes")
	if live1 < live0+held*0.9 {
		t.Errorf("holding %d MiB: live heap %.1f → %.1f MiB", held>>20, live0/(1<<20), live1/(1<<20))
	}
	if goal := gauge(t, m, "go_gc_heap_goal_bytes"); goal < live1 {
		t.Errorf("heap goal %.1f MiB below the live heap %.1f MiB", goal/(1<<20), live1/(1<<20))
	}
	runtime.KeepAlive(buf)
	released0 := gauge(t, m, "go_memory_classes_heap_released_bytes")
	buf = nil
	debug.FreeOSMemory() // a collection, then every free page back to the OS
	live2 := gauge(t, m, "go_gc_heap_live_bytes")
	if live2 > live1-held*0.9 {
		t.Errorf("after dropping %d MiB: live heap %.1f → %.1f MiB", held>>20, live1/(1<<20), live2/(1<<20))
	}
	if released := gauge(t, m, "go_memory_classes_heap_released_bytes"); released < released0+held*0.9 {
		t.Errorf("after freeing %d MiB to the OS: released %.1f → %.1f MiB", held>>20, released0/(1<<20), released/(1<<20))
	}
}

// TestRuntimeMemoryMetrics: a scrape carries the runtime's view of its
// memory, the live heap after a collection first, and it says what the
// runtime says (the live heap moves only at a GC, so it is compared after
// one, with no allocation between).
func TestRuntimeMemoryMetrics(t *testing.T) {
	m := metrics.New("v1", (&fakeSource{}).Stats)
	srv := metrics.NewServer("127.0.0.1:0", m, nil)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	keep := make([]byte, 32<<20) // live across the collection: the live heap is at least this
	runtime.GC()
	s, help := scrape(t, srv.Addr())
	runtime.KeepAlive(keep)
	for _, name := range []string{
		"go_gc_heap_live_bytes", "go_gc_heap_goal_bytes", "go_gc_cycles_total_gc_cycles_total",
		"go_memory_classes_heap_free_bytes", "go_memory_classes_heap_released_bytes", "go_memory_classes_total_bytes",
		"go_gc_gogc_percent", "go_gc_gomemlimit_bytes",
	} {
		if _, ok := s[name]; !ok || !help[name] {
			t.Errorf("%s: present %v, HELP %v", name, ok, help[name])
		}
	}
	if live := s["go_gc_heap_live_bytes"]; live < float64(len(keep)) || live > s["go_gc_heap_goal_bytes"] {
		t.Errorf("live heap %v B after a GC holding %d B; goal %v B", live, len(keep), s["go_gc_heap_goal_bytes"])
	}
	if s["go_gc_cycles_total_gc_cycles_total"] < 1 {
		t.Error("no GC cycle counted after runtime.GC")
	}
	// The memstats-like names stay: dashboards and the soak use them.
	for _, name := range []string{"go_memstats_heap_alloc_bytes", "go_memstats_next_gc_bytes", "go_memstats_heap_released_bytes"} {
		if _, ok := s[name]; !ok {
			t.Errorf("%s gone", name)
		}
	}
}
