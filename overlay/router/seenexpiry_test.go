package router

import (
	"testing"
	"time"

	"github.com/pineconed/pineconed/internal/testhelp"
	"github.com/pineconed/pineconed/overlay/wire"
)

// TestWakeupRecordsExpireOnTime: the seen and verified sets are walked
// only when their oldest record is due, and each record still goes at the
// first 1 s tick at or after WakeupSeenExpiry, as a walk on every tick
// would do.
func TestWakeupRecordsExpireOnTime(t *testing.T) {
	r := New(privA, Options{DisableWakeups: true})
	mustNoDisconnect(t, r.PeerUp(t0, 1, keyB, PeerRemote))
	mustNoDisconnect(t, r.PeerUp(t0, 2, keyC, PeerRemote))
	wakeup := func(now time.Time, priv byte, port Port) {
		t.Helper()
		from := New(testhelp.SeedKey(priv), Options{})
		sr := from.signRoot(unixMilli(now), r.Root())
		mustNoDisconnect(t, r.HandleFrame(now, port, &wire.WakeupBroadcast{HopLimit: 1, Source: from.key, Payload: sr.Append(nil)}))
	}
	has := func(k wire.PublicKey) bool {
		_, seen := r.seen[k]
		_, verified := r.verified[k]
		if seen != verified {
			t.Fatalf("seen %v, verified %v", seen, verified)
		}
		return seen
	}
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	for s := time.Duration(0); s <= 200*time.Second; s += time.Second {
		now := at(s)
		r.Tick(now)
		switch s {
		case 1 * time.Second:
			wakeup(now.Add(300*time.Millisecond), 2, 1) // B, due at 181.3 s
		case 11 * time.Second:
			wakeup(now, 3, 2) // C, due at 191 s
		}
		wantB := s >= time.Second && s < 182*time.Second
		wantC := s >= 11*time.Second && s < 191*time.Second
		if has(keyB) != wantB || has(keyC) != wantC {
			t.Fatalf("after the tick at %v: B recorded %v, C recorded %v; want %v, %v", s, has(keyB), has(keyC), wantB, wantC)
		}
	}
	if !r.seenExpiry.IsZero() {
		t.Errorf("records all gone but the next walk is due at %v", r.seenExpiry.Sub(t0))
	}
}
