package enum

import "testing"

type color uint8

var colorNames = []string{"red", "green"}

func TestName(t *testing.T) {
	for _, c := range []struct {
		v    color
		want string
	}{{0, "red"}, {1, "green"}, {2, "color_2"}, {255, "color_255"}} {
		if got := Name(colorNames, c.v, "color"); got != c.want {
			t.Errorf("Name(%d) = %q, want %q", c.v, got, c.want)
		}
	}
}

func TestNameOr(t *testing.T) {
	if got := NameOr(colorNames, color(1), "unknown"); got != "green" {
		t.Errorf("NameOr(1) = %q", got)
	}
	if got := NameOr(colorNames, color(2), "unknown"); got != "unknown" {
		t.Errorf("NameOr(2) = %q", got)
	}
	if got := NameOr(nil, color(0), "unknown"); got != "unknown" {
		t.Errorf("NameOr on an empty table = %q", got)
	}
}
