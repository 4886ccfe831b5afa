package wire

import "testing"

func TestCountSlots(t *testing.T) {
	seen := map[string]bool{}
	for i := range CountedTypes {
		seen[SlotName(i)] = true
	}
	if len(seen) != CountedTypes || !seen["traffic"] || !seen["unknown"] {
		t.Fatalf("slot names %v: want %d distinct, with traffic and unknown", seen, CountedTypes)
	}
	for _, c := range []struct {
		t    FrameType
		want string
	}{{TypeKeepalive, "keepalive"}, {TypeTraffic, "traffic"}, {TypeWakeupBroadcast, "wakeup_broadcast"}, {5, "unknown"}, {255, "unknown"}} {
		if got := SlotName(CountSlot(c.t)); got != c.want {
			t.Errorf("type %d counts as %q, want %q", c.t, got, c.want)
		}
	}
}
