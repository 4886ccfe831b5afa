package testhelp

import (
	"fmt"
	"testing"
)

// CheckNames fails the test unless each value of an enumeration below n
// has a name and no two values share one. The enumerations the daemon
// counts events by are named by a table (internal/enum), and the names
// are metric label values: an empty or repeated one would merge two
// series or make one that no dashboard knows.
func CheckNames[E interface {
	~uint8
	fmt.Stringer
}](t testing.TB, n E) {
	t.Helper()
	seen := map[string]E{}
	for v := range n {
		name := v.String()
		if name == "" {
			t.Errorf("%T %d has no name", v, v)
		}
		if o, dup := seen[name]; dup {
			t.Errorf("%T %d and %d are both %q", v, o, v, name)
		}
		seen[name] = v
	}
}
