package peers

import (
	"strings"
	"testing"
	"time"

	"github.com/pineconed/pineconed/internal/testhelp"
	"github.com/pineconed/pineconed/overlay"
)

// One peering, with real overlay.Nodes underneath, gives exactly one "peer
// connected" and one "peer disconnected" line on each side at info level,
// and each carries everything a user needs to tell peerings apart.
func TestPeerEventsLoggedOnce(t *testing.T) {
	testhelp.CheckNoLeak(t)
	logA, bufA := testhelp.NewLogger(t)
	logB, bufB := testhelp.NewLogger(t)
	nodeA := overlay.New(privA, overlay.Config{Logger: logA})
	nodeB := overlay.New(privB, overlay.Config{Logger: logB})
	t.Cleanup(func() { nodeA.Close(); nodeB.Close() })
	ma := startManager(t, Config{PrivateKey: privA, Listen: mkURIs("tcp://127.0.0.1:0"), Logger: logA}, nodeA)
	uri := "tcp://" + ma.ListenAddrs()[0].String()
	mb, err := New(Config{PrivateKey: privB, Static: mkURIs(uri), Logger: logB}, nodeB)
	if err != nil {
		t.Fatal(err)
	}
	testhelp.WaitFor(t, "peering", 5*time.Second, func() bool { return len(nodeA.Peerings()) == 1 && len(nodeB.Peerings()) == 1 })
	if err := mb.Remove(mkURI(uri)); err != nil {
		t.Fatal(err)
	}
	// The registry forgets the link just before the line is logged.
	testhelp.WaitFor(t, "A to see the end", 5*time.Second, func() bool {
		return len(nodeA.Peerings()) == 0 && len(bufA.Lines(`msg="peer disconnected"`)) > 0
	})
	mb.Close()

	for _, c := range []struct {
		side    string
		buf     *testhelp.LogBuffer
		peer    string
		uri     string
		origin  string
		inbound string
	}{
		{"A", bufA, keyB.String(), "uri=tcp://127.0.0.1:", "origin=listener", "inbound=true"},
		{"B", bufB, keyA.String(), "uri=" + uri, "origin=static", "inbound=false"},
	} {
		for _, msg := range []string{"peer connected", "peer disconnected"} {
			var lines []string
			for _, l := range c.buf.Lines(`msg="` + msg + `"`) {
				if strings.Contains(l, "level=INFO") {
					lines = append(lines, l)
				}
			}
			if len(lines) != 1 {
				t.Fatalf("%s logged %q %d times at info:\n%s", c.side, msg, len(lines), strings.Join(lines, "\n"))
			}
			want := []string{"port=1", "peer=" + c.peer, c.uri, "transport=tcp", c.origin, c.inbound}
			if msg == "peer disconnected" {
				want = append(want, "reason=", "duration=")
			}
			for _, w := range want {
				if !strings.Contains(lines[0], w) {
					t.Errorf("%s: %q line lacks %q: %s", c.side, msg, w, lines[0])
				}
			}
		}
		// The node's own bookkeeping stays at debug.
		for _, l := range c.buf.Lines("port attached") {
			if !strings.Contains(l, "level=DEBUG") {
				t.Errorf("%s: node's attach line not at debug: %s", c.side, l)
			}
		}
	}
}
