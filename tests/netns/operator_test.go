package netns

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pineconed/pineconed/config"
)

// runSecond runs a second pineconed in nd's namespace with the given key
// file and TUN name (no admin socket, metrics or discovery), waits for it
// to exit and returns its output and exit status. A second daemon that
// keeps running is killed and fails the test.
func runSecond(t *testing.T, nd *Node, keyPath, tun string) (string, int) {
	t.Helper()
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "second.toml")
	text := fmt.Sprintf("private_key_file = %s\n[tun]\nname = %s\n[multicast]\nenable = false\n[admin]\nsocket = \"\"\n[metrics]\nlisten = \"\"\n",
		strconv.Quote(keyPath), strconv.Quote(tun))
	if err := os.WriteFile(cfgPath, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", "netns", "exec", nd.NS, pineconedBin, "-config", cfgPath).CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("the second daemon (key %s, TUN %s) kept running beside the first:\n%s", keyPath, tun, out)
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("the second daemon (key %s, TUN %s) started and exited 0, want a refusal:\n%s", keyPath, tun, out)
	}
	return string(out), ee.ExitCode()
}

// newKeyFile writes a fresh private key into dir.
func newKeyFile(t *testing.T, dir string) string {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "private.key")
	if err := os.WriteFile(p, config.EncodeKey(priv), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSecondDaemonLeavesFirstAlone: a second pineconed in the namespace of
// a running one is refused, whatever differs, and the first keeps its
// routes, its TUN and its health.
func TestSecondDaemonLeavesFirstAlone(t *testing.T) {
	n := newNet(t)
	a := n.Node("a")
	a.Start()
	checkFirst := func(after string) {
		t.Helper()
		for _, dst := range []string{"fd99::1", "fc12::1"} {
			if r := a.MustIP("-6", "route", "get", dst); !strings.Contains(r, "dev "+tunName) {
				t.Fatalf("after %s: route to %s is %q, want dev %s", after, dst, strings.TrimSpace(r), tunName)
			}
		}
		if !a.Running() {
			t.Fatalf("after %s: the first daemon died: %v", after, a.exitErr())
		}
		a.Self()
	}

	// Another identity, another TUN name: the overlay routes are held.
	out, code := runSecond(t, a, newKeyFile(t, t.TempDir()), "pcd1")
	if code != 1 || !strings.Contains(out, "already held by interface "+tunName) {
		t.Fatalf("other key, other TUN: exit %d, want 1 naming %s:\n%s", code, tunName, out)
	}
	checkFirst("a second daemon with another TUN")

	// The same TUN name: not adopted.
	out, code = runSecond(t, a, newKeyFile(t, t.TempDir()), tunName)
	if code != 1 || !strings.Contains(out, "already exists") {
		t.Fatalf("other key, same TUN: exit %d, want 1 saying the interface exists:\n%s", code, out)
	}
	checkFirst("a second daemon with the same TUN name")

	// The same key file: refused, naming the running daemon, before
	// anything is created.
	out, code = runSecond(t, a, a.KeyPath, "pcd2")
	if want := fmt.Sprintf("in use by process %d", a.PID()); code != 1 || !strings.Contains(out, want) {
		t.Fatalf("same key: exit %d, want 1 and %q:\n%s", code, want, out)
	}
	if strings.Contains(out, "TUN up") {
		t.Fatalf("same key: the TUN was created before the key was locked:\n%s", out)
	}
	checkFirst("a second daemon with the same key")
}

// TestTUNDeletedExitsNonZero: `ip link del` of the daemon's TUN is noticed
// at once; the daemon logs an ERROR and exits 1 so that systemd restarts
// it, and the restart brings the TUN back.
func TestTUNDeletedExitsNonZero(t *testing.T) {
	n := newNet(t)
	a := n.Node("a")
	a.Start()
	a.MustIP("link", "del", tunName)
	deleted := time.Now()
	waitFor(t, "the daemon to exit after its TUN was deleted", 10*time.Second, 50*time.Millisecond, func() (bool, string) {
		return !a.Running(), "still running"
	})
	t.Logf("exited %s after `ip link del`", time.Since(deleted).Round(time.Millisecond))
	var ee *exec.ExitError
	if err := a.exitErr(); !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("exit: %v, want status 1", err)
	}
	log, err := os.ReadFile(a.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(log), `level=ERROR msg="TUN interface deleted" name=`+tunName) {
		t.Fatalf("no ERROR naming the TUN in the log:\n%s", a.logTail(30))
	}
	a.Stop(0)
	a.Start()
	if r := a.MustIP("-6", "route", "get", "fd99::1"); !strings.Contains(r, "dev "+tunName) {
		t.Fatalf("after the restart: route %q", r)
	}
}
