package netns

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// soakFor is how long TestSoak flaps links with -soak (the long variants
// of the soak tests, see idle_test.go); without -soak it flaps for
// soakShort, the version CI runs.
var soakFor = flag.Duration("soak-for", 10*time.Minute, "TestSoak with -soak: how long to flap links")

// Soak parameters: between flaps the mesh is left alone for a random
// 8-16 s, and a flapped link stays down for a random 1-12 s, so that some
// flaps are shorter than the links' 5 s read timeout (the peering
// survives) and others end the peering (static peers dial it again); pings
// sent in the settle window after a link goes down or up are not counted.
const (
	soakShort        = 60 * time.Second
	soakWarmUp       = 10 * time.Second
	soakSettle       = 6 * time.Second
	soakPingInterval = 200 * time.Millisecond
	soakStreamRate   = 256 << 10 // bytes/s of the TCP stream
	// soakMinSuccess is the least share of pings, outside the settle
	// windows, that must be answered. Measured: 97.7-100 % in 60 s runs;
	// the losses outside the windows come with peerings re-made after a
	// long flap, which move the tree again.
	soakMinSuccess = 0.95
	// soakResourceSlack is how far goroutines, fds and RSS may stay above
	// their values before the flaps, once the mesh has healed; they have
	// soakRecover (past the runtime's 2 min forced collection) to get
	// there. RSS is checked in the full soak (-soak) only, against a
	// baseline taken after two collections under traffic (see TestSoak).
	// What RSS does (issue 12): file pages stay flat (12 MiB, the
	// binary); anonymous memory follows the heap up to the GC's goal,
	// twice the heap found live. The live heap of an idle daemon was
	// 10.9 MiB, 8 MiB of it the TUN reader's GSO buffers (128 of 64 KiB),
	// so garbage could take 11 MiB more before a collection: RSS ended
	// 45-70 % above a baseline taken before the heap had reached its goal
	// once. The buffers are now sized by what a split can put in each
	// (live heap 2.6 MiB, goal 5.7 MiB).
	soakResourceSlack = 0.10
	soakRecover       = 150 * time.Second
)

// TestSoak: ten nodes in a ring with three chords, peered over TCP and
// WebSocket. While five pairs ping each other every 200 ms and a TCP stream
// runs across the mesh, one random link at a time goes down for 1-5 s,
// every 8-16 s, for 60 s (with -soak: -soak-for, 10 min by default, the
// real soak). It reports and checks the share of pings answered outside
// the 6 s after each link change, that the stream arrives intact, and that
// each daemon's goroutines and open file descriptors (and, with -soak, RSS)
// come back to at most 10 % above their values before the flaps once every
// node has one link per edge again.
func TestSoak(t *testing.T) {
	needTool(t, "ping")
	dur := soakShort
	if *soak {
		dur = *soakFor
	}
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, seed>>1))
	t.Logf("soak: %v of flaps, seed %d", dur, seed)

	n := newNet(t)
	const count = 10
	nodes := make([]*Node, count)
	for i := range nodes {
		nodes[i] = n.Node(string(rune('a' + i)))
	}
	edges := [][2]int{{0, 5}, {2, 7}, {4, 9}}
	for i := range count {
		edges = append(edges, [2]int{i, (i + 1) % count})
	}
	links := make([]*Link, len(edges))
	for i, e := range edges {
		links[i] = n.Connect(nodes[e[0]], nodes[e[1]], true)
		scheme := "tcp"
		if i%4 == 3 {
			scheme = "ws"
		}
		n.Peer(nodes[e[0]], nodes[e[1]], links[i], scheme)
	}
	n.StartAll()
	degree := make([]int, count)
	for _, e := range edges {
		degree[e[0]]++
		degree[e[1]]++
	}
	// Healed: every node has exactly one link per edge, neither a link
	// missing nor a duplicate left from a redial, so that goroutines and
	// fds compare like with like.
	waitAllPeered := func(within time.Duration) {
		t.Helper()
		waitFor(t, "every node to have one link per edge", within, 500*time.Millisecond, func() (bool, string) {
			for i, nd := range nodes {
				if got := len(nd.Peers()); got != degree[i] {
					return false, fmt.Sprintf("%s has %d links, %d edges", nd.Name, got, degree[i])
				}
			}
			return true, ""
		})
	}
	waitAllPeered(peerTimeout)

	type pair struct{ from, to *Node }
	var pairs []pair
	for i := range count / 2 {
		pairs = append(pairs, pair{nodes[i], nodes[i+count/2]})
	}
	for _, p := range pairs {
		p.from.WaitReach(p.to.Addr)
	}

	// The stream: b → h, paced to last through the warm-up and the flaps.
	src, dst := nodes[1], nodes[7]
	total := int64(soakStreamRate) * int64((dur + soakWarmUp).Seconds())
	runFor := dur + 5*time.Minute
	sink := dst.StartHelper("tcpsink", "-listen", netip.AddrPortFrom(dst.Addr, 7001).String(), "-timeout", runFor.String())
	sink.WaitOutput(t, "ready", 15*time.Second)
	source := src.StartHelper("tcpsource", "-to", netip.AddrPortFrom(dst.Addr, 7001).String(),
		"-bytes", strconv.FormatInt(total, 10), "-rate", strconv.Itoa(soakStreamRate), "-seed", strconv.FormatUint(seed, 10), "-timeout", runFor.String())
	pingers := make([]*Bg, len(pairs))
	for i, p := range pairs {
		pingers[i] = p.from.StartBg("ping-"+p.from.Name+"-"+p.to.Name, "ping", "-6", "-n", "-D", "-O",
			"-i", fmt.Sprint(soakPingInterval.Seconds()), "-W", "2", "-w", fmt.Sprint(int(runFor.Seconds())), p.to.Addr.String())
	}

	// Warm up with the traffic running, then take the baseline. With
	// -soak, where RSS is checked, the baseline waits until every daemon
	// has run two collections since the warm-up began: RSS is the heap's
	// high-water mark, and the heap reaches its GC goal (twice the live
	// heap) once per cycle, so only after a whole cycle under traffic does
	// RSS show the steady state rather than the warm-up. The runtime
	// forces a collection every 2 min, so this waits 4 min at most.
	warm := make([]soakResources, count)
	for i, nd := range nodes {
		warm[i] = soakMeasure(nd)
	}
	time.Sleep(soakWarmUp)
	waitAllPeered(peerTimeout)
	if *soak {
		waitFor(t, "two GC cycles in every daemon since the warm-up", 5*time.Minute, 5*time.Second, func() (bool, string) {
			for i, nd := range nodes {
				if got := soakMeasure(nd).gcs; got < warm[i].gcs+2 {
					return false, fmt.Sprintf("%s: %d GCs since the warm-up", nd.Name, got-warm[i].gcs)
				}
			}
			return true, ""
		})
	}
	before := make([]soakResources, count)
	for i, nd := range nodes {
		before[i] = soakMeasure(nd)
	}

	var changes []time.Time
	end := time.Now().Add(dur)
	flaps := 0
	for time.Now().Before(end) {
		time.Sleep(time.Duration(8000+rng.IntN(8000)) * time.Millisecond)
		l := links[rng.IntN(len(links))]
		down := time.Duration(1000+rng.IntN(11000)) * time.Millisecond
		changes = append(changes, time.Now())
		l.A.MustIP("link", "set", l.IfA, "down")
		time.Sleep(down)
		changes = append(changes, time.Now())
		l.A.MustIP("link", "set", l.IfA, "up")
		flaps++
		t.Logf("flap %d: %s–%s down for %v", flaps, l.A.Name, l.B.Name, down.Round(time.Millisecond))
	}
	flapsOver := time.Now()

	// Healed: every peering back (static peers redial with back-off of
	// at most a minute), then the daemons' resources back near where they
	// were, polled every 5 s for up to soakRecover.
	waitAllPeered(90 * time.Second)
	healed := time.Since(flapsOver)
	after := make([]soakResources, count)
	var far []string
	recoverBy := time.Now().Add(soakRecover)
	for {
		far = far[:0]
		for i, nd := range nodes {
			after[i] = soakMeasure(nd)
			far = append(far, before[i].farFrom(after[i], nd.Name, *soak)...)
		}
		if len(far) == 0 || time.Now().After(recoverBy) {
			break
		}
		time.Sleep(5 * time.Second)
	}
	recovered := time.Since(flapsOver)
	for _, p := range pingers {
		p.Stop(syscall.SIGINT)
	}
	stopped := time.Now()

	// Pings: every sequence number sent while the soak ran, outside the
	// settle windows, answered or not.
	var sent, answered, excluded int
	for i, p := range pingers {
		s, a, x := soakPingCount(p.Output(), changes, stopped.Add(-3*time.Second))
		t.Logf("ping %s→%s: %d of %d answered outside the settle windows (%d in windows)", pairs[i].from.Name, pairs[i].to.Name, a, s, x)
		sent, answered, excluded = sent+s, answered+a, excluded+x
	}
	success := float64(answered) / float64(max(sent, 1))
	t.Logf("SOAK %v, %d flaps: pings answered outside the %v after each link change: %d of %d (%.2f %%); %d in those windows not counted; all peerings back %v after the last flap",
		dur, flaps, soakSettle, answered, sent, 100*success, excluded, healed.Round(time.Second))
	if sent == 0 || success < soakMinSuccess {
		t.Errorf("ping success outside the settle windows %.2f %%, want at least %.0f %%", 100*success, 100*soakMinSuccess)
	}

	// The stream carried on through the flaps: all of it arrives, intact.
	if ok, err := source.Wait(runFor); !ok || err != nil {
		t.Errorf("TCP stream source: finished %v, %v\n%s", ok, err, lastLines(source.Output(), 3))
	}
	if ok, err := sink.Wait(30 * time.Second); !ok || err != nil {
		t.Errorf("TCP stream sink: finished %v, %v\n%s", ok, err, lastLines(sink.Output(), 3))
	}
	sentLine := soakLine(source.Output(), "sent ")
	gotLine := soakLine(sink.Output(), "received ")
	if sentLine == "" || strings.TrimPrefix(sentLine, "sent ") != strings.TrimPrefix(gotLine, "received ") {
		t.Errorf("TCP stream: source %q, sink %q", sentLine, gotLine)
	} else {
		t.Logf("TCP stream %s→%s: %s, intact", src.Name, dst.Name, gotLine)
	}

	for i, nd := range nodes {
		b, a := before[i], after[i]
		mib := func(v int64) float64 { return float64(v) / (1 << 20) }
		t.Logf("%s: goroutines %d → %d, fds %d → %d, RSS %.1f → %.1f MiB (anonymous %.1f → %.1f, file %.1f → %.1f; heap live at the last GC %.1f → %.1f, in use %.1f → %.1f, allocated %.1f → %.1f, free but kept %.1f → %.1f, stacks %.1f → %.1f, GC goal %.1f → %.1f; GCs %d → %d)", nd.Name,
			b.goroutines, a.goroutines, b.fds, a.fds, mib(b.rss), mib(a.rss), mib(b.rssAnon), mib(a.rssAnon), mib(b.rssFile), mib(a.rssFile),
			mib(b.live), mib(a.live), mib(b.heap), mib(a.heap), mib(b.alloc), mib(a.alloc), mib(b.retained), mib(a.retained), mib(b.stacks), mib(a.stacks), mib(b.goal), mib(a.goal), b.gcs, a.gcs)
	}
	if len(far) > 0 {
		t.Errorf("%v after the last flap, resources still more than %.0f %% above their values before the flaps:\n%s",
			recovered.Round(time.Second), 100*soakResourceSlack, strings.Join(far, "\n"))
	} else {
		what := "goroutines and fds (RSS: see above; checked with -soak)"
		if *soak {
			what = "goroutines, fds and RSS"
		}
		t.Logf("%s of all %d daemons at most %.0f %% above their values before the flaps %v after the last flap",
			what, count, 100*soakResourceSlack, recovered.Round(time.Second))
	}
}

// soakResources is what a daemon holds, from its metrics.
type soakResources struct {
	goroutines, fds int
	rss             int64
	// Logged only, to tell where RSS goes: the heap in use, the live
	// heap and not yet collected garbage (alloc), freed heap the runtime
	// keeps mapped (idle, not released), goroutine stacks, and RSS split
	// into anonymous memory and file pages (the binary's code and data
	// touched so far), and the GC's heap goal, which is twice the heap
	// found live by the last collection (GOGC 100).
	heap, alloc, retained, stacks, goal int64
	rssAnon, rssFile                    int64
	// live is the heap the last collection found live, the one figure
	// that grows with held state; gcs counts collections.
	live int64
	gcs  int
}

// farFrom lists the resources of after that are more than
// soakResourceSlack above r's; RSS only when withRSS. Fewer goroutines or
// fds than at the start is no leak (the start can catch a handshake or a
// lookup in progress), so only growth counts.
func (r soakResources) farFrom(after soakResources, name string, withRSS bool) []string {
	type check struct {
		what          string
		before, after float64
	}
	checks := []check{
		{"goroutines", float64(r.goroutines), float64(after.goroutines)},
		{"open fds", float64(r.fds), float64(after.fds)},
	}
	if withRSS {
		checks = append(checks, check{"RSS", float64(r.rss), float64(after.rss)})
	}
	var far []string
	for _, c := range checks {
		if c.after > c.before*(1+soakResourceSlack) {
			far = append(far, fmt.Sprintf("%s: %s %.0f, was %.0f", name, c.what, c.after, c.before))
		}
	}
	return far
}

func soakMeasure(nd *Node) soakResources {
	nd.t.Helper()
	m := nd.Metrics()
	get := func(name string) float64 {
		v, ok := m.Sum(name)
		if !ok {
			nd.t.Fatalf("node %s: no %s metric", nd.Name, name)
		}
		return v
	}
	return soakResources{
		goroutines: int(get("go_goroutines")),
		fds:        int(get("process_open_fds")),
		rss:        int64(get("process_resident_memory_bytes")),
		heap:       int64(get("go_memstats_heap_inuse_bytes")),
		alloc:      int64(get("go_memstats_heap_alloc_bytes")),
		retained:   int64(get("go_memstats_heap_idle_bytes") - get("go_memstats_heap_released_bytes")),
		stacks:     int64(get("go_memstats_stack_inuse_bytes")),
		goal:       int64(get("go_memstats_next_gc_bytes")),
		live:       int64(get("go_gc_heap_live_bytes")),
		gcs:        int(get("go_gc_cycles_total_gc_cycles_total")),
		rssAnon:    procStatusBytes(nd, "RssAnon"),
		rssFile:    procStatusBytes(nd, "RssFile"),
	}
}

// procStatusBytes reads one "kB" field of the daemon's /proc/PID/status.
func procStatusBytes(nd *Node, field string) int64 {
	nd.t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", nd.PID()))
	if err != nil {
		nd.t.Fatalf("node %s: %v", nd.Name, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				nd.t.Fatalf("node %s: /proc status %q: %v", nd.Name, line, err)
			}
			return kb << 10
		}
	}
	nd.t.Fatalf("node %s: no %s in /proc/%d/status", nd.Name, field, nd.PID())
	return 0
}

var soakPingLine = regexp.MustCompile(`^\[(\d+)\.(\d+)\] (.*)icmp_seq=(\d+)(.*)$`)
var soakRTT = regexp.MustCompile(`time=([0-9.]+) ms`)

// soakPingCount reads the output of ping -D -O and counts the sequence
// numbers sent before until and outside the settle window after each of
// changes: how many were sent and answered, and how many were left out.
// A reply's send time is its timestamp less its round trip; an "no answer
// yet" or error line's is its timestamp less one interval at most, which
// is close enough for windows of seconds.
func soakPingCount(out string, changes []time.Time, until time.Time) (sent, answered, excluded int) {
	type seqInfo struct {
		at time.Time
		ok bool
	}
	seqs := map[int]*seqInfo{}
	for _, line := range strings.Split(out, "\n") {
		m := soakPingLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		sec, _ := strconv.ParseInt(m[1], 10, 64)
		frac := (m[2] + "000000000")[:9]
		nsec, _ := strconv.ParseInt(frac, 10, 64)
		ts := time.Unix(sec, nsec)
		seq, _ := strconv.Atoi(m[4])
		ok := strings.Contains(m[3], "bytes from") && !strings.Contains(line, "DUP!")
		at := ts.Add(-soakPingInterval)
		if ok {
			at = ts
			if r := soakRTT.FindStringSubmatch(line); r != nil {
				ms, _ := strconv.ParseFloat(r[1], 64)
				at = ts.Add(-time.Duration(ms * float64(time.Millisecond)))
			}
		}
		si := seqs[seq]
		if si == nil {
			seqs[seq] = &seqInfo{at: at, ok: ok}
			continue
		}
		// A late reply after "no answer yet" still counts as answered.
		si.ok = si.ok || ok
		if at.Before(si.at) {
			si.at = at
		}
	}
	keys := make([]int, 0, len(seqs))
	for k := range seqs {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	for _, k := range keys {
		si := seqs[k]
		if !si.at.Before(until) {
			continue
		}
		inWindow := false
		for _, c := range changes {
			if !si.at.Before(c) && si.at.Before(c.Add(soakSettle)) {
				inWindow = true
				break
			}
		}
		switch {
		case inWindow:
			excluded++
		case si.ok:
			sent++
			answered++
		default:
			sent++
		}
	}
	return sent, answered, excluded
}

// soakLine is the last line of out that starts with prefix, or "".
func soakLine(out, prefix string) string {
	last := ""
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, prefix) {
			last = strings.TrimSpace(l)
		}
	}
	return last
}

func TestSoakPingCount(t *testing.T) {
	base := time.Unix(2000, 0)
	at := func(ms int) time.Time { return base.Add(time.Duration(ms) * time.Millisecond) }
	var b strings.Builder
	// seq s is sent at s*200 ms; 10-14 are lost, 20 is answered late.
	for s := 1; s <= 60; s++ {
		send := at(s * 200)
		switch {
		case s >= 10 && s <= 14:
			ts := send.Add(soakPingInterval)
			fmt.Fprintf(&b, "[%d.%06d] no answer yet for icmp_seq=%d\n", ts.Unix(), ts.Nanosecond()/1000, s)
		case s == 20:
			ts := send.Add(soakPingInterval)
			fmt.Fprintf(&b, "[%d.%06d] no answer yet for icmp_seq=%d\n", ts.Unix(), ts.Nanosecond()/1000, s)
			ts = send.Add(1500 * time.Millisecond)
			fmt.Fprintf(&b, "[%d.%06d] 64 bytes from fd00::1: icmp_seq=%d ttl=64 time=1500 ms\n", ts.Unix(), ts.Nanosecond()/1000, s)
		default:
			ts := send.Add(2 * time.Millisecond)
			fmt.Fprintf(&b, "[%d.%06d] 64 bytes from fd00::1: icmp_seq=%d ttl=64 time=2.00 ms\n", ts.Unix(), ts.Nanosecond()/1000, s)
		}
	}
	// No change: 60 sent before 12.1 s, 55 answered.
	if s, a, x := soakPingCount(b.String(), nil, at(12100)); s != 60 || a != 55 || x != 0 {
		t.Errorf("no changes: %d sent, %d answered, %d excluded; want 60, 55, 0", s, a, x)
	}
	// A change at 1.9 s: seqs 10-39 (2.0-7.8 s) fall in its 6 s window.
	if s, a, x := soakPingCount(b.String(), []time.Time{at(1900)}, at(12100)); s != 30 || a != 30 || x != 30 {
		t.Errorf("change at 1.9 s: %d sent, %d answered, %d excluded; want 30, 30, 30", s, a, x)
	}
	// until cuts off the tail.
	if s, _, _ := soakPingCount(b.String(), nil, at(6100)); s != 30 {
		t.Errorf("until 6.1 s: %d sent, want 30", s)
	}
}
