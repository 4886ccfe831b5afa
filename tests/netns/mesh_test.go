package netns

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestMeshAllPairs: seven nodes in a ring with two chords, peered over a
// mix of TCP and WebSocket, every node reaching every other one. This
// exercises the tree and SNEK with more than one path and several hops
// (up to three), lookups and sessions between all 42 ordered pairs.
func TestMeshAllPairs(t *testing.T) {
	needTool(t, "ping")
	n := newNet(t)
	const count = 7
	nodes := make([]*Node, count)
	for i := range nodes {
		nodes[i] = n.Node(string(rune('a' + i)))
	}
	edges := [][2]int{{0, 1}, {1, 2}, {2, 3}, {3, 4}, {4, 5}, {5, 6}, {6, 0}, {0, 3}, {2, 5}}
	for i, e := range edges {
		l := n.Connect(nodes[e[0]], nodes[e[1]], true)
		scheme := "tcp"
		if i%3 == 2 {
			scheme = "ws"
		}
		n.Peer(nodes[e[0]], nodes[e[1]], l, scheme)
	}
	n.StartAll()
	for _, e := range edges {
		nodes[e[0]].WaitPeer(nodes[e[1]])
	}

	// Every source pings every destination, sources in parallel.
	start := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []string
	retried := 0
	for _, from := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, to := range nodes {
				if to == from {
					continue
				}
				ok := false
				var out string
				// Bounded: 15 tries of up to 2 s each.
				for try := 0; try < 15 && !ok; try++ {
					var err error
					out, err = from.Ping6(to.Addr, "-c", "1", "-W", "2")
					ok = err == nil
					if !ok && try == 0 {
						mu.Lock()
						retried++
						mu.Unlock()
					}
				}
				if !ok {
					mu.Lock()
					failures = append(failures, fmt.Sprintf("%s→%s: %s", from.Name, to.Name, lastLines(out, 2)))
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if len(failures) > 0 {
		t.Fatalf("%d of %d pairs unreachable:\n%s", len(failures), count*(count-1), strings.Join(failures, "\n"))
	}
	t.Logf("all %d ordered pairs reached each other within %s (%d needed more than one ping of 2 s)",
		count*(count-1), time.Since(start).Round(time.Millisecond), retried)
	root := nodes[0].Self().RootKey
	for _, nd := range nodes[1:] {
		if r := nd.Self().RootKey; r != root {
			t.Errorf("%s has tree root %s…, %s has %s…", nd.Name, r[:16], nodes[0].Name, root[:16])
		}
	}
}
