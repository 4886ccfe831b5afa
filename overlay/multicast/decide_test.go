package multicast

import (
	"net/netip"
	"testing"
	"time"

	"github.com/pineconed/pineconed/internal/testhelp"
	"github.com/pineconed/pineconed/overlay/wire"
)

func TestCheckBeacon(t *testing.T) {
	self := keyB
	valid := wire.AppendBeacon(nil, keyA, 4242)
	for _, c := range []struct {
		name string
		src  string
		data []byte
		want ignoreReason
	}{
		{"valid link-local", "[fe80::2]:60606", valid, ignoreNone},
		{"valid IPv4", "192.0.2.7:60606", valid, ignoreNone},
		{"valid IPv4-mapped", "[::ffff:192.0.2.7]:60606", valid, ignoreNone},
		{"short", "[fe80::2]:60606", valid[:33], ignoreMalformed},
		{"port 0", "[fe80::2]:60606", wire.AppendBeacon(nil, keyA, 0), ignoreMalformed},
		{"own key", "[fe80::2]:60606", wire.AppendBeacon(nil, self, 4242), ignoreOwn},
		{"unspecified source", "[::]:60606", valid, ignoreSource},
		{"multicast source", "[ff02::1]:60606", valid, ignoreSource},
		{"loopback source", "127.0.0.1:60606", valid, ignoreSource},
		{"invalid source", "", valid, ignoreSource},
	} {
		t.Run(c.name, func(t *testing.T) {
			var src netip.AddrPort
			if c.src != "" {
				src = netip.MustParseAddrPort(c.src)
			}
			key, port, ip, why := checkBeacon(self, src, c.data)
			if why != c.want {
				t.Fatalf("reason %s, want %s", why, c.want)
			}
			if why == ignoreNone && (key != keyA || port != 4242 || ip != src.Addr().Unmap()) {
				t.Fatalf("key %s port %d ip %s", key, port, ip)
			}
		})
	}
}

func TestDecideDial(t *testing.T) {
	t0 := time.Unix(1000, 0)
	grace := 3 * time.Second
	lower, higher := keyA, keyB
	if higher.Less(lower) {
		lower, higher = higher, lower
	}
	for _, c := range []struct {
		name      string
		self, key wire.PublicKey
		seen      sighting
		known     bool
		busy      bool
		now       time.Time
		want      ignoreReason
		wantFirst time.Time
	}{
		{"lower key dials at once", lower, higher, sighting{}, false, false, t0, ignoreNone, t0},
		{"higher key waits on first sight", higher, lower, sighting{}, false, false, t0, ignoreWaiting, t0},
		{"higher key still in grace", higher, lower, sighting{first: t0}, true, false, t0.Add(grace - 1), ignoreWaiting, t0},
		{"higher key dials after grace", higher, lower, sighting{first: t0}, true, false, t0.Add(grace), ignoreNone, t0},
		{"busy", lower, higher, sighting{first: t0}, true, true, t0.Add(time.Second), ignoreConnected, t0},
		{"busy beats back-off", lower, higher, sighting{first: t0, nextDial: t0.Add(time.Hour)}, true, true, t0, ignoreConnected, t0},
		{"in back-off", lower, higher, sighting{first: t0, nextDial: t0.Add(time.Minute)}, true, false, t0.Add(time.Second), ignoreBackoff, t0},
		{"back-off over", lower, higher, sighting{first: t0, nextDial: t0.Add(time.Minute)}, true, false, t0.Add(time.Minute), ignoreNone, t0},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, why := decideDial(dialDecision{self: c.self, key: c.key, seen: c.seen, known: c.known, busy: c.busy, now: c.now, grace: grace})
			if why != c.want {
				t.Fatalf("reason %s, want %s", why, c.want)
			}
			if !s.first.Equal(c.wantFirst) || !s.last.Equal(c.now) || !s.nextDial.Equal(c.seen.nextDial) {
				t.Fatalf("sighting %+v, want first %v last %v next dial kept", s, c.wantFirst, c.now)
			}
		})
	}
}

// A reason outside the table is counted as "unknown", never a panic, and
// every reason shows in Stats, zeros too.
func TestIgnoreReasonTable(t *testing.T) {
	d, _, _ := testDiscovery(t, keyB)
	d.ignore(ignoreReason(200))
	d.ignore(ignoreNone)
	d.ignore(ignoreOwn)
	st := d.Stats().Ignored
	if st["unknown"] != 2 || st["own"] != 1 {
		t.Fatalf("ignored %v", st)
	}
	if len(st) != int(numIgnoreReasons)-1 {
		t.Fatalf("%d reasons in Stats, want %d: %v", len(st), numIgnoreReasons-1, st)
	}
	testhelp.CheckNames(t, numIgnoreReasons)
	if ignoreReason(250).String() != "unknown" {
		t.Fatal("out-of-table reason not named unknown")
	}
}
