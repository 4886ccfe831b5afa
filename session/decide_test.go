package session

import (
	"testing"
	"time"

	"github.com/pineconed/pineconed/internal/testhelp"
	"github.com/pineconed/pineconed/overlay/wire"
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

// TestDecideInit: replayed initiations are refused whatever else holds,
// and of two simultaneous initiations only the lower key's side yields.
func TestDecideInit(t *testing.T) {
	lo, hi := testKeyPair(t)
	tests := []struct {
		name        string
		self, src   wire.PublicKey
		ts, lastTS  uint64
		outstanding bool
		want        initVerdict
	}{
		{"first initiation", lo, hi, 1, 0, false, initAnswer},
		{"newer initiation", hi, lo, 10, 9, false, initAnswer},
		{"same timestamp again", lo, hi, 9, 9, false, initReplayed},
		{"older timestamp, even while initiating", lo, hi, 8, 9, true, initReplayed},
		{"simultaneous, we are lower: yield", lo, hi, 10, 9, true, initYield},
		{"simultaneous, we are higher: keep ours", hi, lo, 10, 9, true, initIgnore},
	}
	for _, tt := range tests {
		if got := decideInit(tt.self, tt.src, tt.ts, tt.lastTS, tt.outstanding); got != tt.want {
			t.Errorf("%s: got %d, want %d", tt.name, got, tt.want)
		}
	}
}

// testKeyPair returns two node keys, the lower first.
func testKeyPair(t *testing.T) (lo, hi wire.PublicKey) {
	t.Helper()
	a, b := wire.PublicKeyOf(testhelp.SeedKey(1)), wire.PublicKeyOf(testhelp.SeedKey(2))
	if b.Less(a) {
		a, b = b, a
	}
	return a, b
}
