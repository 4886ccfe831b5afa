package admin_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pineconed/pineconed/admin"
	"github.com/pineconed/pineconed/admin/admintest"
	"github.com/pineconed/pineconed/internal/testhelp"
)

func startServer(t *testing.T, cfg admin.ServerConfig) (*admin.Server, *admintest.Backend) {
	t.Helper()
	fb, _ := cfg.Backend.(*admintest.Backend)
	if cfg.Backend == nil {
		fb = &admintest.Backend{}
		cfg.Backend = fb
	}
	if cfg.Path == "" {
		cfg.Path = filepath.Join(t.TempDir(), "admin.sock")
	}
	s, err := admin.Listen(cfg)
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, fb
}

// rawConn speaks the line protocol by hand.
type rawConn struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func dialRaw(t *testing.T, path string) *rawConn {
	t.Helper()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	return &rawConn{t: t, c: c, r: bufio.NewReader(c)}
}

func (rc *rawConn) send(line string) admin.Reply {
	rc.t.Helper()
	if _, err := rc.c.Write([]byte(line + "\n")); err != nil {
		rc.t.Fatalf("write: %v", err)
	}
	return rc.read()
}

func (rc *rawConn) read() admin.Reply {
	rc.t.Helper()
	b, err := rc.r.ReadBytes('\n')
	if err != nil {
		rc.t.Fatalf("read reply: %v", err)
	}
	var r admin.Reply
	if err := json.Unmarshal(b, &r); err != nil {
		rc.t.Fatalf("reply %q is not JSON: %v", b, err)
	}
	if (r.Status == admin.StatusSuccess) == (r.Error != "") {
		rc.t.Fatalf("reply %q: status and error disagree", b)
	}
	return r
}

func TestEveryRequestSucceeds(t *testing.T) {
	s, _ := startServer(t, admin.ServerConfig{})
	rc := dialRaw(t, s.Path())
	key := admintest.ParentKey
	for _, req := range []string{
		`{"request":"getSelf"}`,
		`{"request":"getPeers","arguments":{}}`,
		`{"request":"getTree","arguments":null}`,
		`{"request":"getSnake"}`,
		`{"request":"getSessions"}`,
		`{"request":"getStats"}`,
		`{"request":"addPeer","arguments":{"uri":"tcp://[fd00::9]:1"}}`,
		`{"request":"removePeer","arguments":{"uri":"tcp://[fd00::9]:1"}}`,
		`{"request":"lookup","arguments":{"address":"` + admintest.ParentAddress + `"}}`,
		`{"request":"ping","arguments":{"target":"` + key + `","count":2,"interval_ms":10}}`,
		"  {\"request\":\"getSelf\"}  \r",
	} {
		r := rc.send(req)
		if r.Status != admin.StatusSuccess {
			t.Errorf("%s: got error %q", req, r.Error)
			continue
		}
		if len(r.Response) == 0 || r.Response[0] != '{' {
			t.Errorf("%s: response %q is not an object", req, r.Response)
		}
	}
}

func TestTypedClient(t *testing.T) {
	s, fb := startServer(t, admin.ServerConfig{})
	c, err := admin.Dial(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()

	self, err := c.Self(ctx)
	if err != nil || self.PublicKey != admintest.SelfKey || self.TunMTU != 1420 || len(self.Coords) != 2 {
		t.Fatalf("Self = %+v, %v", self, err)
	}
	peers, err := c.Peers(ctx)
	if err != nil || len(peers) != 2 || !peers[0].IsParent || peers[1].Drops == nil || !peers[1].Duplicate {
		t.Fatalf("Peers = %+v, %v", peers, err)
	}
	tree, err := c.Tree(ctx)
	if err != nil || len(tree.Announcements) != 2 || tree.RootSequence != 42 {
		t.Fatalf("Tree = %+v, %v", tree, err)
	}
	snake, err := c.Snake(ctx)
	if err != nil || snake.Ascending == nil || snake.Ascending.ExpiresInSeconds != nil ||
		snake.Descending == nil || snake.Descending.ExpiresInSeconds == nil || *snake.Descending.ExpiresInSeconds != 8.5 || len(snake.Entries) != 2 {
		t.Fatalf("Snake = %+v, %v", snake, err)
	}
	sess, err := c.Sessions(ctx)
	if err != nil || len(sess) != 2 || sess[0].State != admin.SessionEstablished {
		t.Fatalf("Sessions = %+v, %v", sess, err)
	}
	fb.SetStats(admin.Stats{TreeDepth: 3, Drops: map[string]uint64{"no_route": 7}})
	st, err := c.Stats(ctx)
	if err != nil || st.TreeDepth != 3 || st.Drops["no_route"] != 7 || st.Frames == nil {
		t.Fatalf("Stats = %+v, %v", st, err)
	}

	if err := c.AddPeer(ctx, "tcp://[fd00::5]:7"); err != nil {
		t.Fatal(err)
	}
	if got := fb.URIs(); len(got) != 1 || got[0] != "tcp://[fd00::5]:7" {
		t.Fatalf("backend URIs = %v", got)
	}
	var apiErr *admin.APIError
	if err := c.AddPeer(ctx, "udp://x"); !errors.As(err, &apiErr) || !strings.Contains(err.Error(), "unsupported peer URI") {
		t.Fatalf("AddPeer(udp) = %v, want API error from backend", err)
	}
	if err := c.RemovePeer(ctx, "tcp://[fd00::5]:7"); err != nil {
		t.Fatal(err)
	}
	if err := c.RemovePeer(ctx, "tcp://[fd00::5]:7"); !errors.As(err, &apiErr) || !strings.Contains(err.Error(), "no static peer") {
		t.Fatalf("second RemovePeer = %v", err)
	}

	lk, err := c.Lookup(ctx, "FDC3:c3c3:c3c3:c3c3:c3c3:c3c3:c3c3:c3c3")
	if err != nil || lk.PublicKey != admintest.ParentKey || !lk.Cached || lk.Address != admintest.ParentAddress {
		t.Fatalf("Lookup = %+v, %v", lk, err)
	}
	if _, err := c.Lookup(ctx, admintest.UnknownAddress); !errors.As(err, &apiErr) {
		t.Fatalf("Lookup(unknown) = %v, want API error", err)
	}

	p, err := c.Ping(ctx, admin.PingArgs{Target: admintest.ParentAddress, Count: 3, IntervalMS: 10})
	if err != nil {
		t.Fatal(err)
	}
	if p.Sent != 3 || p.Received != 3 || p.LossPercent != 0 || p.MinRTTMS != 1.5 || p.AvgRTTMS != 1.5 ||
		p.PublicKey != admintest.ParentKey || p.Address != admintest.ParentAddress || len(p.Probes) != 3 || p.Probes[2].Seq != 3 {
		t.Fatalf("Ping = %+v", p)
	}
	p, err = c.Ping(ctx, admin.PingArgs{Target: admintest.UnreachableKey, Count: 2, IntervalMS: 10, TimeoutMS: 30})
	if err != nil {
		t.Fatal(err)
	}
	if p.Sent != 2 || p.Received != 0 || p.LossPercent != 100 || !p.Probes[0].Lost || p.Probes[0].Error != "timeout" || p.Address != "" {
		t.Fatalf("Ping(unreachable) = %+v", p)
	}
}

func TestErrorRepliesKeepConnection(t *testing.T) {
	s, fb := startServer(t, admin.ServerConfig{})
	fb.FailSelf = errors.New("node not started")
	rc := dialRaw(t, s.Path())
	cases := []struct{ line, want string }{
		{`{"request":"frobnicate"}`, `unknown request "frobnicate"`},
		{`{"request":"getSelf"`, "malformed request"},
		{`not json at all`, "malformed request"},
		{`{"request":"getSelf"} {"request":"getSelf"}`, "data after the JSON object"},
		{`{}`, `missing "request"`},
		{`{"request":"getPeers","extra":1}`, "unknown field"},
		{`{"request":"getPeers","arguments":{"verbose":true}}`, `unknown field "verbose"`},
		{`{"request":"getPeers","arguments":[1]}`, "must be a JSON object"},
		{`{"request":"addPeer"}`, `missing "uri"`},
		{`{"request":"addPeer","arguments":{"uri":42}}`, "bad arguments"},
		{`{"request":"addPeer","arguments":{"uri":"` + strings.Repeat("x", admin.MaxURILength+1) + `"}}`, "uri longer"},
		{`{"request":"addPeer","arguments":{"uri":"gopher://x"}}`, "unsupported peer URI"},
		{`{"request":"removePeer","arguments":{"uri":"tcp://[fd00::1]:1"}}`, "no static peer"},
		{`{"request":"lookup","arguments":{}}`, `missing "address"`},
		{`{"request":"lookup","arguments":{"address":"10.0.0.1"}}`, "not a plain IPv6"},
		{`{"request":"lookup","arguments":{"address":"::ffff:10.0.0.1"}}`, "not a plain IPv6"},
		{`{"request":"lookup","arguments":{"address":"fe80::1%eth0"}}`, "not a plain IPv6"},
		{`{"request":"lookup","arguments":{"address":"fd99::1"}}`, "no node owns"},
		{`{"request":"ping","arguments":{}}`, `missing "target"`},
		{`{"request":"ping","arguments":{"target":"nonsense"}}`, "neither an IPv6 address nor"},
		{`{"request":"ping","arguments":{"target":"fd99::1"}}`, "looking up fd99::1"},
		{`{"request":"ping","arguments":{"target":"fd99::1","count":101}}`, "count must be"},
		{`{"request":"ping","arguments":{"target":"fd99::1","count":-1}}`, "count must be"},
		{`{"request":"ping","arguments":{"target":"fd99::1","interval_ms":1}}`, "interval_ms must be"},
		{`{"request":"ping","arguments":{"target":"fd99::1","timeout_ms":-5}}`, "timeout_ms must be"},
		{`{"request":"ping","arguments":{"target":"fd99::1","count":100,"interval_ms":60000}}`, "would make the ping last"},
		{`{"request":"getCard","arguments":{"valid_seconds":-1}}`, "valid_seconds must be"},
		{`{"request":"getCard","arguments":{"host":"[fd00::1]:80"}}`, "without brackets, port or path"},
		{`{"request":"getCard","arguments":{"name":"a\u0007b"}}`, "name contains control characters"},
		{`{"request":"importCard","arguments":{}}`, `missing "card"`},
		{`{"request":"importCard","arguments":{"card":"hello"}}`, "peer card refused: not a well-formed card"},
		{`{"request":"importCard","arguments":{"card":"` + strings.Repeat("x", admin.MaxCardTextLength+1) + `"}}`, "card longer"},
		{`{"request":"removeCard","arguments":{"card":"nobody"}}`, `no peer card with key or name "nobody"`},
		{`{"request":"getSelf"}`, "getSelf: node not started"},
	}
	for _, tc := range cases {
		r := rc.send(tc.line)
		if r.Status != admin.StatusError || !strings.Contains(r.Error, tc.want) {
			t.Errorf("%.60s: got %+v, want error containing %q", tc.line, r, tc.want)
		}
	}
	// Still usable after all of that.
	if r := rc.send(`{"request":"getPeers"}`); r.Status != admin.StatusSuccess {
		t.Fatalf("after errors: %+v", r)
	}
}

func TestOversizeLineGetsErrorThenClose(t *testing.T) {
	s, _ := startServer(t, admin.ServerConfig{MaxLineBytes: 1024})
	rc := dialRaw(t, s.Path())
	if r := rc.send(`{"request":"getSelf","arguments":{}}`); r.Status != admin.StatusSuccess {
		t.Fatalf("small request: %+v", r)
	}
	big := `{"request":"addPeer","arguments":{"uri":"` + strings.Repeat("a", 2000) + `"}}`
	r := rc.send(big)
	if r.Status != admin.StatusError || !strings.Contains(r.Error, "longer than 1024 bytes") {
		t.Fatalf("oversize: %+v", r)
	}
	if _, err := rc.r.ReadByte(); err == nil {
		t.Fatal("connection still open after oversize line")
	}
}

func TestLastLineWithoutNewline(t *testing.T) {
	s, _ := startServer(t, admin.ServerConfig{})
	c, err := net.Dial("unix", s.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _ = c.Write([]byte(`{"request":"getSelf"}`))
	_ = c.(*net.UnixConn).CloseWrite()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	b, err := bufio.NewReader(c).ReadBytes('\n')
	if err != nil || !strings.Contains(string(b), `"status":"success"`) {
		t.Fatalf("reply %q, %v", b, err)
	}
}

func TestManyConcurrentClients(t *testing.T) {
	s, _ := startServer(t, admin.ServerConfig{MaxConns: 64})
	const clients, perClient = 50, 40
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := admin.Dial(s.Path())
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			for j := range perClient {
				var err error
				switch (i + j) % 4 {
				case 0:
					var p []admin.Peer
					p, err = c.Peers(ctx)
					if err == nil && len(p) != 2 {
						err = fmt.Errorf("got %d peers", len(p))
					}
				case 1:
					_, err = c.Self(ctx)
				case 2:
					_, err = c.Lookup(ctx, admintest.ParentAddress)
				case 3:
					_, err = c.Do(ctx, "nope", nil)
					var apiErr *admin.APIError
					if errors.As(err, &apiErr) {
						err = nil
					} else {
						err = fmt.Errorf("unknown request: %v", err)
					}
				}
				if err != nil {
					errs <- fmt.Errorf("client %d request %d: %w", i, j, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// With every slot running a request, a new connection is told so; a slot
// that finishes lets a new client in.
func TestConnectionLimit(t *testing.T) {
	s, fb := startServer(t, admin.ServerConfig{MaxConns: 2})
	fb.SetBlock(true)
	a, b := dialRaw(t, s.Path()), dialRaw(t, s.Path())
	for _, rc := range []*rawConn{a, b} {
		if _, err := rc.c.Write([]byte(`{"request":"getPeers"}` + "\n")); err != nil {
			t.Fatal(err)
		}
	}
	testhelp.WaitFor(t, "both requests to block", 5*time.Second, func() bool { return fb.Blocked() == 2 })
	c := dialRaw(t, s.Path())
	r := c.read()
	if r.Status != admin.StatusError || !strings.Contains(r.Error, "too many") {
		t.Fatalf("third connection: %+v", r)
	}
	if _, err := c.r.ReadByte(); err == nil {
		t.Fatal("third connection left open")
	}
	// Freeing a slot lets a new client in.
	fb.SetBlock(false)
	_ = a.c.Close()
	testhelp.WaitFor(t, "the freed slot to take a new client", 5*time.Second, func() bool {
		d := dialRaw(t, s.Path())
		// A connection refused before the slot is free has its "too
		// many" reply waiting and may already be closed: the write may
		// fail, the reply is still read.
		_, _ = d.c.Write([]byte(`{"request":"getSelf"}` + "\n"))
		return d.read().Status == admin.StatusSuccess
	})
}

func TestRequestTimeout(t *testing.T) {
	s, fb := startServer(t, admin.ServerConfig{RequestTimeout: 50 * time.Millisecond})
	fb.SetBlock(true)
	rc := dialRaw(t, s.Path())
	r := rc.send(`{"request":"getPeers"}`)
	if r.Status != admin.StatusError || !strings.Contains(r.Error, "timed out") {
		t.Fatalf("got %+v", r)
	}
}

// lookup is bounded by LookupTimeout, not RequestTimeout: the daemon's
// resolver takes longer than a request may to give up on an address.
func TestLookupTimeout(t *testing.T) {
	const lookupTimeout = 400 * time.Millisecond
	s, fb := startServer(t, admin.ServerConfig{RequestTimeout: 50 * time.Millisecond, LookupTimeout: lookupTimeout})
	fb.SetBlock(true)
	rc := dialRaw(t, s.Path())
	start := time.Now()
	r := rc.send(`{"request":"lookup","arguments":{"address":"` + admintest.ParentAddress + `"}}`)
	if r.Status != admin.StatusError || !strings.Contains(r.Error, "timed out") {
		t.Fatalf("got %+v", r)
	}
	if took := time.Since(start); took < lookupTimeout {
		t.Fatalf("lookup ended after %v, before its %v bound", took, lookupTimeout)
	}
}

func TestSocketModeAndGroup(t *testing.T) {
	gid := os.Getgid()
	if os.Geteuid() == 0 {
		gid = 4242 // root may give the socket to any group
	}
	s, _ := startServer(t, admin.ServerConfig{Group: strconv.Itoa(gid)})
	fi, err := os.Lstat(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o660 {
		t.Fatalf("mode %v, want socket 0660", fi.Mode())
	}
	if got := fi.Sys().(*syscall.Stat_t).Gid; int(got) != gid {
		t.Fatalf("gid %d, want %d", got, gid)
	}
	// No leftovers from the private bind directory.
	entries, _ := os.ReadDir(filepath.Dir(s.Path()))
	if len(entries) != 1 {
		t.Fatalf("socket directory holds %d entries, want 1", len(entries))
	}

	_, err = admin.Listen(admin.ServerConfig{
		Path: filepath.Join(t.TempDir(), "x.sock"), Group: "no-such-group-pineconed", Backend: &admintest.Backend{},
	})
	if err == nil || !strings.Contains(err.Error(), "no-such-group-pineconed") {
		t.Fatalf("unknown group: %v", err)
	}
}

func TestStaleSocketReplacedLiveOneRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "admin.sock")

	// A socket file whose listener died.
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	_ = ln.Close()
	if _, err := os.Lstat(path); err != nil {
		t.Fatalf("stale socket not left behind: %v", err)
	}
	s1, _ := startServer(t, admin.ServerConfig{Path: path})

	// A second daemon must not take over from a live one.
	_, err = admin.Listen(admin.ServerConfig{Path: path, Backend: &admintest.Backend{}})
	if !errors.Is(err, admin.ErrInUse) {
		t.Fatalf("second Listen: %v, want ErrInUse", err)
	}
	c, err := admin.Dial(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Self(context.Background()); err != nil {
		t.Fatalf("first server broken by second Listen: %v", err)
	}
	c.Close()

	if err := s1.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Fatalf("socket left after Close: %v", err)
	}
	_, err = admin.Dial(path)
	if !errors.Is(err, admin.ErrNotRunning) {
		t.Fatalf("Dial after Close: %v, want ErrNotRunning", err)
	}

	// A regular file is never removed.
	if err := os.WriteFile(path, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Listen(admin.ServerConfig{Path: path, Backend: &admintest.Backend{}}); err == nil {
		t.Fatal("Listen replaced a regular file")
	}
	if b, _ := os.ReadFile(path); string(b) != "keep" {
		t.Fatal("regular file was changed")
	}
}

func TestDialErrors(t *testing.T) {
	dir := t.TempDir()
	_, err := admin.Dial(filepath.Join(dir, "missing.sock"))
	if !errors.Is(err, admin.ErrNotRunning) || !errors.Is(err, syscall.ENOENT) {
		t.Fatalf("missing socket: %v", err)
	}
	if !strings.Contains(err.Error(), "missing.sock") || !strings.Contains(err.Error(), "not running") {
		t.Fatalf("message %q should name the socket and say the daemon is not running", err)
	}
	for _, tc := range []struct {
		err  error
		want error
	}{
		{syscall.ECONNREFUSED, admin.ErrNotRunning},
		{syscall.ENOENT, admin.ErrNotRunning},
		{&net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.EACCES)}, admin.ErrPermission},
		{syscall.EPERM, admin.ErrPermission},
		{syscall.ETIMEDOUT, nil},
	} {
		if got := admin.ClassifyDialError(tc.err); got != tc.want {
			t.Errorf("ClassifyDialError(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

func TestClientContextCancel(t *testing.T) {
	s, fb := startServer(t, admin.ServerConfig{})
	fb.SetBlock(true)
	c, err := admin.Dial(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := c.Peers(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want deadline exceeded", err)
	}
	// The connection is out of step now and says so instead of misreading.
	if _, err := c.Self(context.Background()); err == nil {
		t.Fatal("client reused a connection with a reply still pending")
	}
}

func TestCloseStopsEverything(t *testing.T) {
	before := runtime.NumGoroutine()
	fb := &admintest.Backend{}
	path := filepath.Join(t.TempDir(), "admin.sock")
	s, err := admin.Listen(admin.ServerConfig{Path: path, Backend: fb})
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	for range 5 { // idle connections
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	// One connection stuck in a backend call, one in a long ping.
	fb.SetBlock(true)
	stuck := dialRaw(t, path)
	_, _ = stuck.c.Write([]byte(`{"request":"getTree"}` + "\n"))
	pinging := dialRaw(t, path)
	_, _ = pinging.c.Write([]byte(`{"request":"ping","arguments":{"target":"` + admintest.UnreachableKey + `","count":50,"interval_ms":1000,"timeout_ms":5000}}` + "\n"))
	testhelp.WaitFor(t, "a getter blocked and a ping waiting", 5*time.Second,
		func() bool { return fb.Blocked() == 1 && fb.PingsWaiting() == 1 },
		func() string { return fmt.Sprintf("%d blocked, %d pings waiting", fb.Blocked(), fb.PingsWaiting()) })

	done := make(chan error, 1)
	go func() { done <- s.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return")
	}
	for _, c := range conns {
		_ = c.Close()
	}
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Fatalf("socket still there: %v", err)
	}
	testhelp.WaitFor(t, "the server's goroutines to end", 5*time.Second,
		func() bool { return runtime.NumGoroutine() <= before },
		func() string {
			buf := make([]byte, 1<<16)
			return fmt.Sprintf("%d goroutines after Close, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		})
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// Idle and abusive connections cannot lock the operator out: with 200 of
// them held open (silent ones, ones trickling half a request, ones that
// sent a lookup that blocks and never read), a fresh client still gets its
// answer within 1 s.
func TestIdleAndAbusiveConnectionsCannotLockOut(t *testing.T) {
	s, fb := startServer(t, admin.ServerConfig{})
	fb.SetBlock(true)
	lookup := `{"request":"lookup","arguments":{"address":"` + admintest.ParentAddress + `"}}` + "\n"
	for i := 0; i < 200; i++ {
		c, err := net.Dial("unix", s.Path())
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		t.Cleanup(func() { _ = c.Close() })
		switch i % 3 {
		case 1:
			_, _ = c.Write([]byte(`{"request":`))
		case 2:
			_, _ = c.Write([]byte(lookup))
		}
	}
	fb.SetBlock(false)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	start := time.Now()
	c, err := admin.DialContext(ctx, s.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Self(ctx); err != nil {
		t.Fatalf("status with 200 idle or abusive connections held: %v", err)
	}
	t.Logf("getSelf answered in %v with 200 idle or abusive connections held", time.Since(start).Round(time.Microsecond))
}

// A client that sends no complete first request within
// FirstRequestTimeout is dropped, however it trickles its bytes: it keeps
// trickling until the server has closed its connection, so a deadline
// renewed by each byte would keep it connected past the wait's limit of
// 25 timeouts.
func TestSilentClientDropped(t *testing.T) {
	s, _ := startServer(t, admin.ServerConfig{FirstRequestTimeout: 200 * time.Millisecond})
	rc := dialRaw(t, s.Path())
	// The read ends when the server closes the connection (or, wrongly,
	// sends something); dialRaw's deadline bounds it.
	read := make(chan error, 1)
	go func() {
		_, err := rc.r.ReadByte()
		read <- err
	}()
	var err error
	testhelp.WaitEvery(t, "the server to drop a client trickling a byte every 30 ms", 5*time.Second, 30*time.Millisecond, func() bool {
		_, _ = rc.c.Write([]byte(" ")) // fails once the server has closed
		select {
		case err = <-read:
			return true
		default:
			return false
		}
	})
	if err == nil {
		t.Fatal("server sent something to a client that never finished a request")
	}
}

// A lookup whose client hung up is cancelled: its slot is free for the
// next one at once, not after LookupTimeout. With MaxConns 4, one lookup
// may run at a time.
func TestAbandonedLookupCancelled(t *testing.T) {
	s, fb := startServer(t, admin.ServerConfig{MaxConns: 4, LookupTimeout: time.Hour})
	fb.SetBlock(true)
	lookup := `{"request":"lookup","arguments":{"address":"` + admintest.ParentAddress + `"}}`
	a := dialRaw(t, s.Path())
	if _, err := a.c.Write([]byte(lookup + "\n")); err != nil {
		t.Fatal(err)
	}
	testhelp.WaitFor(t, "the lookup to block", 5*time.Second, func() bool { return fb.Blocked() == 1 })
	// While it runs, a second lookup is refused rather than queued.
	if r := dialRaw(t, s.Path()).send(lookup); r.Status != admin.StatusError || !strings.Contains(r.Error, "too many lookups") {
		t.Fatalf("second lookup while one runs: %+v", r)
	}
	_ = a.c.Close()
	testhelp.WaitFor(t, "the abandoned lookup to end", 5*time.Second, func() bool { return fb.Blocked() == 0 })
	b := dialRaw(t, s.Path())
	if _, err := b.c.Write([]byte(lookup + "\n")); err != nil {
		t.Fatal(err)
	}
	testhelp.WaitFor(t, "the next lookup to run", 5*time.Second, func() bool { return fb.Blocked() == 1 })
}

// A client that only shuts down its sending side (socat at the end of its
// input) still gets its reply: that is not hanging up.
func TestHalfClosedClientGetsReply(t *testing.T) {
	s, fb := startServer(t, admin.ServerConfig{LookupTimeout: 300 * time.Millisecond})
	fb.SetBlock(true)
	rc := dialRaw(t, s.Path())
	if _, err := rc.c.Write([]byte(`{"request":"lookup","arguments":{"address":"` + admintest.ParentAddress + `"}}` + "\n")); err != nil {
		t.Fatal(err)
	}
	testhelp.WaitFor(t, "the lookup to block", 5*time.Second, func() bool { return fb.Blocked() == 1 })
	if err := rc.c.(*net.UnixConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	r := rc.read()
	if r.Status != admin.StatusError || !strings.Contains(r.Error, "timed out") {
		t.Fatalf("half-closed client: %+v, want the lookup's own timeout", r)
	}
}

// A Client whose idle connection the server dropped sends its next
// request on a new connection.
func TestClientRedialsAfterIdleDrop(t *testing.T) {
	s, _ := startServer(t, admin.ServerConfig{FirstRequestTimeout: 50 * time.Millisecond})
	c, err := admin.Dial(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Only once the server has closed the idle connection is the next
	// request the one that must redial.
	testhelp.WaitFor(t, "the server to drop the idle connection", 5*time.Second, c.ServerClosed)
	if _, err := c.Self(context.Background()); err != nil {
		t.Fatalf("after the server dropped the idle connection: %v", err)
	}
}
