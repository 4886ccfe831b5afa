package daemon

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Log rate limiting: a message (level and text) may be logged logBurst
// times per logWindow; beyond that it is counted, and once its window is
// over one "N similar messages suppressed" record says how many were
// dropped. That keeps the journal readable when a remote loops on
// connect/close or a neighbour keeps trying a full node, while the first
// occurrences, which carry the details, still get through.
const (
	logWindow = 10 * time.Second
	logBurst  = 5
	// logKeys bounds the messages tracked at once; messages beyond it are
	// not limited (the messages are the daemon's own constant texts, so
	// reaching it would take a bug, not an attacker).
	logKeys = 1024
)

// rateLimitHandler is a slog.Handler that rate limits records by level and
// message before passing them on. Handlers derived with WithAttrs or
// WithGroup share the limiter, so one message is limited across
// components.
type rateLimitHandler struct {
	next slog.Handler
	st   *logLimiter
}

type logKey struct {
	level slog.Level
	msg   string
}

type logCount struct {
	start      time.Time
	n          int
	suppressed int
}

// logLimiter is the shared state of a rateLimitHandler family. root logs
// the summaries, without the attributes of whichever handler saw the
// dropped records.
type logLimiter struct {
	root      slog.Handler
	window    time.Duration
	burst     int
	mu        sync.Mutex
	counts    map[logKey]*logCount
	lastSweep time.Time
}

// newRateLimitHandler wraps next.
func newRateLimitHandler(next slog.Handler, window time.Duration, burst int) *rateLimitHandler {
	return &rateLimitHandler{next: next, st: &logLimiter{root: next, window: window, burst: burst, counts: map[logKey]*logCount{}}}
}

func (h *rateLimitHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l)
}

func (h *rateLimitHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &rateLimitHandler{next: h.next.WithAttrs(as), st: h.st}
}

func (h *rateLimitHandler) WithGroup(name string) slog.Handler {
	return &rateLimitHandler{next: h.next.WithGroup(name), st: h.st}
}

func (h *rateLimitHandler) Handle(ctx context.Context, r slog.Record) error {
	now := r.Time
	if now.IsZero() {
		now = time.Now()
	}
	allow, summaries := h.st.count(logKey{r.Level, r.Message}, now)
	for _, s := range summaries {
		_ = h.st.root.Handle(ctx, s)
	}
	if !allow {
		return nil
	}
	return h.next.Handle(ctx, r)
}

// count records one occurrence of k at now and says whether to log it,
// with the summaries of windows that have ended.
func (l *logLimiter) count(k logKey, now time.Time) (bool, []slog.Record) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var summaries []slog.Record
	ended := func(k logKey, c *logCount) {
		if c.suppressed > 0 {
			r := slog.NewRecord(now, k.level, "similar messages suppressed", 0)
			r.AddAttrs(slog.String("message", k.msg), slog.Int("suppressed", c.suppressed),
				slog.Duration("window", now.Sub(c.start).Round(time.Second)))
			summaries = append(summaries, r)
		}
		delete(l.counts, k)
	}
	// Sweep every window: windows of messages that stopped coming end too,
	// and the map does not keep them.
	if now.Sub(l.lastSweep) >= l.window {
		l.lastSweep = now
		for ck, c := range l.counts {
			if now.Sub(c.start) >= l.window {
				ended(ck, c)
			}
		}
	}
	c := l.counts[k]
	if c != nil && now.Sub(c.start) >= l.window {
		ended(k, c)
		c = nil
	}
	if c == nil {
		if len(l.counts) >= logKeys {
			return true, summaries
		}
		c = &logCount{start: now}
		l.counts[k] = c
	}
	c.n++
	if c.n > l.burst {
		c.suppressed++
		return false, summaries
	}
	return true, summaries
}
