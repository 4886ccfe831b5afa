package netns

import (
	"flag"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

// soak turns on the long variants of the tests that watch a network for a
// while (go test ./tests/netns -run TestIdlePeerings -soak).
var soak = flag.Bool("soak", false, "run the long (minutes) variants of the soak tests")

// TestIdlePeerings: a pair of nodes peered over tcp, ws and wss (one pair
// each, in parallel) stays idle, then carries one ping every 4 s; no
// peering may reconnect and no ping may be lost. WebSocket peerings used
// to flap whenever they were idle, because a stale write deadline killed
// the next keepalive (issue 10). Each phase lasts 30 s, 90 s with -soak.
func TestIdlePeerings(t *testing.T) {
	phase := 30 * time.Second
	if *soak {
		phase = 90 * time.Second
	}
	for _, scheme := range []string{"tcp", "ws", "wss"} {
		t.Run(scheme, func(t *testing.T) {
			t.Parallel()
			testIdlePeering(t, scheme, phase)
		})
	}
}

func testIdlePeering(t *testing.T, scheme string, phase time.Duration) {
	n := newNet(t)
	nodes, _ := n.Line(2, scheme)
	a, b := nodes[0], nodes[1]
	// One exchange first, so that the idle phase starts with the lookup
	// done and a session up, as on a link a user has been using.
	a.WaitReach(b.Addr)
	start := time.Now()

	time.Sleep(phase)
	checkNoReconnect(t, "idle", start, a, b)

	const interval = 4 * time.Second
	count := int(phase/interval) + 1
	out, err := a.Ping6(b.Addr, "-c", fmt.Sprint(count), "-i", fmt.Sprint(interval.Seconds()), "-W", "3")
	if err != nil {
		t.Fatalf("ping -c %d -i 4 from a to b: %v\n%s", count, err, out)
	}
	want := fmt.Sprintf("%d packets transmitted, %d received", count, count)
	if !strings.Contains(out, want) {
		t.Fatalf("pings over %s were lost (want %q):\n%s", scheme, want, lastLines(out, 3))
	}
	checkNoReconnect(t, "pinging", start, a, b)
	t.Logf("%s: idle %s, then %d pings at 4 s: no reconnect, no loss; %s", scheme, phase, count, lastLines(out, 1))

	// The keepalives that kept the idle link up are counted as sent.
	for _, nd := range []*Node{a, b} {
		if f := nd.Stats().Frames["keepalive"]; f.FramesOut == 0 || f.FramesIn == 0 {
			t.Errorf("node %s: keepalive frames out %d, in %d after %s; want both above 0", nd.Name, f.FramesOut, f.FramesIn, time.Since(start).Round(time.Second))
		}
	}
}

// peerDisconnected matches the daemon's (text) log line for a peering that
// ended.
var peerDisconnected = regexp.MustCompile(`(?m)^.*msg="peer disconnected".*$`)

// checkNoReconnect fails the test when any of nodes has logged a peering
// that ended, or lists a peering younger than the time since start.
func checkNoReconnect(t *testing.T, phase string, start time.Time, nodes ...*Node) {
	t.Helper()
	for _, nd := range nodes {
		log, err := os.ReadFile(nd.LogPath)
		if err != nil {
			t.Fatal(err)
		}
		if lines := peerDisconnected.FindAllString(string(log), -1); len(lines) > 0 {
			t.Fatalf("node %s: %d peerings ended while %s:\n%s", nd.Name, len(lines), phase, strings.Join(lines, "\n"))
		}
		peers := nd.Peers()
		if len(peers) != 1 {
			t.Fatalf("node %s: %d peerings after %s %s, want 1", nd.Name, len(peers), phase, time.Since(start).Round(time.Second))
		}
		if up, min := time.Duration(peers[0].UptimeSeconds)*time.Second, time.Since(start)-time.Second; up < min {
			t.Fatalf("node %s: peering up for %s only, %s after the test began", nd.Name, up, time.Since(start).Round(time.Second))
		}
	}
}
