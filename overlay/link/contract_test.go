package link

import (
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/pineconed/pineconed/internal/testhelp"
	"github.com/pineconed/pineconed/overlay/router"
)

// lockedSwitch is a receiver whose Detach takes a lock, as overlay.Node's
// does.
type lockedSwitch struct {
	*fakeSwitch
	mu *sync.Mutex
}

func (s lockedSwitch) Detach(port router.Port, reason error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fakeSwitch.Detach(port, reason)
}

// TestCloseDoesNotCallBack holds the overlay.Link contract for Conn: Close
// returns without calling the receiver, so the node may call it with its
// own lock held; the link detaches afterwards from its own goroutine, once.
func TestCloseDoesNotCallBack(t *testing.T) {
	testhelp.CheckNoLeak(t)
	x, y := net.Pipe()
	defer y.Close()
	var nodeLock sync.Mutex
	sw := lockedSwitch{newFakeSwitch(), &nodeLock}
	c := New(x, keyB, fastConfig())
	c.Start(1, sw)
	reason := errors.New("protocol error made by the test")

	nodeLock.Lock()
	returned := make(chan struct{})
	go func() {
		defer close(returned)
		c.Close(reason)
	}()
	select {
	case <-returned:
	case <-time.After(10 * time.Second):
		nodeLock.Unlock()
		t.Fatal("Close did not return while the receiver's lock was held")
	}
	nodeLock.Unlock()

	select {
	case <-c.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the link did not finish after Close")
	}
	if got := sw.detaches(1); len(got) != 1 || !errors.Is(got[0], reason) {
		t.Fatalf("detaches %v, want exactly one with %v", got, reason)
	}
}
