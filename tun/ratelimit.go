package tun

import (
	"sync"
	"time"
)

// RateLimiter is a token bucket for ICMPv6 errors (RFC 4443 §2.4f asks for
// one), so a flood of packets to unreachable addresses cannot make the daemon
// write a flood of errors into the TUN. Time is passed in, which keeps it
// testable and lets the caller reuse a clock reading it already has. It is
// safe for concurrent use.
type RateLimiter struct {
	mu         sync.Mutex
	interval   time.Duration // time to earn one token
	burst      int64
	tokens     int64
	last       time.Time
	suppressed uint64
}

// NewRateLimiter allows perSecond messages a second on average and bursts of
// up to burst. The bucket starts full. perSecond ≤ 0 or burst ≤ 0 gives a
// limiter that never allows.
func NewRateLimiter(perSecond, burst int) *RateLimiter {
	r := &RateLimiter{}
	if perSecond > 0 && burst > 0 {
		r.interval = time.Second / time.Duration(perSecond)
		if r.interval <= 0 {
			r.interval = 1
		}
		r.burst = int64(burst)
		r.tokens = int64(burst)
	}
	return r
}

// Allow takes a token if one is available at time now. A clock that steps
// backwards earns nothing rather than breaking the bucket.
func (r *RateLimiter) Allow(now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.burst == 0 {
		r.suppressed++
		return false
	}
	if r.last.IsZero() {
		r.last = now
	} else if el := now.Sub(r.last); el >= r.interval {
		earned := int64(el / r.interval)
		if r.tokens+earned >= r.burst {
			r.tokens = r.burst
			r.last = now
		} else {
			r.tokens += earned
			// Keep the remainder so slow, steady callers are not starved.
			r.last = r.last.Add(time.Duration(earned) * r.interval)
		}
	} else if el < 0 {
		r.last = now
	}
	if r.tokens > 0 {
		r.tokens--
		return true
	}
	r.suppressed++
	return false
}

// Suppressed is how many calls to Allow were refused.
func (r *RateLimiter) Suppressed() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.suppressed
}
