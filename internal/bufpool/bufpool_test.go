package bufpool

import "testing"

func TestGetPut(t *testing.T) {
	b := Get()
	if len(b) != cap(b) || Headroom(b) < MinHeadroom || Headroom(b) > MaxHeadroom {
		t.Fatalf("Get: len %d cap %d headroom %d", len(b), cap(b), Headroom(b))
	}
	// A frame that starts 100 bytes into its buffer comes back with 100
	// bytes less headroom.
	h := Headroom(b)
	frame := b[h-100 : h+1400]
	Put(frame)
	// Too small and too large slices are ignored, not recycled.
	Put(make([]byte, 10))
	Put(make([]byte, PayloadRoom+MaxHeadroom+1))
	Put(b[h:])
	Put(nil)
}

func BenchmarkGetPut(b *testing.B) {
	b.ReportAllocs()
	for range b.N {
		buf := Get()
		Put(buf[Headroom(buf)-80:])
	}
}
