package session

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/pineconed/pineconed/envelope"
	"github.com/pineconed/pineconed/overlay/wire"
)

// TestHandshakeQueue: the queue takes copies (the caller's buffer may be
// reused at once), refuses and counts messages beyond its size and
// payloads too long to be handshakes, and Run hands what it holds to the
// Manager until stopped.
func TestHandshakeQueue(t *testing.T) { synctest.Test(t, testHandshakeQueue) }

// testHandshakeQueue runs in a synctest bubble, so that it can wait for Run
// to have handled everything queued (Run blocked on the empty queue)
// rather than poll the counters.
func testHandshakeQueue(t *testing.T) {
	f := newFabric(t)
	a, b := f.add(1, Config{}), f.add(2, Config{})
	q := b.m.NewHandshakeQueue(2)
	a.m.SendEcho(t0, b.key, 1, nil)
	init := f.take()[0]
	if !IsHandshake(envelope.Type(init.payload[5])) || IsHandshake(envelope.TypeTransport) || IsHandshake(envelope.TypeLookupRequest) {
		t.Fatal("IsHandshake disagrees with the message types")
	}
	buf := append([]byte(nil), init.payload...)
	if !q.Offer(a.key, buf) {
		t.Fatal("first message refused")
	}
	clear(buf) // the queue must not alias it
	if !q.Offer(a.key, init.payload) || q.Offer(a.key, init.payload) {
		t.Fatal("a queue of 2 did not take exactly 2")
	}
	if q.Drops() != 1 {
		t.Fatalf("%d drops, want 1", q.Drops())
	}
	if q.Offer(a.key, make([]byte, maxHandshakeMessage+1)) || b.m.Stats().Counts[Malformed] != 1 {
		t.Fatal("an oversized payload was queued or not counted")
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	var errs int
	go func() {
		defer close(done)
		q.Run(stop, func() time.Time { return t0 }, func(wire.PublicKey, error) { errs++ })
	}()
	synctest.Wait()
	close(stop)
	<-done
	// The first copy is answered; the second is the same initiation, a
	// replay (so the first copy was not clobbered by clear).
	if st := b.m.Stats(); st.Counts[ResponsesSent] != 1 || st.Counts[ReplayedInits] != 1 || errs != 1 {
		t.Fatalf("responses %d, replays %d, errors %d; want 1, 1, 1", st.Counts[ResponsesSent], st.Counts[ReplayedInits], errs)
	}
}
