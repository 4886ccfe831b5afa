package statuspage_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pineconed/pineconed/admin"
	"github.com/pineconed/pineconed/admin/admintest"
	"github.com/pineconed/pineconed/admin/statuspage"
	"github.com/pineconed/pineconed/internal/testhelp"
)

// get requests path from srv, with host as the Host header unless it is
// empty.
func get(t *testing.T, srv *httptest.Server, method, path, host string) (*http.Response, []byte) {
	t.Helper()
	return testhelp.Fetch(t, srv.Client(), method, srv.URL+path, func(req *http.Request) {
		if host != "" {
			req.Host = host
		}
	})
}

// TestPageHeadersAndMethods checks the safety properties: every response
// has the CSP and the other headers, only GET and HEAD are served, foreign
// Host names are refused, and the page and its assets name no other
// origin (everything it needs is embedded).
func TestPageHeadersAndMethods(t *testing.T) {
	fb := &admintest.Backend{}
	srv := httptest.NewServer(statuspage.Handler(fb, statuspage.NewHistory(fb, time.Second, 4)))
	defer srv.Close()

	for _, tc := range []struct {
		method, path, host string
		code               int
		ctype              string
	}{
		{"GET", "/", "", 200, "text/html; charset=utf-8"},
		{"HEAD", "/", "", 200, "text/html; charset=utf-8"},
		{"GET", "/status.js", "", 200, "text/javascript; charset=utf-8"},
		{"GET", "/status.css", "", 200, "text/css; charset=utf-8"},
		{"GET", "/api/status", "", 200, "application/json"},
		{"GET", "/", "localhost:9977", 200, "text/html; charset=utf-8"},
		{"GET", "/", "[::1]:9977", 200, "text/html; charset=utf-8"},
		{"GET", "/nope", "", 404, ""},
		{"POST", "/", "", 405, ""},
		{"POST", "/api/status", "", 405, ""},
		{"PUT", "/api/status", "", 405, ""},
		{"DELETE", "/", "", 405, ""},
		// DNS rebinding: a name that resolves to us must not read the page.
		{"GET", "/api/status", "attacker.example:9977", 421, ""},
		{"GET", "/", "attacker.example", 421, ""},
	} {
		resp, body := get(t, srv, tc.method, tc.path, tc.host)
		if resp.StatusCode != tc.code {
			t.Errorf("%s %s (Host %q): status %d, want %d: %s", tc.method, tc.path, tc.host, resp.StatusCode, tc.code, body)
		}
		if tc.ctype != "" && resp.Header.Get("Content-Type") != tc.ctype {
			t.Errorf("%s %s: Content-Type %q, want %q", tc.method, tc.path, resp.Header.Get("Content-Type"), tc.ctype)
		}
		for h, want := range map[string]string{
			"Content-Security-Policy": statuspage.CSP,
			"X-Content-Type-Options":  "nosniff",
			"X-Frame-Options":         "DENY",
			"Referrer-Policy":         "no-referrer",
			"Cache-Control":           "no-store",
		} {
			if got := resp.Header.Get(h); got != want {
				t.Errorf("%s %s: %s is %q, want %q", tc.method, tc.path, h, got, want)
			}
		}
	}
	if !strings.Contains(statuspage.CSP, "default-src 'none'") || strings.Contains(statuspage.CSP, "unsafe") {
		t.Errorf("CSP %q must deny by default and allow nothing unsafe", statuspage.CSP)
	}

	// No asset names another origin; the only URL is the SVG namespace.
	external := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+`)
	for _, path := range []string{"/", "/status.js", "/status.css"} {
		_, body := get(t, srv, "GET", path, "")
		for _, m := range external.FindAll(body, -1) {
			if string(m) != "http://www.w3.org" {
				t.Errorf("%s refers to another origin: %s", path, m)
			}
		}
		if path == "/" && (bytes.Contains(body, []byte("<form")) || bytes.Contains(body, []byte("<script>"))) {
			t.Errorf("the page has a form or an inline script")
		}
	}
}

// TestStatusMirrorsAdminAPI checks that /api/status carries, under each
// read-only request's name, exactly what the admin API answers.
func TestStatusMirrorsAdminAPI(t *testing.T) {
	fb := &admintest.Backend{}
	fb.SetStats(admin.Stats{Drops: map[string]uint64{"queue_full": 7}})
	srv := httptest.NewServer(statuspage.Handler(fb, statuspage.NewHistory(fb, time.Second, 4)))
	defer srv.Close()
	_, body := get(t, srv, "GET", "/api/status", "")
	var got map[string]json.RawMessage
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	for _, req := range admin.ReadRequests {
		v, err := admin.Read(context.Background(), fb, req)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := json.Marshal(v)
		if !bytes.Equal(bytes.TrimSpace(got[req]), want) {
			t.Errorf("%s:\n got %s\nwant %s", req, got[req], want)
		}
	}
	var rates statuspage.Rates
	if err := json.Unmarshal(got["rates"], &rates); err != nil || rates.IntervalSeconds != 1 || rates.History == nil || rates.Peers == nil {
		t.Errorf("rates: %s (%v)", got["rates"], err)
	}
}

// TestStatusBackendError: a failing backend gives a 503 with the reason,
// which the page shows.
func TestStatusBackendError(t *testing.T) {
	fb := &admintest.Backend{FailSelf: errors.New("node is shutting down")}
	srv := httptest.NewServer(statuspage.Handler(fb, statuspage.NewHistory(fb, time.Second, 4)))
	defer srv.Close()
	resp, body := get(t, srv, "GET", "/api/status", "")
	var e struct{ Error string }
	if resp.StatusCode != http.StatusServiceUnavailable || json.Unmarshal(body, &e) != nil ||
		!strings.Contains(e.Error, "getSelf") || !strings.Contains(e.Error, "node is shutting down") {
		t.Errorf("status %d, body %s", resp.StatusCode, body)
	}
}

// counting is a backend whose traffic counters the test moves.
type counting struct {
	admintest.Backend
	mu    sync.Mutex
	stats admin.Stats
	peers []admin.Peer
}

func (c *counting) set(overlayIn, overlayOut, tunRead uint64, peers ...admin.Peer) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stats = admin.Stats{
		Frames: map[string]admin.FrameCounters{
			"traffic":   {BytesIn: overlayIn, BytesOut: overlayOut},
			"keepalive": {BytesIn: 0, BytesOut: 0},
		},
		Tun: admin.TunCounters{BytesRead: tunRead},
	}
	c.peers = peers
}

func (c *counting) Stats(context.Context) (admin.Stats, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stats, nil
}

func (c *counting) Peers(context.Context) ([]admin.Peer, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.peers, nil
}

// TestHistoryRates feeds counters at known times: rates are the growth per
// second, the ring keeps the newest points oldest first, a peer's rate
// needs two samples of the same key on its port, and a counter that went
// down (a new peering on the port) reads as zero.
func TestHistoryRates(t *testing.T) {
	b := &counting{}
	h := statuspage.NewHistory(b, 2*time.Second, 3)
	t0 := time.Unix(1_700_000_000, 0)
	peer := func(port uint64, key string, in, out uint64) admin.Peer {
		return admin.Peer{Port: port, PublicKey: key, BytesIn: in, BytesOut: out}
	}

	b.set(1000, 500, 0, peer(1, admintest.ParentKey, 100, 100))
	h.Sample(context.Background(), t0)
	if r := h.Rates(); len(r.History) != 0 || len(r.Peers) != 0 {
		t.Fatalf("one sample gives no rate yet: %+v", r)
	}

	b.set(5000, 2500, 200, peer(1, admintest.ParentKey, 2100, 1100), peer(2, admintest.PeerKey2, 50, 50))
	h.Sample(context.Background(), t0.Add(2*time.Second))
	r := h.Rates()
	want := statuspage.Point{UnixMS: t0.Add(2 * time.Second).UnixMilli(), OverlayInBps: 2000, OverlayOutBps: 1000, TunReadBps: 100}
	if len(r.History) != 1 || r.History[0] != want {
		t.Fatalf("history %+v, want [%+v]", r.History, want)
	}
	wantPeers := []statuspage.PeerRate{
		{Port: 1, PublicKey: admintest.ParentKey, InBps: 1000, OutBps: 500},
		{Port: 2, PublicKey: admintest.PeerKey2}, // new: no rate yet
	}
	if len(r.Peers) != 2 || r.Peers[0] != wantPeers[0] || r.Peers[1] != wantPeers[1] {
		t.Fatalf("peers %+v, want %+v", r.Peers, wantPeers)
	}

	// Port 1 now holds another key; port 2's counters went down.
	b.set(9000, 4500, 200, peer(1, admintest.RootKey, 4000, 4000), peer(2, admintest.PeerKey2, 10, 10))
	h.Sample(context.Background(), t0.Add(4*time.Second))
	r = h.Rates()
	if r.Peers[0].InBps != 0 || r.Peers[0].PublicKey != admintest.RootKey || r.Peers[1].InBps != 0 || r.Peers[1].OutBps != 0 {
		t.Fatalf("peers after replacement and reset: %+v", r.Peers)
	}

	// Two more samples: the ring of 3 keeps the newest three.
	for i := 3; i <= 4; i++ {
		b.set(9000+uint64(i)*1000, 4500, 200)
		h.Sample(context.Background(), t0.Add(time.Duration(2*i)*time.Second))
	}
	r = h.Rates()
	if len(r.History) != 3 {
		t.Fatalf("%d points kept, want 3", len(r.History))
	}
	for i, p := range r.History {
		if wantMS := t0.Add(time.Duration(4+2*i) * time.Second).UnixMilli(); p.UnixMS != wantMS {
			t.Errorf("point %d at %d, want %d (oldest first)", i, p.UnixMS, wantMS)
		}
	}
	if r.History[2].OverlayInBps != 500 || len(r.Peers) != 0 {
		t.Errorf("last point %+v, peers %+v", r.History[2], r.Peers)
	}

	// A sample not after the previous one adds no point.
	h.Sample(context.Background(), t0)
	if got := h.Rates(); len(got.History) != 3 || got.History[2] != r.History[2] {
		t.Errorf("a sample out of order changed the history: %+v", got.History)
	}
}

// TestHistoryRunStops: Run samples at once and returns when stop closes.
func TestHistoryRunStops(t *testing.T) {
	b := &counting{}
	b.set(0, 0, 0)
	h := statuspage.NewHistory(b, 10*time.Millisecond, 10)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.Run(stop)
	}()
	testhelp.WaitFor(t, "two history samples", 5*time.Second, func() bool {
		b.set(uint64(time.Now().UnixNano()%1e6), 0, 0)
		return len(h.Rates().History) >= 2
	})
	close(stop)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after stop")
	}
	if n := len(h.Rates().History); n < 2 {
		t.Errorf("Run took %d samples, want at least 2", n)
	}
}

// blocking is a backend whose Self waits until release is closed.
type blocking struct {
	admintest.Backend
	entered chan struct{}
	release chan struct{}
}

func (b *blocking) Self(ctx context.Context) (admin.Self, error) {
	b.entered <- struct{}{}
	select {
	case <-b.release:
		return b.Backend.Self(ctx)
	case <-ctx.Done():
		return admin.Self{}, ctx.Err()
	}
}

// TestStatusInFlightBound: with MaxInFlight requests waiting on the
// backend, one more is refused at once; the waiting ones then succeed.
func TestStatusInFlightBound(t *testing.T) {
	b := &blocking{entered: make(chan struct{}, statuspage.MaxInFlight+1), release: make(chan struct{})}
	srv := httptest.NewServer(statuspage.Handler(b, statuspage.NewHistory(b, time.Second, 4)))
	defer srv.Close()
	codes := make(chan int, statuspage.MaxInFlight)
	for range statuspage.MaxInFlight {
		go func() {
			resp, err := srv.Client().Get(srv.URL + "/api/status")
			if err != nil {
				codes <- 0
				return
			}
			resp.Body.Close()
			codes <- resp.StatusCode
		}()
	}
	for range statuspage.MaxInFlight {
		<-b.entered
	}
	resp, body := get(t, srv, "GET", "/api/status", "")
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "too many") {
		t.Errorf("request %d: %d %s, want 503", statuspage.MaxInFlight+1, resp.StatusCode, body)
	}
	close(b.release)
	for range statuspage.MaxInFlight {
		if c := <-codes; c != http.StatusOK {
			t.Errorf("a waiting request got %d, want 200", c)
		}
	}
}
