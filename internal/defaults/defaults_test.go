package defaults

import (
	"bytes"
	"io"
	"testing"
	"time"
)

func TestIfNotPositive(t *testing.T) {
	for _, c := range []struct{ in, want time.Duration }{
		{0, time.Second}, {-time.Millisecond, time.Second}, {time.Millisecond, time.Millisecond},
	} {
		v := c.in
		IfNotPositive(&v, time.Second)
		if v != c.want {
			t.Errorf("IfNotPositive(%v, 1s) gives %v, want %v", c.in, v, c.want)
		}
	}
	f := 0.5
	IfNotPositive(&f, 7)
	if f != 0.5 {
		t.Errorf("a positive fraction was replaced: %v", f)
	}
}

func TestIfZero(t *testing.T) {
	// A negative value is kept: it is the caller's "no bound".
	for _, c := range []struct{ in, want time.Duration }{
		{0, time.Second}, {-1, -1}, {time.Minute, time.Minute},
	} {
		v := c.in
		IfZero(&v, time.Second)
		if v != c.want {
			t.Errorf("IfZero(%v, 1s) gives %v, want %v", c.in, v, c.want)
		}
	}
	def, own := bytes.NewReader(nil), bytes.NewReader([]byte{1})
	var r io.Reader
	IfZero(&r, io.Reader(def))
	if r != def {
		t.Error("a nil reader was not given the default")
	}
	r = own
	IfZero(&r, io.Reader(def))
	if r != own {
		t.Error("a reader that was set was replaced")
	}
}
