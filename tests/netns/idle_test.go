package netns

import (
	"context"
	"flag"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// soak turns on the long variants of the tests that watch a network for a
// while (go test ./tests/netns -run TestIdlePeerings -soak).
var soak = flag.Bool("soak", false, "run the long (minutes) variants of the soak tests")

// TestIdlePeerings: a pair of nodes peered over tcp, one over ws and one
// over wss stay idle, then carry one ping every 4 s; no peering may
// reconnect and no ping may be lost. WebSocket peerings used to flap
// whenever they were idle, because a stale write deadline killed the next
// keepalive (issue 10). Each phase lasts 30 s, 90 s with -soak; the three
// pairs share the phases, so the test takes one run of them.
func TestIdlePeerings(t *testing.T) {
	phase := 30 * time.Second
	if *soak {
		phase = 90 * time.Second
	}
	n := newNet(t)
	schemes := []string{"tcp", "ws", "wss"}
	pairs := make([][2]*Node, len(schemes))
	for i, scheme := range schemes {
		a, b := n.Node(scheme+"a"), n.Node(scheme+"b")
		n.Chain(scheme, a, b)
		// One exchange first, so that the idle phase starts with the
		// lookup done and a session up, as on a link in use.
		a.WaitReach(b.Addr)
		pairs[i] = [2]*Node{a, b}
	}
	start := time.Now()

	time.Sleep(phase)
	for _, p := range pairs {
		checkNoReconnect(t, "idle", start, p[0], p[1])
	}

	const interval = 4 * time.Second
	count := int(phase/interval) + 1
	outs := make([]string, len(pairs))
	errs := make([]error, len(pairs))
	var wg sync.WaitGroup
	// The pings outlast commandTimeout with -soak: they get their own.
	ctx, cancel := context.WithTimeout(context.Background(), phase+30*time.Second)
	defer cancel()
	for i, p := range pairs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := p[0].Command(ctx, "ping", "-6", "-n", "-c", fmt.Sprint(count), "-i", fmt.Sprint(interval.Seconds()), "-W", "3", p[1].Addr.String()).CombinedOutput()
			outs[i], errs[i] = string(out), err
		}()
	}
	wg.Wait()
	want := fmt.Sprintf("%d packets transmitted, %d received", count, count)
	for i, p := range pairs {
		if errs[i] != nil || !strings.Contains(outs[i], want) {
			t.Errorf("%s: ping -c %d -i 4 from %s to %s lost replies (want %q): %v\n%s", schemes[i], count, p[0].Name, p[1].Name, want, errs[i], lastLines(outs[i], 3))
			continue
		}
		t.Logf("%s: idle %s, then %d pings at 4 s: no reconnect, no loss; %s", schemes[i], phase, count, lastLines(outs[i], 1))
	}
	for i, p := range pairs {
		checkNoReconnect(t, "pinging", start, p[0], p[1])
		// The keepalives that kept the idle link up are counted as sent.
		for _, nd := range p {
			if f := nd.Stats().Frames["keepalive"]; f.FramesOut == 0 || f.FramesIn == 0 {
				t.Errorf("%s: node %s: keepalive frames out %d, in %d after %s; want both above 0", schemes[i], nd.Name, f.FramesOut, f.FramesIn, time.Since(start).Round(time.Second))
			}
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
