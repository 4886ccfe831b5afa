package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pineconed/pineconed/admin"
	"github.com/pineconed/pineconed/admin/admintest"
	"github.com/pineconed/pineconed/internal/testhelp"
)

// childEnv makes the test binary run pineconectl's main logic instead of the
// tests, with arguments from childArgsEnv (JSON). Used to run as another
// user for the permission test.
const (
	childEnv     = "PINECONECTL_TEST_CHILD"
	childArgsEnv = "PINECONECTL_TEST_ARGS"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		var args []string
		if err := json.Unmarshal([]byte(os.Getenv(childArgsEnv)), &args); err != nil {
			os.Exit(99)
		}
		os.Exit(run(context.Background(), args, os.Stdout, os.Stderr, os.Getenv))
	}
	os.Exit(m.Run())
}

func startFake(t *testing.T) (string, *admintest.Backend) {
	t.Helper()
	fb := &admintest.Backend{}
	fb.SetStats(admin.Stats{
		PeersByTransport: map[string]uint64{"tcp": 1, "multicast": 1},
		Frames: map[string]admin.FrameCounters{
			"traffic":   {FramesIn: 1000, FramesOut: 900, BytesIn: 3 << 20, BytesOut: 1 << 20},
			"keepalive": {FramesIn: 10, FramesOut: 10, BytesIn: 100, BytesOut: 100},
		},
		Drops:           map[string]uint64{"queue_full": 3, "no_route": 4},
		SessionsByState: map[string]uint64{"established": 1, "handshaking": 1},
		SnakeEntries:    2,
		Tun:             admin.TunCounters{PacketsRead: 50, PacketsWritten: 60, BytesRead: 5000, BytesWritten: 2048},
	})
	path := filepath.Join(t.TempDir(), "admin.sock")
	s, err := admin.Listen(admin.ServerConfig{Path: path, Backend: fb})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return path, fb
}

// cli runs pineconectl in-process with the socket taken from the
// environment, as a user would set it.
func cli(t *testing.T, socket string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	env := func(k string) string {
		if k == SocketEnv {
			return socket
		}
		return ""
	}
	code = run(context.Background(), args, &out, &errOut, env)
	return code, out.String(), errOut.String()
}

func mustRun(t *testing.T, socket string, args ...string) string {
	t.Helper()
	code, out, errOut := cli(t, socket, args...)
	if code != exitOK {
		t.Fatalf("pineconectl %v: exit %d, stderr %q", args, code, errOut)
	}
	return out
}

// field returns the value of a "Name   value" line.
func field(t *testing.T, out, name string) string {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		if rest, ok := strings.CutPrefix(l, name+"  "); ok {
			return strings.TrimSpace(rest)
		}
	}
	t.Fatalf("no %q line in:\n%s", name, out)
	return ""
}

// table splits aligned output into rows of cells, checking that every
// column starts at the same offset in every row as in the header.
func table(t *testing.T, out string, header ...string) [][]string {
	t.Helper()
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if got := strings.Fields(lines[0]); strings.Join(got, " ") != strings.Join(header, " ") {
		t.Fatalf("header %q, want %q", got, header)
	}
	starts := make([]int, len(header))
	pos := 0
	for i, h := range header {
		starts[i] = strings.Index(lines[0][pos:], h) + pos
		pos = starts[i] + len(h)
	}
	var rows [][]string
	for _, l := range lines[1:] {
		rl := []rune(l)
		var cells []string
		for i, s := range starts {
			if s > len(rl) || (s > 0 && rl[s-1] != ' ') {
				t.Fatalf("row %q not aligned with header %q", l, lines[0])
			}
			end := len(rl)
			if i+1 < len(starts) {
				end = min(starts[i+1], len(rl))
			}
			cells = append(cells, strings.TrimSpace(string(rl[s:end])))
		}
		rows = append(rows, cells)
	}
	return rows
}

func short(k string) string { return k[:16] + "…" }

func TestStatus(t *testing.T) {
	sock, _ := startFake(t)
	out := mustRun(t, sock, "status")
	for name, want := range map[string]string{
		"Public key":   admintest.SelfKey,
		"Address":      "fd1a:1a1a:1a1a:1a1a:1a1a:1a1a:1a1a:1a1a",
		"Uptime":       "1h02m",
		"Root":         short(admintest.RootKey) + " (sequence 42)",
		"Coordinates":  "[2 5]",
		"Parent":       "port 1, " + short(admintest.ParentKey),
		"Peers":        "2 (1 multicast, 1 tcp)",
		"Sessions":     "1 established, 1 handshaking",
		"TUN":          "pcn0, MTU 1420",
		"Overlay in":   "3.0 MiB in 1010 frames",
		"TUN written":  "2.0 KiB in 60 packets",
		"Drops":        "7",
		"SNEK entries": "2",
		"Version":      "v0.1.0-test",
	} {
		if got := field(t, out, name); got != want {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
	full := mustRun(t, sock, "status", "--full-keys")
	if got := field(t, full, "Root"); got != admintest.RootKey+" (sequence 42)" {
		t.Errorf("--full-keys Root: %q", got)
	}
}

func TestPeersTable(t *testing.T) {
	sock, _ := startFake(t)
	peersOut, staticOut, ok := strings.Cut(mustRun(t, sock, "peers"), "\n\n")
	if !ok {
		t.Fatal("no static peer table after the peers table")
	}
	rows := table(t, peersOut, "PORT", "KEY", "TRANSPORT", "DIR", "REMOTE", "UP", "RX", "TX", "DROPS", "FLAGS")
	want := [][]string{
		{"1", `"` + admintest.ParentName + `"`, "tcp", "out", "[fd00::2]:65432", "3m05s", "1.2 MiB", "2.0 KiB", "3", "parent"},
		{"2", short(admintest.PeerKey2), "multicast", "in", "[fe80::7b%eth0]:41…", "59s", "512 B", "700 B", "0", "dup"},
	}
	if len(rows) != len(want) {
		t.Fatalf("%d rows, want %d", len(rows), len(want))
	}
	for i := range want {
		if strings.Join(rows[i], "|") != strings.Join(want[i], "|") {
			t.Errorf("row %d:\n got %q\nwant %q", i, rows[i], want[i])
		}
	}
	// The connected static peer is in the peers table; the other one is
	// listed with its state, when the next attempt is due and why.
	statics := table(t, staticOut, "STATIC", "STATE", "FOR", "NEXT", "FAILS", "ERROR")
	wantStatic := "wss://pinecone.example.org:443/a-…|waiting|12s|in 17s|3|dial tcp [2001:db8::5]:443: conne…"
	if len(statics) != 1 || strings.Join(statics[0], "|") != wantStatic {
		t.Fatalf("static rows %q, want [%s]", statics, wantStatic)
	}
	for _, l := range strings.Split(peersOut+"\n"+staticOut, "\n") {
		if n := len([]rune(l)); n > 100 {
			t.Errorf("line of %d columns in the default table: %q", n, l)
		}
	}

	for _, flag := range []string{"--full-keys", "--wide"} {
		out := mustRun(t, sock, "peers", flag)
		if !strings.Contains(out, admintest.ParentKey+` "`+admintest.ParentName+`"`) || !strings.Contains(out, " tcp://[fd00::2]:65432 ") || !strings.Contains(out, "wss://pinecone.example.org:443/a-rather-long-path/for-the-table") ||
			!strings.Contains(out, "connection refused") {
			t.Errorf("peers %s does not show keys, URIs and errors in full:\n%s", flag, out)
		}
	}
	wide, _, _ := strings.Cut(mustRun(t, sock, "peers", "--wide"), "\n\n")
	rows = table(t, wide, "PORT", "KEY", "TRANSPORT", "DIR", "REMOTE", "UP", "RX", "TX", "DROPS", "FLAGS", "ORIGIN", "IFACE", "COORDS")
	if rows[1][10] != "lan" || rows[1][11] != "eth0" || rows[1][12] != "[2 5 1]" {
		t.Errorf("--wide origin, interface and coords: %q", rows[1])
	}
	js := mustRun(t, sock, "peers", "--json")
	var resp admin.PeersResponse
	if err := json.Unmarshal([]byte(js), &resp); err != nil {
		t.Fatal(err)
	}
	if len(resp.StaticDown) != 1 || resp.StaticDown[0].State != admin.StaticStateWaiting || resp.StaticDown[0].NextAttemptSeconds != 17 {
		t.Errorf("--json static_down: %+v", resp.StaticDown)
	}
}

func TestTreeSnakeSessionsTables(t *testing.T) {
	sock, _ := startFake(t)

	out := mustRun(t, sock, "tree")
	head, body, _ := strings.Cut(out, "\n\n")
	if got := field(t, head, "Parent"); got != "port 1, "+short(admintest.ParentKey) {
		t.Errorf("tree parent %q", got)
	}
	if got := field(t, head, "Ancestors"); got != short(admintest.RootKey)+" → "+short(admintest.ParentKey) {
		t.Errorf("tree ancestors %q", got)
	}
	if got := field(t, head, "Children"); got != "port 2, "+short(admintest.PeerKey2) {
		t.Errorf("tree children %q", got)
	}
	rows := table(t, body, "PORT", "KEY", "ROOT", "SEQ", "COORDS", "RECEIVED")
	if len(rows) != 2 || strings.Join(rows[1], "|") != "2|"+short(admintest.PeerKey2)+"|"+short(admintest.RootKey)+"|41|[2 5 1]|30.5s ago" {
		t.Errorf("tree rows %q", rows)
	}

	out = mustRun(t, sock, "snake")
	head, body, _ = strings.Cut(out, "\n\n")
	// No known expiry prints "-", not "in 0.0s" (issue 10).
	if got := field(t, head, "Ascending"); got != short(admintest.PeerKey2)+" via port 2, expires -" {
		t.Errorf("ascending %q", got)
	}
	if got := field(t, head, "Descending"); got != short(admintest.ParentKey)+" via port 1, expires in 8.5s" {
		t.Errorf("descending %q", got)
	}
	rows = table(t, body, "ORIGIN", "SRC", "DST", "SEQ", "ROOT", "EXPIRES")
	if len(rows) != 2 || strings.Join(rows[1], "|") != short(admintest.ParentKey)+"|1|-|3|"+short(admintest.RootKey)+"/42|2.0s" {
		t.Errorf("snake rows %q", rows)
	}

	rows = table(t, mustRun(t, sock, "sessions"), "KEY", "ADDRESS", "STATE", "AGE", "RX", "TX", "REKEYED", "MTU")
	if len(rows) != 2 ||
		strings.Join(rows[0], "|") != short(admintest.ParentKey)+` "`+admintest.ParentName+`"|`+admintest.ParentAddress+"|established|5m05s|3.0 MiB|1.5 KiB|1m05s ago|1420" ||
		rows[1][6] != "never" || rows[1][7] != "-" {
		t.Errorf("session rows %q", rows)
	}
}

func TestJSONIsTheRawResponse(t *testing.T) {
	sock, _ := startFake(t)
	c, err := admin.Dial(sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for cmd, req := range map[string]string{
		"peers": admin.ReqGetPeers, "tree": admin.ReqGetTree, "snake": admin.ReqGetSnake, "sessions": admin.ReqGetSessions,
	} {
		raw, err := c.Do(context.Background(), req, nil)
		if err != nil {
			t.Fatal(err)
		}
		out := mustRun(t, sock, cmd, "--json")
		var got, want any
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("%s --json: %v\n%s", cmd, err, out)
		}
		_ = json.Unmarshal(raw, &want)
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(want)
		if !bytes.Equal(g, w) {
			t.Errorf("%s --json differs from the API response:\n%s\n%s", cmd, g, w)
		}
	}
	var st struct {
		Self  admin.Self  `json:"self"`
		Stats admin.Stats `json:"stats"`
	}
	if err := json.Unmarshal([]byte(mustRun(t, sock, "status", "--json")), &st); err != nil || st.Self.PublicKey != admintest.SelfKey || st.Stats.SnakeEntries != 2 {
		t.Errorf("status --json: %+v, %v", st, err)
	}
}

func TestPeerAddRemove(t *testing.T) {
	sock, fb := startFake(t)
	if out := mustRun(t, sock, "peer", "add", "tcp://[fd00::3]:65432"); out != "added peer tcp://[fd00::3]:65432\n" {
		t.Errorf("add: %q", out)
	}
	if got := fb.URIs(); len(got) != 1 {
		t.Fatalf("backend has %v", got)
	}
	code, _, errOut := cli(t, sock, "peer", "add", "udp://x")
	if code != exitAPI || !strings.Contains(errOut, "daemon: addPeer: unsupported peer URI") {
		t.Errorf("bad uri: exit %d, %q", code, errOut)
	}
	if out := mustRun(t, sock, "peer", "remove", "tcp://[fd00::3]:65432"); out != "removed peer tcp://[fd00::3]:65432\n" {
		t.Errorf("remove: %q", out)
	}
	code, _, errOut = cli(t, sock, "peer", "remove", "tcp://[fd00::3]:65432")
	if code != exitAPI || !strings.Contains(errOut, "no static peer") {
		t.Errorf("remove unknown: exit %d, %q", code, errOut)
	}
	if code, _, _ := cli(t, sock, "peer", "add"); code != exitUsage {
		t.Errorf("peer add without URI: exit %d", code)
	}
}

func TestLookup(t *testing.T) {
	sock, _ := startFake(t)
	out := mustRun(t, sock, "lookup", admintest.ParentAddress)
	if !strings.HasPrefix(out, admintest.ParentAddress+" is "+admintest.ParentKey+` "`+admintest.ParentName+`" (from cache, `) {
		t.Errorf("lookup: %q", out)
	}
	if code, _, errOut := cli(t, sock, "lookup", "fd99::1"); code != exitAPI || !strings.Contains(errOut, "no node owns fd99::1") {
		t.Errorf("unknown address: exit %d %q", code, errOut)
	}
	if code, _, _ := cli(t, sock, "lookup", "10.1.2.3"); code != exitUsage {
		t.Errorf("IPv4 address: exit %d, want %d", code, exitUsage)
	}
}

func TestPing(t *testing.T) {
	sock, _ := startFake(t)
	out := mustRun(t, sock, "ping", "-c", "3", "-i", "10ms", admintest.ParentAddress)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	want := []string{
		"PING " + admintest.ParentAddress + " (" + short(admintest.ParentKey) + "): 3 probes, interval 10ms",
		"reply from " + admintest.ParentAddress + ": seq=1 time=1.50 ms",
		"reply from " + admintest.ParentAddress + ": seq=2 time=1.50 ms",
		"reply from " + admintest.ParentAddress + ": seq=3 time=1.50 ms",
		"",
		"--- " + admintest.ParentAddress + " ping statistics ---",
		"3 probes sent, 3 received, 0% loss",
		"rtt min/avg/max = 1.50/1.50/1.50 ms",
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("ping output:\n%s\nwant:\n%s", out, strings.Join(want, "\n"))
	}

	code, out, _ := cli(t, sock, "ping", "-c", "2", "-i", "0.01", "-W", "20ms", admintest.UnreachableKey)
	if code != exitNoReplies || strings.Count(out, "no reply from") != 2 || !strings.Contains(out, "2 probes sent, 0 received, 100% loss") ||
		strings.Contains(out, "rtt min") {
		t.Errorf("unreachable: exit %d\n%s", code, out)
	}

	code, out, _ = cli(t, sock, "ping", "--json", "-c", "2", "-i", "10ms", admintest.ParentKey)
	var r admin.PingResponse
	if code != exitOK || json.Unmarshal([]byte(out), &r) != nil || r.Sent != 2 || r.Received != 2 {
		t.Errorf("ping --json: exit %d, %q", code, out)
	}
	if code, _, _ := cli(t, sock, "ping", "--json", "-c", "1", "-W", "20ms", admintest.UnreachableKey); code != exitNoReplies {
		t.Errorf("ping --json unreachable: exit %d", code)
	}

	for _, args := range [][]string{
		{"ping", "-c", "0", admintest.ParentKey},
		{"ping", "-c", "101", admintest.ParentKey},
		{"ping", "-i", "1ms", admintest.ParentKey},
		{"ping", "-i", "soon", admintest.ParentKey},
		{"ping", "not-a-target"},
		{"ping"},
	} {
		if code, _, _ := cli(t, sock, args...); code != exitUsage {
			t.Errorf("%v: exit %d, want %d", args, code, exitUsage)
		}
	}
	if code, _, errOut := cli(t, sock, "ping", "-c", "1", "fd99::1"); code != exitAPI || !strings.Contains(errOut, "looking up fd99::1") {
		t.Errorf("ping unknown address: exit %d %q", code, errOut)
	}
}

func TestPingInterrupted(t *testing.T) {
	sock, fb := startFake(t)
	ctx, cancel := context.WithCancel(context.Background())
	var out bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"--socket", sock, "ping", "-c", "100", "-i", "20ms", admintest.ParentKey}, &out, io.Discard, func(string) string { return "" })
	}()
	testhelp.WaitFor(t, "a few probes answered", 5*time.Second, func() bool { return fb.Pings() >= 3 })
	cancel()
	select {
	case code := <-done:
		if code != exitOK || !strings.Contains(out.String(), "ping statistics") || strings.Contains(out.String(), "100 probes sent") {
			t.Errorf("interrupted ping: exit %d\n%s", code, out.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ping did not stop on interrupt")
	}
}

func TestUsageErrors(t *testing.T) {
	sock, _ := startFake(t)
	for _, args := range [][]string{{"bogus"}, {"peers", "extra"}, {"--no-such-flag", "peers"}, {"status", "--timeout", "soon"}} {
		code, _, errOut := cli(t, sock, args...)
		if code != exitUsage || !strings.Contains(errOut, "--help") {
			t.Errorf("%v: exit %d, stderr %q", args, code, errOut)
		}
	}
	code, out, _ := cli(t, sock, "--help")
	if code != exitOK || !strings.Contains(out, "Exit codes:") || !strings.Contains(out, "4  permission denied") {
		t.Errorf("--help: exit %d\n%s", code, out)
	}
}

func TestNotRunning(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "nope.sock")
	code, _, errOut := cli(t, missing, "peers")
	if code != exitNotRunning || !strings.Contains(errOut, "not running") || !strings.Contains(errOut, missing) {
		t.Errorf("missing socket: exit %d, %q", code, errOut)
	}

	// A socket file nobody listens on (daemon crashed).
	stale := filepath.Join(dir, "stale.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	_ = ln.Close()
	code, _, errOut = cli(t, "", "--socket", stale, "status")
	if code != exitNotRunning || !strings.Contains(errOut, "connection refused") {
		t.Errorf("stale socket: exit %d, %q", code, errOut)
	}

	// version still works, and says the daemon is unknown.
	code, out, _ := cli(t, missing, "version")
	if code != exitOK || !strings.Contains(out, "pineconectl ") || !strings.Contains(out, "pineconed   unknown") {
		t.Errorf("version without daemon: exit %d %q", code, out)
	}
}

func TestVersionAndCompletion(t *testing.T) {
	sock, _ := startFake(t)
	out := mustRun(t, sock, "version")
	if !strings.Contains(out, "pineconed   v0.1.0-test") {
		t.Errorf("version: %q", out)
	}
	out = mustRun(t, sock, "completion", "bash")
	if !strings.Contains(out, "pineconectl") || !strings.Contains(out, "bash completion") {
		t.Errorf("completion bash: %.200q", out)
	}
}

// TestPermissionDenied needs a socket this process may not open. Root
// ignores file permissions, so as root the test re-runs this binary as
// nobody (uid 65534) against a root-owned 0660 socket; as another user it
// removes its own permission from the socket.
func TestPermissionDenied(t *testing.T) {
	dir, err := os.MkdirTemp("", "pineconectl-perm-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "admin.sock")
	s, err := admin.Listen(admin.ServerConfig{Path: sock, Backend: &admintest.Backend{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })

	if os.Geteuid() != 0 {
		if err := os.Chmod(sock, 0); err != nil {
			t.Fatal(err)
		}
		code, _, errOut := cli(t, sock, "peers")
		if code != exitPermission || !strings.Contains(errOut, "sudo") {
			t.Fatalf("exit %d, %q", code, errOut)
		}
		return
	}

	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "pineconectl.test")
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	args, _ := json.Marshal([]string{"--socket", sock, "peers"})
	cmd := exec.Command(bin)
	cmd.Env = []string{childEnv + "=1", childArgsEnv + "=" + string(args)}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Run()
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) {
		t.Fatalf("child as nobody: %v (stderr %q)", err, stderr.String())
	}
	if code := exitErr.ExitCode(); code != exitPermission {
		t.Fatalf("exit %d, want %d; stderr %q", code, exitPermission, stderr.String())
	}
	if msg := stderr.String(); !strings.Contains(msg, "permission denied") || !strings.Contains(msg, sock) ||
		!strings.Contains(msg, "[admin] group") || strings.Contains(msg, "Add your user to group 'root'") || !strings.Contains(msg, "sudo") {
		t.Errorf("message %q", msg)
	}
}

func TestFormatters(t *testing.T) {
	for n, want := range map[uint64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1258291: "1.2 MiB", 5 << 30: "5.0 GiB"} {
		if got := bytesIEC(n); got != want {
			t.Errorf("bytesIEC(%d) = %q, want %q", n, got, want)
		}
	}
	for d, want := range map[time.Duration]string{
		850 * time.Millisecond: "850ms", 45 * time.Second: "45s", 185 * time.Second: "3m05s",
		2*time.Hour + 3*time.Minute + 59*time.Second: "2h03m", 98 * time.Hour: "4d02h", -time.Second: "-",
	} {
		if got := duration(d); got != want {
			t.Errorf("duration(%v) = %q, want %q", d, got, want)
		}
	}
	for in, want := range map[string]time.Duration{"500ms": 500 * time.Millisecond, "0.5": 500 * time.Millisecond, "2": 2 * time.Second} {
		if got, err := parseSpan(in); err != nil || got != want {
			t.Errorf("parseSpan(%q) = %v, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "x", "-1", "1e9"} {
		if _, err := parseSpan(bad); err == nil {
			t.Errorf("parseSpan(%q) accepted", bad)
		}
	}
}

// The permission hint names the socket's group, and never advises joining
// group root.
func TestPermissionHintNeverRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give a file group root and another group")
	}
	path := filepath.Join(t.TempDir(), "admin.sock")
	if err := os.WriteFile(path, nil, 0o660); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(path, -1, 0); err != nil {
		t.Fatal(err)
	}
	h := permissionHint(path)
	if strings.Contains(h, "Add your user to group 'root'") || strings.Contains(h, "group 0") || !strings.Contains(h, "[admin] group") {
		t.Fatalf("hint for a root-group socket: %q", h)
	}
	if err := os.Chown(path, -1, 54321); err != nil {
		t.Fatal(err)
	}
	if h := permissionHint(path); !strings.Contains(h, "Add your user to group") || !strings.Contains(h, "54321") {
		t.Fatalf("hint for gid 54321: %q", h)
	}
}
