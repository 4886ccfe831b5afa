package netns

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pineconed/pineconed/addressing"
	"github.com/pineconed/pineconed/config"
	"github.com/pineconed/pineconed/overlay/wire"
)

// TestFirstReplyFreshLine starts a fresh 5-node line a–b–c–d–e over TCP
// 8 times (20 with -soak), with new keys each time (so the keys fall in a
// different order along the line), and pings e from a as soon as every
// peering is up. The test logs how long each first reply took, split into
// the lookup and what came after it; a start without a reply is logged and
// counted (see there).
//
// The time from "peerings up" includes SNEK's convergence, set by the
// router's bootstrap timers: in about 1 start in 5 the route a→e and back
// forms only 5–8 s after the peerings, one 5 s bootstrap interval late,
// when a node's first bootstrap stopped at a node on the way that did not
// know the real neighbour yet. The goal
// is the first reply within 2 s of the route existing, which no node can
// see whole. What the test can bound: a pending lookup sends a request at
// least every 500 ms for its first 4 s and every second after (and at once
// when a's own routes change), the answered request is the first after the
// route formed, so the route existed at most that gap (plus a round trip)
// before the lookup was answered. The reply after the route is therefore at
// most the time from the answer to the reply plus that gap; the test logs
// this bound per start and fails when it exceeds 2 s. The retry schedule
// itself is tested deterministically in addressing.
func TestFirstReplyFreshLine(t *testing.T) {
	starts := 8
	if *soak {
		starts = 20
	}
	n := newNet(t)
	nodes := make([]*Node, 5)
	for i := range nodes {
		nodes[i] = n.Node(string(rune('a' + i)))
	}
	for i := 1; i < len(nodes); i++ {
		l := n.Connect(nodes[i-1], nodes[i], true)
		n.Peer(nodes[i-1], nodes[i], l, "tcp")
	}
	a, e := nodes[0], nodes[len(nodes)-1]
	var took, afterRoute []time.Duration
	failed := 0
	for s := range starts {
		if s > 0 {
			for _, nd := range nodes {
				if _, err := nd.Stop(syscall.SIGTERM); err != nil {
					t.Fatalf("start %d: stopping %s: %v", s, nd.Name, err)
				}
				newIdentity(t, nd)
			}
		}
		// Each node dials the next: starting from the end, every dial
		// finds its listener up.
		for i := len(nodes) - 1; i >= 0; i-- {
			nodes[i].Start()
		}
		for i := 0; i+1 < len(nodes); i++ {
			nodes[i].WaitPeer(nodes[i+1])
		}
		begin := time.Now()
		out, err := a.Ping6(e.Addr, "-c", "1", "-W", "20")
		el := time.Since(begin)
		if err != nil || !strings.Contains(out, "1 received") {
			// Logged and counted, not failed: in about 1 of 20 fresh
			// starts (on main before issue 10 too) SNEK has not formed
			// a route a→e and back within the 11 s a lookup lasts, a
			// convergence matter of the bootstrap timers, not of the
			// lookup retries this test measures.
			t.Logf("start %d: no reply from e within 20 s: %v\n%s", s+1, err, lastLines(out, 3))
			failed++
			continue
		}
		took = append(took, el)
		// Log times are in milliseconds; the lookup starts after begin.
		since := begin.Truncate(time.Millisecond)
		found, ok := firstTimeSince(a, since, "address lookup found")
		if !ok {
			t.Fatalf("start %d: a got a reply from e but logged no lookup found", s+1)
		}
		lookup, reply := found.Sub(begin), begin.Add(el).Sub(found)
		// The gap between the answered request and the one before it.
		gap := 500 * time.Millisecond
		if lookup > 4*time.Second {
			gap = time.Second
		}
		bound := reply + gap
		afterRoute = append(afterRoute, bound)
		t.Logf("start %d: first reply after %s: lookup %s, then %s; at most %s after the route formed", s+1,
			el.Round(10*time.Millisecond), lookup.Round(10*time.Millisecond), reply.Round(time.Millisecond), bound.Round(10*time.Millisecond))
		if el > 2*time.Second {
			// Slow from the peerings: did the route form at a (a resend
			// on a's route change just before the answer) or elsewhere?
			t.Logf("start %d: a's lookup resends on route changes:\n%s", s+1, strings.Join(matchesSince(a, since, "pending lookups retried"), "\n"))
		}
		if bound > 2*time.Second {
			t.Errorf("start %d: first reply up to %s after the route formed, want at most 2 s; a's log: %s\n%s", s+1, bound.Round(10*time.Millisecond),
				lastMatch(a, "session established"), strings.Join(matchesSince(a, since, "pending lookups retried"), "\n"))
		}
	}
	if len(took) == 0 {
		t.Fatalf("no reply in any of %d starts", starts)
	}
	sorted := slices.Clone(took)
	slices.Sort(sorted)
	within2s := 0
	for _, d := range took {
		if d <= 2*time.Second {
			within2s++
		}
	}
	parts := make([]string, len(took))
	for i, d := range took {
		parts[i] = d.Round(10 * time.Millisecond).String()
	}
	t.Logf("first reply a→e after all peerings were up, %d fresh starts: %s", starts, strings.Join(parts, " "))
	t.Logf("min %s, median %s, max %s; %d of %d within 2 s of the peerings, %d without a reply", sorted[0].Round(time.Millisecond),
		sorted[len(sorted)/2].Round(time.Millisecond), sorted[len(sorted)-1].Round(time.Millisecond), within2s, starts, failed)
	slices.Sort(afterRoute)
	t.Logf("first reply after the route formed, at most: median %s, max %s", afterRoute[len(afterRoute)/2].Round(10*time.Millisecond),
		afterRoute[len(afterRoute)-1].Round(10*time.Millisecond))
}

// newIdentity gives a stopped node a new key, for a fresh start.
func newIdentity(t *testing.T, nd *Node) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(nd.KeyPath, config.EncodeKey(priv), 0o600); err != nil {
		t.Fatal(fmt.Errorf("node %s: %w", nd.Name, err))
	}
	nd.Key = wire.PublicKeyOf(priv)
	nd.Addr = addressing.NodeAddr(nd.Key)
}

// lastMatch is the last line of nd's log containing substr, or "".
func lastMatch(nd *Node, substr string) string {
	data, err := os.ReadFile(nd.LogPath)
	if err != nil {
		return ""
	}
	lines := strings.Split(string(data), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], substr) {
			return lines[i]
		}
	}
	return ""
}

// matchesSince are the lines of nd's log containing substr that were
// logged at or after since (by their time= field).
func matchesSince(nd *Node, since time.Time, substr string) []string {
	data, err := os.ReadFile(nd.LogPath)
	if err != nil {
		return nil
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		if !strings.Contains(line, substr) {
			continue
		}
		if at, ok := lineTime(line); ok && !at.Before(since) {
			out = append(out, line)
		}
	}
	return out
}

// firstTimeSince is the time of the first line of nd's log containing
// substr that was logged at or after since.
func firstTimeSince(nd *Node, since time.Time, substr string) (time.Time, bool) {
	lines := matchesSince(nd, since, substr)
	if len(lines) == 0 {
		return time.Time{}, false
	}
	return lineTime(lines[0])
}

// lineTime is a log line's time= field.
func lineTime(line string) (time.Time, bool) {
	ts, _, _ := strings.Cut(strings.TrimPrefix(line, "time="), " ")
	at, err := time.Parse(time.RFC3339Nano, ts)
	return at, err == nil
}
