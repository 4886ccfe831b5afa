// Package bufpool recycles the buffers the data path builds Traffic frames
// and delivered payloads in, so that a packet costs neither a fresh
// allocation (which Go zeroes) nor garbage collection, and so that a queued
// small packet holds a small buffer, not a 64 KiB one.
//
// # Layout
//
// Get returns a large buffer, which has PayloadRoom bytes at its end for a
// payload (a session transport message) and Headroom(b) bytes in front of
// that, between MinHeadroom and MaxHeadroom, for the Traffic frame header.
// The sender puts the payload at b[Headroom(b):] and the overlay writes the
// frame header just in front of it, so the frame is built without copying
// the payload. Headers vary in size (tree coordinates, SNEK watermark): a
// frame that starts k bytes into its buffer is given back as a buffer whose
// headroom is k bytes smaller. Buffers soon settle at the header size their
// flows need.
//
// # Size classes
//
// A frame or payload that waits in a queue (a link's send queues, the
// node's delivery queue) holds its whole buffer for as long as it waits, so
// queues count cap, not len, against their byte budgets. To keep small
// packets cheap, Alloc hands out buffers from size classes (Classes, each
// just under a power of two, from 248 bytes to 32 KiB) and Shrink moves a
// frame built in a large buffer into the smallest class that holds it,
// when that at least halves the memory it holds. A queued frame therefore
// holds at most twice its length plus 8 bytes, or 248 bytes, whichever is
// more; frames over 32 KiB hold a large buffer (at most 2.1 times their
// length).
//
// # Ownership
//
// A buffer from Get or Alloc belongs to whoever holds it; handing it on (a
// SendBuffer callback, overlay.Link.Send, overlay.Delivery) hands on that
// ownership, and the last owner calls Put once nothing reads or writes it
// any more. Forgetting Put is harmless (the garbage collector takes the
// buffer); calling Put while another goroutine still uses the buffer is a
// data race. Put recognises pool buffers by their capacity and ignores
// every other slice, so any owned slice may be passed to it. The class
// capacities are deliberately not Go allocator size classes, which
// append-grown slices (such as the router's protocol frames) have.
package bufpool

import "sync"

const (
	// PayloadRoom is the room at the end of every large buffer: the largest
	// Traffic frame.
	PayloadRoom = 0xffff
	// MinHeadroom is the least headroom a recycled large buffer keeps; a
	// frame whose buffer would have less is not recycled.
	MinHeadroom = 64
	// MaxHeadroom is the headroom of a new large buffer, enough for any
	// header with a few hundred bytes of coordinates.
	MaxHeadroom = 512
	// LargeSize is the capacity of a new large buffer.
	LargeSize = PayloadRoom + MaxHeadroom
)

// Classes are the capacities of the small buffers Alloc and Shrink use,
// smallest first: 2^k - 8 for k = 8..15.
var Classes = [...]int{248, 504, 1016, 2040, 4088, 8184, 16376, 32760}

var large = sync.Pool{New: func() any {
	b := make([]byte, LargeSize)
	return &b
}}

var small [len(Classes)]sync.Pool

func init() {
	for i := range small {
		size := Classes[i]
		small[i].New = func() any {
			b := make([]byte, size)
			return &b
		}
	}
}

// Get returns a large buffer of length cap(b), at least
// PayloadRoom+MinHeadroom bytes. Its contents are arbitrary.
func Get() []byte {
	return *large.Get().(*[]byte)
}

// class is the index of the smallest class holding n bytes, or -1 when n
// needs a large buffer.
func class(n int) int {
	for i, c := range Classes {
		if n <= c {
			return i
		}
	}
	return -1
}

// Alloc returns a buffer of length n (at most PayloadRoom+MinHeadroom) from
// the smallest class that holds it, or a large buffer when none does. Its
// contents are arbitrary.
func Alloc(n int) []byte {
	if i := class(n); i >= 0 {
		return (*small[i].Get().(*[]byte))[:n]
	}
	return Get()[:n]
}

// Shrink returns b, or a copy of b in the smallest class buffer that holds
// it when that buffer is at most half of cap(b); b is then given back with
// Put. The caller owns the result as it owned b.
func Shrink(b []byte) []byte {
	i := class(len(b))
	if i < 0 || 2*Classes[i] > cap(b) {
		return b
	}
	s := (*small[i].Get().(*[]byte))[:len(b)]
	copy(s, b)
	Put(b)
	return s
}

// Headroom is how many bytes of a large buffer b lie in front of its
// PayloadRoom.
func Headroom(b []byte) int { return cap(b) - PayloadRoom }

// Put gives b back for reuse. Only b's capacity counts: b may be any
// reslice of a pool buffer that reaches to its end, such as a frame built
// in it. Slices whose capacity is neither a class nor that of a large
// buffer are left to the garbage collector.
func Put(b []byte) {
	c := cap(b)
	if c >= PayloadRoom+MinHeadroom && c <= LargeSize {
		b = b[:c]
		large.Put(&b)
		return
	}
	if i := class(c); i >= 0 && Classes[i] == c {
		b = b[:c]
		small[i].Put(&b)
	}
}
