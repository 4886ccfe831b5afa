package daemon

import (
	"io"
	"log/slog"
)

// NewLogger builds the daemon's logger: slog's text or JSON handler on w
// (stderr; journald adds timestamps under systemd) at the level held by
// level, which Reload changes for log_level, behind a rate limit per
// message (see rateLimitHandler).
func NewLogger(w io.Writer, format string, level *slog.LevelVar) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(w, opts)
	if format == "json" {
		h = slog.NewJSONHandler(w, opts)
	}
	return slog.New(newRateLimitHandler(h, logWindow, logBurst))
}
