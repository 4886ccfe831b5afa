package daemon

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pineconed/pineconed/admin"
	"github.com/pineconed/pineconed/internal/testhelp"
)

// TestNamespacesPing runs two daemons (the built binary) in two network
// namespaces joined by a veth, peered over TCP on fd00:… ULA underlay
// addresses, and pings each overlay address from the other side with the
// system's ping through the TUNs.
func TestNamespacesPing(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces, a veth pair and TUN devices")
	}
	for _, tool := range []string{"ip", "ping"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s in PATH: %v", tool, err)
		}
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		t.Skipf("needs /dev/net/tun: %v", err)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "pineconed")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/pineconed").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	var rnd [3]byte
	rand.Read(rnd[:])
	id := hex.EncodeToString(rnd[:])
	nsA, nsB := "pcdA"+id, "pcdB"+id
	vethA, vethB := "pva"+id, "pvb"+id
	sh := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	sh("ip", "netns", "add", nsA)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", nsA).Run() })
	sh("ip", "netns", "add", nsB)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", nsB).Run() })
	sh("ip", "link", "add", vethA, "netns", nsA, "type", "veth", "peer", "name", vethB, "netns", nsB)
	sh("ip", "-n", nsA, "addr", "add", "fd00:5a::1/64", "dev", vethA, "nodad")
	sh("ip", "-n", nsB, "addr", "add", "fd00:5a::2/64", "dev", vethB, "nodad")
	for _, c := range [][]string{{nsA, vethA}, {nsB, vethB}} {
		sh("ip", "-n", c[0], "link", "set", c[1], "up")
		sh("ip", "-n", c[0], "link", "set", "lo", "up")
	}

	type node struct {
		ns, sock, addr string
		log            *testhelp.LogBuffer // written by the process's output copiers
	}
	start := func(name, ns, peersTOML string) node {
		t.Helper()
		n := node{ns: ns, sock: filepath.Join(dir, name+".sock"), log: &testhelp.LogBuffer{}}
		cfg := fmt.Sprintf(`private_key_file = %q
[tun]
name = "pcn%s"
[peers]
%s
[multicast]
enable = false
[admin]
socket = %q
[metrics]
listen = ""
`, filepath.Join(dir, name+".key"), id, peersTOML, n.sock)
		path := filepath.Join(dir, name+".toml")
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("ip", "netns", "exec", ns, bin, "-config", path)
		cmd.Stdout, cmd.Stderr = n.log, n.log
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		t.Cleanup(func() {
			cmd.Process.Signal(os.Interrupt)
			select {
			case err := <-exited:
				if err != nil {
					t.Errorf("%s exited with %v", name, err)
				}
			case <-time.After(10 * time.Second):
				cmd.Process.Kill()
				t.Errorf("%s did not stop on SIGINT", name)
			}
			if t.Failed() {
				t.Logf("%s log:\n%s", name, n.log)
			}
			if _, err := os.Stat(n.sock); !os.IsNotExist(err) {
				t.Errorf("%s left its admin socket: %v", name, err)
			}
			if out, _ := exec.Command("ip", "-n", ns, "link", "show", "pcn"+id).CombinedOutput(); !strings.Contains(string(out), "does not exist") {
				t.Errorf("%s left its TUN: %s", name, out)
			}
		})
		var lastErr error
		testhelp.WaitEvery(t, name+" to answer on its admin socket", 10*time.Second, 50*time.Millisecond, func() bool {
			c, err := admin.Dial(n.sock)
			if err != nil {
				lastErr = err
				return false
			}
			defer c.Close()
			s, err := c.Self(context.Background())
			if err != nil {
				lastErr = err
				return false
			}
			n.addr = s.Address
			return true
		}, func() string { return fmt.Sprintf("last error: %v\n%s", lastErr, n.log) })
		return n
	}
	a := start("a", nsA, `listen = ["tcp://[fd00:5a::1]:65432"]`)
	b := start("b", nsB, `static = ["tcp://[fd00:5a::1]:65432"]`)

	ping := func(from node, to string) {
		t.Helper()
		var out []byte
		var err error
		// The peering and the first lookup take a moment; ping is retried
		// until it answers.
		testhelp.WaitEvery(t, fmt.Sprintf("ping %s from %s", to, from.ns), 30*time.Second, 100*time.Millisecond, func() bool {
			out, err = exec.Command("ip", "netns", "exec", from.ns, "ping", "-6", "-c", "3", "-i", "0.2", "-W", "3", to).CombinedOutput()
			return err == nil
		}, func() string { return fmt.Sprintf("%v\n%s", err, out) })
	}
	ping(b, a.addr)
	ping(a, b.addr)
	// Large packets travel whole through the TUNs (default MTU).
	out, err := exec.Command("ip", "netns", "exec", nsB, "ping", "-6", "-c", "2", "-s", "30000", "-W", "3", a.addr).CombinedOutput()
	if err != nil {
		t.Fatalf("large ping: %v\n%s", err, out)
	}
}
