package session

import (
	"testing"

	"github.com/pineconed/pineconed/internal/testhelp"
)

// TestCounterTable: every counter has a name, names are unique, and the
// drops are exactly the session_… reasons the dashboards and alerts know
// (contrib/grafana, contrib/prometheus; admin/metrics/metricstest checks
// them against the registry).
func TestCounterTable(t *testing.T) {
	testhelp.CheckNames(t, NumCounters)
	want := []string{"queue_full", "too_many_peers", "too_big", "bad_key", "unreachable",
		"unknown_index", "decrypt_failed", "replay", "too_old", "expired", "malformed",
		"bad_inner", "bad_source", "initiation_rate_limited", "need_cookie",
		"cookie_reply_rate_limited", "bad_cookie"}
	var got []string
	for c := range NumCounters {
		if r := c.DropReason(); r != "" {
			got = append(got, r)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("drop reasons %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("drop reasons %q, want %q", got, want)
		}
	}
	outcomes := map[string]int{}
	for c := range NumCounters {
		if o := c.HandshakeOutcome(); o != "" {
			outcomes[o]++
		}
	}
	if len(outcomes) != 4 || outcomes["rejected"] != 2 || outcomes["ok"] != 1 || outcomes["timeout"] != 1 || outcomes["bad_message"] != 1 {
		t.Errorf("handshake outcomes %v, want ok, timeout, bad_message once and rejected twice", outcomes)
	}
	if NumCounters.String() == "" || NumCounters.DropReason() != "" || NumCounters.HandshakeOutcome() != "" {
		t.Error("an out-of-range counter must name itself and be no drop and no outcome")
	}
}
