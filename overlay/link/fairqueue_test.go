package link

import (
	"bytes"
	"io"
	"net"
	"testing"

	"github.com/pineconed/pineconed/internal/testhelp"
	"github.com/pineconed/pineconed/overlay/wire"
)

// trafficTo builds a tree-routed Traffic frame from keyA to dst with a
// payload of n bytes of fill.
func trafficTo(t testing.TB, dst wire.PublicKey, n int, fill byte) []byte {
	t.Helper()
	f := wire.Traffic{
		HopLimit:          wire.MaxHopLimit,
		DestinationCoords: wire.Coordinates{1, 2},
		SourceCoords:      wire.Coordinates{3},
		Destination:       dst,
		Source:            keyA,
		Payload:           bytes.Repeat([]byte{fill}, n),
	}
	b, err := f.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// twoFlows returns two destination keys such that the large frames from
// keyA to bulk fall in another bucket than frames of any size to small:
// the tests must not depend on a collision of the hash.
func twoFlows(t testing.TB) (bulk, small wire.PublicKey) {
	t.Helper()
	bulk = wire.PublicKeyOf(testhelp.SeedKey(10))
	b := flowBucket(trafficTo(t, bulk, 60000, 0))
	for seed := 11; seed < 100; seed++ {
		small = wire.PublicKeyOf(testhelp.SeedKey(byte(seed)))
		if flowBucket(trafficTo(t, small, 1, 0)) != b && flowBucket(trafficTo(t, small, 1000, 0)) != b {
			return bulk, small
		}
	}
	t.Fatal("no two keys in different buckets")
	return
}

func TestFlowBucketShortFrames(t *testing.T) {
	full := trafficTo(t, keyB, 10, 1)
	for n := 0; n < len(full)-10; n++ {
		if got := flowBucket(full[:n]); got != 0 {
			t.Fatalf("truncated to %d bytes: bucket %d, want 0", n, got)
		}
	}
	if got := flowBucket(full); got < 0 || got >= fairBuckets {
		t.Fatalf("bucket %d out of range", got)
	}
}

// TestSmallFrameOvertakesBulk is the point of the fair queue: a small frame
// queued behind a backlog of bulk frames to another destination is written
// after at most one of them, not after all of them.
func TestSmallFrameOvertakesBulk(t *testing.T) {
	testhelp.CheckNoLeak(t)
	bulkKey, smallKey := twoFlows(t)
	x, raw := net.Pipe()
	c := New(x, keyB, Config{KeepaliveInterval: -1})
	const bulkFrames = 40
	for i := range bulkFrames {
		if !c.Send(trafficTo(t, bulkKey, 60000, byte(i)), false) {
			t.Fatalf("bulk frame %d refused", i)
		}
	}
	small := trafficTo(t, smallKey, 40, 0xaa)
	if !c.Send(small, false) {
		t.Fatal("small frame refused")
	}
	// Queued before Start, so the writer sees the whole backlog at once.
	c.Start(1, newFakeSwitch())
	defer func() { c.Close(nil); <-c.Done() }()
	hdr := make([]byte, wire.HeaderSize)
	for i := range bulkFrames + 1 {
		if _, err := io.ReadFull(raw, hdr); err != nil {
			t.Fatal(err)
		}
		h, err := wire.ParseHeader(hdr)
		if err != nil {
			t.Fatal(err)
		}
		body := make([]byte, h.Length-wire.HeaderSize)
		if _, err := io.ReadFull(raw, body); err != nil {
			t.Fatal(err)
		}
		if h.Length == len(small) {
			if i > 1 {
				t.Fatalf("small frame written %d-th, behind %d bulk frames", i+1, i)
			}
			return
		}
	}
	t.Fatal("small frame never written")
}

// TestSmallFrameOvertakesBulkToSameKey: a ping to the node that a bulk copy
// goes to is not held behind the copy either, although both travel
// between the same two keys.
func TestSmallFrameOvertakesBulkToSameKey(t *testing.T) {
	big, small := trafficTo(t, keyB, 60000, 1), trafficTo(t, keyB, 100, 2)
	if len(small) > sparseFrame || flowBucket(big) == flowBucket(small) {
		t.Fatalf("small frame (%d bytes) in bucket %d, bulk in %d", len(small), flowBucket(small), flowBucket(big))
	}
	q := newFairQueue(DefaultTrafficQueue, DefaultTrafficQueueBytes)
	for range 40 {
		q.push(trafficTo(t, keyB, 60000, 1))
	}
	q.push(small)
	for range 2 {
		if len(q.pop()) == len(small) {
			return
		}
	}
	t.Fatal("small frame not among the first two out")
}

// TestFullQueueEvictsFattestFlow checks the bounds: with the byte budget
// filled by one bulk flow, a frame of another flow is still queued, one bulk
// frame is dropped and counted for it, and a further bulk frame is refused.
func TestFullQueueEvictsFattestFlow(t *testing.T) {
	bulkKey, smallKey := twoFlows(t)
	x, y := net.Pipe()
	defer y.Close()
	c := New(x, keyB, Config{TrafficQueueBytes: 1 << 20})
	defer c.Close(nil)
	n := 0
	for c.Send(trafficTo(t, bulkKey, 60000, 1), false) {
		n++
	}
	st := c.Stats()
	if st.Drops[DropTrafficQueueFull.String()] != 1 || st.TrafficQueued != n || st.TrafficQueuedBytes > 1<<20 {
		t.Fatalf("after filling with %d bulk frames: %+v", n, st)
	}
	if !c.Send(trafficTo(t, smallKey, 40, 2), false) {
		t.Fatal("small frame of another flow refused")
	}
	st = c.Stats()
	if st.Drops[DropTrafficQueueFull.String()] != 2 || st.TrafficQueued != n || st.TrafficQueuedBytes > 1<<20 {
		t.Fatalf("after the small frame: %+v", st)
	}
}

// TestFairQueueRoundRobin checks the byte shares: two backlogged buckets
// of different frame sizes get about the same bytes out of the queue.
func TestFairQueueRoundRobin(t *testing.T) {
	bulkKey, smallKey := twoFlows(t)
	q := newFairQueue(4096, 64<<20)
	for range 100 {
		q.push(trafficTo(t, bulkKey, 30000, 1))
	}
	for range 3000 {
		q.push(trafficTo(t, smallKey, 1000, 2))
	}
	var bulkBytes, smallBytes int
	for range 500 {
		f := q.pop()
		if len(f) > 10000 {
			bulkBytes += len(f)
		} else {
			smallBytes += len(f)
		}
	}
	if r := float64(bulkBytes) / float64(smallBytes); r < 0.8 || r > 1.25 {
		t.Fatalf("bulk %d bytes, small %d bytes: ratio %.2f, want about 1", bulkBytes, smallBytes, r)
	}
	for q.pop() != nil {
	}
	if f, b := q.queued(); f != 0 || b != 0 {
		t.Fatalf("drained queue holds %d frames, %d bytes", f, b)
	}
}
