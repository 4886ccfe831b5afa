package link

import (
	"encoding/binary"
	"sync"

	"github.com/pineconed/pineconed/internal/bufpool"
	"github.com/pineconed/pineconed/overlay/wire"
)

// Fair queue parameters.
const (
	// fairBuckets is how many flows the traffic queue keeps apart. Frames
	// are hashed into buckets by their source and destination keys; two
	// flows that share a bucket share its turn. Eight keeps the state a
	// few hundred bytes while making a collision between one bulk and one
	// interactive flow unlikely (1 in 8).
	fairBuckets = 8
	// fairQuantum is the bytes a bucket may send per round. A quarter of
	// the largest frame: a small frame behind a bulk flow waits for at
	// most one bulk frame, and buckets of small frames get their bytes'
	// share without the bookkeeping of a quantum per frame.
	fairQuantum = 16 << 10
	// sparseFrame is the largest frame that counts as interactive: a ping,
	// a keystroke, a TCP acknowledgement, wrapped in a session and a
	// Traffic frame. The link cannot see the flows inside a session (the
	// payload is encrypted), so small frames between two keys are kept
	// apart from the large ones between the same keys: a ping to a node
	// that is also receiving a bulk copy does not wait behind the copy.
	// The reordering this allows within a session is at most one queue's
	// length (DefaultTrafficQueue frames), well inside the session's
	// replay window.
	sparseFrame = 512
)

// fairQueue is the link's traffic queue: deficit round robin over
// fairBuckets FIFOs, so that a bulk flow's backlog does not sit in front
// of every other destination's frames. Its bounds are the ones the single
// FIFO had, frames and buffer bytes over all buckets together. When a
// frame does not fit, a frame from the head of the bucket holding the most
// bytes is dropped to make room (the flow that caused the backlog pays for
// it), unless that bucket is the new frame's own, which then is dropped.
// Any goroutine may push; only the writer pops.
type fairQueue struct {
	mu        sync.Mutex
	buckets   [fairBuckets]fairBucket
	active    []int // buckets with frames, in round-robin order
	frames    int
	bytes     int64
	maxFrames int
	limit     int64
	// ready holds a token while frames may be waiting: push leaves one,
	// the writer waits on it when pop finds nothing.
	ready chan struct{}
}

type fairBucket struct {
	frames  [][]byte
	head    int // frames[head:] are queued
	bytes   int64
	deficit int
}

func newFairQueue(frames, bytes int) *fairQueue {
	return &fairQueue{
		active:    make([]int, 0, fairBuckets),
		maxFrames: frames,
		limit:     int64(bytes),
		ready:     make(chan struct{}, 1),
	}
}

// flowBucket picks frame's bucket from its source and destination keys,
// and for a frame of at most sparseFrame bytes another bucket than the
// large frames between the same keys use. A frame too short or malformed to hold them (Send has checked only the
// header) goes to bucket 0: the writer sends it like any other.
func flowBucket(frame []byte) int {
	// header, payload length, then two length-prefixed coordinate lists.
	off := wire.HeaderSize + 2
	for range 2 {
		if len(frame) < off+2 {
			return 0
		}
		off += 2 + int(binary.BigEndian.Uint16(frame[off:]))
	}
	if len(frame) < off+2*wire.KeySize {
		return 0
	}
	// Keys are uniformly random: eight bytes of each are hash enough.
	h := binary.LittleEndian.Uint64(frame[off:]) ^ binary.LittleEndian.Uint64(frame[off+wire.KeySize:])*0x9e3779b97f4a7c15
	b := (h >> 32) % fairBuckets
	if len(frame) <= sparseFrame {
		b = (b + 1 + (h>>8)%(fairBuckets-1)) % fairBuckets
	}
	return int(b)
}

// push queues frame, making room as the type comment says. It reports
// whether frame was queued and returns the frame dropped to make room, if
// any, for the caller to count and recycle.
func (q *fairQueue) push(frame []byte) (ok bool, evicted []byte) {
	n := int64(cap(frame))
	if n > q.limit {
		return false, nil
	}
	i := flowBucket(frame)
	q.mu.Lock()
	if q.frames+1 > q.maxFrames || q.bytes+n > q.limit {
		fat := q.fattest()
		if fat < 0 || fat == i {
			q.mu.Unlock()
			return false, nil
		}
		evicted = q.popBucket(fat)
		// One eviction frees a frame; it may not free enough bytes for a
		// large frame, which is then refused rather than evicting more
		// than one frame per push.
		if q.bytes+n > q.limit {
			q.mu.Unlock()
			return false, evicted
		}
	}
	b := &q.buckets[i]
	if b.head == len(b.frames) {
		b.frames, b.head = b.frames[:0], 0
		q.active = append(q.active, i)
	} else if b.head > 0 && len(b.frames) == cap(b.frames) {
		// A bucket that never empties would otherwise grow its slice
		// forever past the frames already taken.
		k := copy(b.frames, b.frames[b.head:])
		clear(b.frames[k:])
		b.frames, b.head = b.frames[:k], 0
	}
	b.frames = append(b.frames, frame)
	b.bytes += n
	q.frames++
	q.bytes += n
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
	return true, evicted
}

// fattest is the active bucket holding the most bytes, or -1.
func (q *fairQueue) fattest() int {
	fat := -1
	for _, i := range q.active {
		if fat < 0 || q.buckets[i].bytes > q.buckets[fat].bytes {
			fat = i
		}
	}
	return fat
}

// popBucket removes the head frame of active bucket i, leaving the round
// order alone unless the bucket empties.
func (q *fairQueue) popBucket(i int) []byte {
	b := &q.buckets[i]
	f := b.frames[b.head]
	b.frames[b.head] = nil
	b.head++
	n := int64(cap(f))
	b.bytes -= n
	q.frames--
	q.bytes -= n
	if b.head == len(b.frames) {
		b.frames, b.head, b.deficit = b.frames[:0], 0, 0
		for k, a := range q.active {
			if a == i {
				q.active = append(q.active[:k], q.active[k+1:]...)
				break
			}
		}
	}
	return f
}

// pop takes the next frame in deficit round robin order, or nil when the
// queue is empty.
func (q *fairQueue) pop() []byte {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.active) > 0 {
		i := q.active[0]
		b := &q.buckets[i]
		if size := len(b.frames[b.head]); b.deficit < size {
			// Not this bucket's turn yet: top it up and move it to
			// the back of the round.
			b.deficit += fairQuantum
			copy(q.active, q.active[1:])
			q.active[len(q.active)-1] = i
			continue
		}
		b.deficit -= len(b.frames[b.head])
		return q.popBucket(i)
	}
	return nil
}

// queued is the number of frames and buffer bytes held.
func (q *fairQueue) queued() (frames int, bytes int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.frames, q.bytes
}

// recycle returns an evicted frame's buffer to the pool.
func recycle(frame []byte) {
	if frame != nil {
		bufpool.Put(frame)
	}
}
