package admin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/pineconed/pineconed/admin"
	"github.com/pineconed/pineconed/admin/admintest"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.json")

// TestGoldenResponses pins the JSON of every response: field names, nesting,
// and that empty lists and maps encode as [] and {} rather than null. A
// renamed or dropped field fails here; if the change is intended, rerun with
// -update and say so in API.md, since clients depend on these names.
func TestGoldenResponses(t *testing.T) {
	fb := &admintest.Backend{}
	fb.SetStats(admin.Stats{
		PeersByTransport: map[string]uint64{"tcp": 1, "multicast": 1},
		Frames:           map[string]admin.FrameCounters{"traffic": {FramesIn: 1, FramesOut: 2, BytesIn: 3, BytesOut: 4}},
		Drops:            map[string]uint64{"queue_full": 3},
		TreeRootChanges:  2, TreeDepth: 2, SnakeEntries: 2,
		SessionsByState: map[string]uint64{"established": 1, "handshaking": 1},
		Handshakes:      map[string]uint64{"ok": 4},
		// Lookups left nil: must still encode as {}.
		Tun: admin.TunCounters{PacketsRead: 5, PacketsWritten: 6, BytesRead: 7, BytesWritten: 8},
	})
	s, _ := startServer(t, admin.ServerConfig{Backend: fb})
	c, err := admin.Dial(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	card, err := fb.Card(context.Background(), admin.CardArgs{Host: "fd00::1", Name: "node-a", ValidSeconds: 3600})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, req string
		args      any
	}{
		{"getSelf", admin.ReqGetSelf, nil},
		{"getPeers", admin.ReqGetPeers, nil},
		{"getTree", admin.ReqGetTree, nil},
		{"getSnake", admin.ReqGetSnake, nil},
		{"getSessions", admin.ReqGetSessions, nil},
		{"getStats", admin.ReqGetStats, nil},
		{"addPeer", admin.ReqAddPeer, admin.URIArgs{URI: "tcp://[fd00::1]:65432"}},
		{"lookup", admin.ReqLookup, admin.LookupArgs{Address: admintest.ParentAddress}},
		{"ping", admin.ReqPing, admin.PingArgs{Target: admintest.ParentAddress, Count: 2, IntervalMS: 10}},
		{"getCard", admin.ReqGetCard, admin.CardArgs{Host: "fd00::1", Name: "node-a", ValidSeconds: 3600}},
		{"importCard", admin.ReqImportCard, admin.ImportCardArgs{Card: card.Card}},
		{"listCards", admin.ReqListCards, nil},
		{"removeCard", admin.ReqRemoveCard, admin.RemoveCardArgs{Card: "node-a"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw, err := c.Do(context.Background(), tc.req, tc.args)
			if err != nil {
				t.Fatal(err)
			}
			got := canonical(t, raw)
			path := filepath.Join("testdata", tc.name+".golden.json")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s response changed.\n got: %s\nwant: %s", tc.name, got, want)
			}
		})
	}
}

// canonical re-indents JSON with sorted keys, except that durations
// measured at run time are zeroed so the output is stable.
func canonical(t *testing.T, raw []byte) []byte {
	t.Helper()
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	if m, ok := v.(map[string]any); ok {
		if _, ok := m["duration_ms"]; ok {
			m["duration_ms"] = 0
		}
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

// TestReadMatchesGolden checks that admin.Read, which the status page
// serves, answers the read-only requests with the same JSON as the socket
// (the golden files), and refuses every request that is not read-only.
func TestReadMatchesGolden(t *testing.T) {
	fb := &admintest.Backend{}
	for _, req := range admin.ReadRequests {
		if req == admin.ReqGetStats {
			continue // its golden file pins stats set by TestGoldenResponses
		}
		v, err := admin.Read(context.Background(), fb, req)
		if err != nil {
			t.Fatalf("Read(%s): %v", req, err)
		}
		raw, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(filepath.Join("testdata", req+".golden.json"))
		if err != nil {
			t.Fatal(err)
		}
		if got := canonical(t, raw); !bytes.Equal(got, want) {
			t.Errorf("Read(%s) differs from the socket's answer.\n got: %s\nwant: %s", req, got, want)
		}
	}
	for _, req := range []string{admin.ReqAddPeer, admin.ReqRemovePeer, admin.ReqLookup, admin.ReqPing, "nope"} {
		if _, err := admin.Read(context.Background(), fb, req); err == nil {
			t.Errorf("Read(%s) succeeded; only read-only requests may", req)
		}
	}
	if uris := fb.URIs(); len(uris) != 0 {
		t.Errorf("a refused Read reached the backend: static peers %v", uris)
	}
}
