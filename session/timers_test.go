package session

import (
	"testing"
	"time"
)

// TestDecideTick: the timer rules of the package doc, one row each, as
// decideTick applies them to a peer's state (no crypto, locks or clock).
func TestDecideTick(t *testing.T) {
	cfg := Config{}.withDefaults()
	now := time.Unix(1_000_000, 0)
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	recent := ago(time.Second)
	tests := []struct {
		name string
		in   tickInput
		want tickPlan
	}{{
		name: "quiet established peer: nothing to do",
		in:   tickInput{usable: true, lastActive: recent, lastHandshake: ago(time.Minute)},
	}, {
		name: "initiation unanswered for RekeyTimeout is retried",
		in:   tickInput{handshaking: true, initSentAt: ago(cfg.RekeyTimeout), triesSince: ago(cfg.RekeyTimeout), queued: 1, lastActive: recent},
		want: tickPlan{handshake: stepRetry},
	}, {
		name: "initiation younger than RekeyTimeout waits",
		in:   tickInput{handshaking: true, initSentAt: ago(cfg.RekeyTimeout - time.Millisecond), triesSince: ago(time.Minute), lastActive: recent},
	}, {
		name: "series past HandshakeGiveUp is given up, and nothing idle is forgotten at once",
		in:   tickInput{handshaking: true, initSentAt: ago(cfg.RekeyTimeout), triesSince: ago(cfg.HandshakeGiveUp), queued: 3, lastActive: recent},
		want: tickPlan{giveUp: true},
	}, {
		name: "given up and idle: forgotten in the same tick",
		in:   tickInput{triesSince: ago(cfg.IdleTimeout), queued: 3, lastActive: ago(cfg.IdleTimeout)},
		want: tickPlan{giveUp: true, forget: true},
	}, {
		name: "answered but never confirmed, packets queued: we initiate",
		in:   tickInput{queued: 2, triesSince: recent, lastHandshake: ago(cfg.RekeyTimeout), lastActive: recent},
		want: tickPlan{handshake: stepBegin},
	}, {
		name: "answered just now: the initiator gets its RekeyTimeout",
		in:   tickInput{queued: 2, triesSince: recent, lastHandshake: recent, lastActive: recent},
	}, {
		name: "data sent, nothing heard for KeepaliveTimeout+RekeyTimeout: new handshake",
		in:   tickInput{usable: true, unansweredSince: ago(cfg.KeepaliveTimeout + cfg.RekeyTimeout), lastActive: recent},
		want: tickPlan{handshake: stepUnanswered},
	}, {
		name: "keepalive due on a usable keypair is sent",
		in:   tickInput{usable: true, keepaliveDue: now, lastActive: recent},
		want: tickPlan{keepaliveDue: true, keepalive: true},
	}, {
		name: "keepalive due without a usable keypair is only cleared",
		in:   tickInput{keepaliveDue: ago(time.Second), lastActive: recent},
		want: tickPlan{keepaliveDue: true},
	}, {
		name: "idle peer is forgotten",
		in:   tickInput{usable: true, lastActive: ago(cfg.IdleTimeout)},
		want: tickPlan{forget: true},
	}, {
		name: "idle but a keepalive goes out now: kept",
		in:   tickInput{usable: true, keepaliveDue: now, lastActive: ago(cfg.IdleTimeout)},
		want: tickPlan{keepaliveDue: true, keepalive: true},
	}, {
		name: "idle but handshaking: kept",
		in:   tickInput{handshaking: true, initSentAt: recent, triesSince: recent, lastActive: ago(cfg.IdleTimeout)},
	}}
	for _, tt := range tests {
		if got := decideTick(&cfg, now, tt.in); got != tt.want {
			t.Errorf("%s: got %+v, want %+v", tt.name, got, tt.want)
		}
	}
}
