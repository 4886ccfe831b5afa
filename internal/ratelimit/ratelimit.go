// Package ratelimit bounds how often remote sources may make this node do
// work on their behalf: a token bucket per source key and one for all
// sources together, with time passed in by the caller.
//
// Place in the data path: the session layer asks it before the
// Diffie-Hellman of every handshake initiation, and the daemon before
// answering an address lookup. The buckets are golang.org/x/time/rate
// limiters (well kept, and their AllowN takes the time, so callers stay
// deterministic under a fake clock); this package adds what that library
// leaves to its users: the per-source table, bounded in size, and its
// clean-up.
//
// The per-source table holds at most Config.MaxKeys entries. An entry
// whose bucket has had time to refill completely carries no information
// (a new entry starts full), so it is dropped by the sweep that runs at
// most once a second from Allow. When the table is full of sources that
// are all still limited, a new source is refused (TableFull): a flood from
// many keys is then held by the global bucket and the table, not by memory.
package ratelimit

import (
	"sync"
	"time"

	"github.com/pineconed/pineconed/internal/defaults"
	"golang.org/x/time/rate"
)

// Config sets the limits. Rates are events per second; bursts are how
// many events may come at once after a quiet spell.
type Config struct {
	PerKey      float64
	PerKeyBurst int
	Global      float64
	GlobalBurst int
	// MaxKeys bounds the per-source table.
	MaxKeys int
}

// Verdict is the outcome of Allow.
type Verdict uint8

// Verdicts.
const (
	Allowed       Verdict = iota
	LimitedSource         // this source is over its rate
	LimitedGlobal         // all sources together are over the global rate
	TableFull             // too many sources are being limited to track another
)

func (v Verdict) String() string {
	switch v {
	case Allowed:
		return "allowed"
	case LimitedSource:
		return "limited_source"
	case LimitedGlobal:
		return "limited_global"
	case TableFull:
		return "table_full"
	}
	return "unknown"
}

// Limiter is a per-source and global rate limit. It is safe for
// concurrent use.
type Limiter[K comparable] struct {
	cfg       Config
	refill    time.Duration // time for an empty per-source bucket to fill
	mu        sync.Mutex
	global    *rate.Limiter
	keys      map[K]*entry
	lastSweep time.Time
}

type entry struct {
	lim  *rate.Limiter
	last time.Time
}

// New returns a Limiter with cfg. Non-positive fields get 1 (rates and
// bursts) or 1024 (MaxKeys).
func New[K comparable](cfg Config) *Limiter[K] {
	defaults.IfNotPositive(&cfg.PerKey, 1)
	defaults.IfNotPositive(&cfg.PerKeyBurst, 1)
	defaults.IfNotPositive(&cfg.Global, 1)
	defaults.IfNotPositive(&cfg.GlobalBurst, 1)
	defaults.IfNotPositive(&cfg.MaxKeys, 1024)
	return &Limiter[K]{
		cfg:    cfg,
		refill: time.Duration(float64(cfg.PerKeyBurst) / cfg.PerKey * float64(time.Second)),
		global: rate.NewLimiter(rate.Limit(cfg.Global), cfg.GlobalBurst),
		keys:   make(map[K]*entry),
	}
}

// Allow takes one token from key's bucket and one from the global bucket,
// or none when either is empty, and says which limit applied. The source's
// bucket is asked first, so that one busy source cannot use up the global
// budget of the others.
func (l *Limiter[K]) Allow(now time.Time, key K) Verdict {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweepLocked(now)
	e := l.keys[key]
	if e == nil {
		if len(l.keys) >= l.cfg.MaxKeys {
			return TableFull
		}
		e = &entry{lim: rate.NewLimiter(rate.Limit(l.cfg.PerKey), l.cfg.PerKeyBurst)}
		l.keys[key] = e
	}
	e.last = now
	if e.lim.TokensAt(now) < 1 {
		return LimitedSource
	}
	if !l.global.AllowN(now, 1) {
		return LimitedGlobal
	}
	e.lim.AllowN(now, 1)
	return Allowed
}

// Loaded reports whether less than half of the global burst is left: the
// point from which callers start to ask for proof of reachability
// (cookies) before doing expensive work.
func (l *Limiter[K]) Loaded(now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.global.TokensAt(now) < float64(l.cfg.GlobalBurst)/2
}

// Sources is the number of sources being tracked.
func (l *Limiter[K]) Sources() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.keys)
}

// sweepLocked forgets, at most once a second, the sources whose buckets
// are full again.
func (l *Limiter[K]) sweepLocked(now time.Time) {
	if now.Sub(l.lastSweep) < time.Second {
		return
	}
	l.lastSweep = now
	for k, e := range l.keys {
		if now.Sub(e.last) >= l.refill {
			delete(l.keys, k)
		}
	}
}
