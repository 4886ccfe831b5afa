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

func TestAllocClasses(t *testing.T) {
	for _, n := range []int{0, 1, 60, 248, 249, 1400, 32760, 32761, PayloadRoom} {
		b := Alloc(n)
		if len(b) != n {
			t.Fatalf("Alloc(%d): len %d", n, len(b))
		}
		want := LargeSize
		if i := class(n); i >= 0 {
			want = Classes[i]
		}
		if cap(b) != want && !(want == LargeSize && cap(b) >= PayloadRoom+MinHeadroom) {
			t.Errorf("Alloc(%d): cap %d, want %d", n, cap(b), want)
		}
		// A buffer holds at most twice its length beyond the smallest class.
		if n > Classes[0] && n <= Classes[len(Classes)-1] && cap(b) > 2*n+8 {
			t.Errorf("Alloc(%d): cap %d is more than twice the length plus 8", n, cap(b))
		}
		Put(b)
	}
}

func TestShrink(t *testing.T) {
	b := Get()
	h := Headroom(b)
	frame := b[h-80 : h+1300]
	for i := range frame {
		frame[i] = byte(i)
	}
	s := Shrink(frame)
	if cap(s) != 2040 || len(s) != len(frame) {
		t.Fatalf("Shrink of %d bytes: len %d cap %d, want cap 2040", len(frame), len(s), cap(s))
	}
	for i := range s {
		if s[i] != byte(i) {
			t.Fatalf("Shrink changed byte %d", i)
		}
	}
	Put(s)
	// A frame that fills more than half its buffer stays where it is.
	b = Get()
	big := b[100 : 100+40000]
	if s := Shrink(big); &s[0] != &big[0] {
		t.Error("Shrink copied a 40000-byte frame")
	}
	// A frame already in a fitting class is not copied again.
	c := Alloc(1000)
	if s := Shrink(c); &s[0] != &c[0] {
		t.Error("Shrink copied a frame already in its class")
	}
}

func TestPutIgnoresForeignSlices(t *testing.T) {
	// Slices with Go allocator capacities (such as append-grown protocol
	// frames) never enter the pool: a later Alloc must not return them.
	foreign := make([]byte, 0, 256)
	foreign = append(foreign, 1)
	Put(foreign)
	for range 100 {
		if b := Alloc(10); cap(b) != Classes[0] {
			t.Fatalf("Alloc(10) returned a buffer of cap %d", cap(b))
		}
	}
}

func BenchmarkShrink1400(b *testing.B) {
	b.ReportAllocs()
	for range b.N {
		buf := Get()
		Put(Shrink(buf[Headroom(buf)-80 : Headroom(buf)+1320]))
	}
}
