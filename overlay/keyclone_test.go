package overlay

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/pineconed/pineconed/internal/testhelp"
	"github.com/pineconed/pineconed/overlay/router"
)

// fakeClock is a clock the test moves forward; the nodes' tick loops run
// on their timers (the synctest bubble's) and read it.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Two nodes run with the same key file, a and its clone, both linked to
// b. Once the clone's root sequence is ahead (it restarted its tree when
// its only peer went), b follows it and a sees its own key as root with a
// sequence it never issued: a logs one ERROR naming the link to b, and
// keeps the link.
func TestKeyCloneLoggedOnceNamingTheLink(t *testing.T) {
	synctest.Test(t, testKeyCloneLoggedOnceNamingTheLink)
}

// testKeyCloneLoggedOnceNamingTheLink runs in a synctest bubble: a sleep
// of more than the tick interval is then sure to see every node's tick
// loop run, however loaded the machine, and takes no real time.
func testKeyCloneLoggedOnceNamingTheLink(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	la, buf := testhelp.NewLogger(t)
	a := newNode(t, 1, Config{Logger: la, Now: clk.now})
	clone := newNode(t, 1, Config{Now: clk.now})
	b := newNode(t, 2, Config{Now: clk.now})

	ab := connect(t, a, b)
	testhelp.WaitFor(t, "b a child of a", 10*time.Second, func() bool { return b.Self().Parent != router.NoPort })
	// The clone's first link goes; its next one starts a new sequence.
	// Both ends are gone and nothing of it is in flight before the next
	// link may take its port.
	first := connect(t, clone, b)
	first.Close(errors.New("test: clone's first link gone"))
	first.wg.Wait()
	first.peer.wg.Wait()
	testhelp.WaitFor(t, "the clone alone", 10*time.Second, func() bool { return clone.Self().Peers == 0 && b.Self().Peers == 1 })
	connect(t, clone, b)
	// The evidence must be on a's port before the clock moves: b having
	// the clone's sequence is not enough, its announcement to a may still
	// be in flight, and a would then start the confirmation window at the
	// advanced time and never reach its end.
	testhelp.WaitFor(t, "a holds b's announcement of the clone's sequence", 10*time.Second, func() bool {
		for _, p := range a.Peers() {
			if p.Port == ab.localPort && p.Router.HasAnnouncement && p.Router.Root.Key == a.PublicKey() && p.Router.Root.Seq > a.Self().Root.Seq {
				return true
			}
		}
		return false
	})
	if n := len(buf.Lines("level=ERROR")); n != 0 {
		t.Fatalf("%d ERROR lines before router.KeyCloneConfirm:\n%s", n, buf)
	}

	clk.advance(router.KeyCloneConfirm)
	testhelp.WaitFor(t, "the clone logged", 10*time.Second, func() bool { return len(buf.Lines("another node uses our public key")) > 0 })
	line := buf.Lines("another node uses our public key")[0]
	for _, want := range []string{"level=ERROR", fmt.Sprintf("port=%d ", ab.localPort.Number()), "peer=" + b.PublicKey().String(), "uri=mem", "transport=mem"} {
		if !strings.Contains(line, want) {
			t.Errorf("the clone's log line\n%s\nlacks %q", line, want)
		}
	}
	// The roots' refreshes bring more of the clone's announcements on the
	// same link; ticks go on. Nothing more is logged.
	for range 2 {
		clk.advance(router.AnnouncementInterval)
		time.Sleep(1100 * time.Millisecond) // one tick of each loop, in the bubble's time
		clk.advance(router.KeyCloneConfirm)
		time.Sleep(1100 * time.Millisecond)
	}
	synctest.Wait()
	if lines := buf.Lines("another node uses our public key"); len(lines) != 1 {
		t.Errorf("%d clone lines, want 1:\n%s", len(lines), strings.Join(lines, "\n"))
	}
	if a.Self().Peers != 1 {
		t.Errorf("a has %d peers after the clone report, want b still there", a.Self().Peers)
	}
}
