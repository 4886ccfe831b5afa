package daemon

import (
	"github.com/pineconed/pineconed/internal/mtu"
)

// CoordAllowance is the number of coordinate bytes reserved on each side of
// a Traffic frame when working out DefaultMTU; see internal/mtu. A packet
// that does not fit because the real coordinates are longer is refused by
// the overlay and counted as "overlay_too_large".
const CoordAllowance = mtu.CoordAllowance

// SessionOverhead is what the session layer adds around an IPv6 packet in a
// Traffic payload; see internal/mtu.
const SessionOverhead = mtu.SessionOverhead

// DefaultMTU is the TUN MTU used when the configuration leaves it at 0; see
// internal/mtu, which config uses for its bounds too.
func DefaultMTU() int { return mtu.Default() }

// MaxMTU is the largest TUN MTU whose packets fit one Traffic frame at all.
// The config package refuses a larger tun.mtu (with file and line), from
// the same internal/mtu arithmetic.
func MaxMTU() int { return mtu.Max() }

// effectiveMTU is the MTU the TUN gets for a configured value.
func effectiveMTU(configured int) int {
	if configured == 0 {
		return DefaultMTU()
	}
	return configured
}
