package router

import "testing"

// Port numbers as the admin API and logs show them: no port and the local
// router are both 0, peerings keep their number.
func TestPortNumber(t *testing.T) {
	for p, want := range map[Port]uint64{NoPort: 0, LocalPort: 0, 1: 1, MaxPort: 253} {
		if got := p.Number(); got != want {
			t.Errorf("%s.Number() = %d, want %d", p, got, want)
		}
	}
}
