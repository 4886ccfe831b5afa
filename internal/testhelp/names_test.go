package testhelp

import (
	"fmt"
	"testing"
)

// shade is an enumeration whose names the test chooses.
type shade uint8

var shadeNames []string

func (s shade) String() string { return shadeNames[s] }

// errorRecorder is a testing.TB that keeps what Errorf reports.
type errorRecorder struct {
	testing.TB
	errs []string
}

func (e *errorRecorder) Helper() {}

func (e *errorRecorder) Errorf(format string, args ...any) {
	e.errs = append(e.errs, fmt.Sprintf(format, args...))
}

func TestCheckNames(t *testing.T) {
	for _, c := range []struct {
		names []string
		want  []string
	}{
		{[]string{"dark", "light"}, nil},
		{[]string{"dark", ""}, []string{"testhelp.shade 1 has no name"}},
		{[]string{"dark", "light", "dark"}, []string{`testhelp.shade 0 and 2 are both "dark"`}},
	} {
		shadeNames = c.names
		r := &errorRecorder{TB: t}
		CheckNames(r, shade(len(c.names)))
		if fmt.Sprint(r.errs) != fmt.Sprint(c.want) {
			t.Errorf("names %q: reported %q, want %q", c.names, r.errs, c.want)
		}
	}
}
