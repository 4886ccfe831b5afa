package daemon

import (
	"log/slog"

	sddaemon "github.com/coreos/go-systemd/v22/daemon"
	"golang.org/x/sys/unix"
)

// SdNotify returns a notifier that sends states to systemd over
// NOTIFY_SOCKET with go-systemd, which handles abstract socket addresses;
// without NOTIFY_SOCKET it does nothing. Failures are logged, never fatal:
// a daemon that cannot tell systemd it is ready still routes.
func SdNotify(log *slog.Logger) func(state string) {
	return func(state string) {
		if _, err := sddaemon.SdNotify(false, state); err != nil {
			log.Warn("sd_notify failed", "state", state, "err", err)
		}
	}
}

// monotonicUsec is CLOCK_MONOTONIC in microseconds, which systemd wants
// with RELOADING=1 (MONOTONIC_USEC) to tell one reload from the next.
func monotonicUsec() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0
	}
	return ts.Nano() / 1000
}
