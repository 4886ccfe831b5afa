package peers

import (
	"bytes"
	"context"
	"io"
	"net"
	"testing"
	"testing/synctest"
	"time"

	"github.com/pineconed/pineconed/internal/testhelp"
	"github.com/pineconed/pineconed/overlay"
	"github.com/pineconed/pineconed/overlay/link"
)

// An outbound link's "peer connected" waits for the first frame the link
// reads (firstFrameWatch), which the watch sees on its way to the node:
// the wait ends at that frame, at once; a link that ends without one is a
// refusal; a remote that stays quiet for firstFrameWait is connected all
// the same; a peering cancelled meanwhile (its static peer removed) ends
// the wait at once. Each case runs in a synctest bubble, so "at once" is the
// bubble's clock not moving, however loaded the machine is.
func TestFirstFrameWatch(t *testing.T) {
	testhelp.CheckNoLeak(t)
	for _, c := range []struct {
		name   string
		remote func(raw net.Conn) // what the remote end does
		want   bool
		after  time.Duration
		frames int  // what the node receives
		cancel bool // the peering's context is cancelled at the start
	}{
		{"frame", func(raw net.Conn) { raw.Write(bytes.Clone(greeting)) }, true, 0, 1, false},
		{"closed", func(raw net.Conn) { raw.Close() }, false, 0, 0, false},
		{"quiet", func(net.Conn) {}, true, firstFrameWait, 0, false},
		{"cancelled", func(net.Conn) {}, true, 0, 0, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				x, raw := net.Pipe()
				defer raw.Close()
				// No timer of the link's own may end it before the watch
				// has decided.
				l := link.New(x, keyB, link.Config{KeepaliveInterval: -1, ReadTimeout: -1})
				n := newFakeNode()
				port, err := n.Attach(overlay.PeerInfo{Key: keyB}, l)
				if err != nil {
					t.Fatal(err)
				}
				w := newFirstFrameWatch(n)
				l.Start(port, w)
				// The remote reads what the link writes (the fake node's
				// greeting) until the pipe closes.
				go io.Copy(io.Discard, raw)
				go c.remote(raw)

				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				if c.cancel {
					cancel()
				}
				start := time.Now()
				got := w.wait(ctx, l, firstFrameWait)
				if waited := time.Since(start); got != c.want || waited != c.after {
					t.Errorf("wait: %v after %v, want %v after %v", got, waited, c.want, c.after)
				}
				l.Close(nil)
				<-l.Done()
				if got := len(n.got(port)); got != c.frames {
					t.Errorf("the node received %d frames, want %d: the watch passes every frame on", got, c.frames)
				}
			})
		})
	}
}
