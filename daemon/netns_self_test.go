package daemon

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pineconed/pineconed/addressing/lookup"
	"github.com/pineconed/pineconed/config"
	"github.com/pineconed/pineconed/internal/testhelp"
)

// A packet from the TUN to our own /64 does not go into the overlay (it
// would only come back to us, and the session layer refuses our own key):
// the sender gets ICMPv6 Address Unreachable at once and the drop is
// counted as daemon_to_self. Our node address stays local to the kernel.
func TestNamespaceOwnSubnetUnreachable(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates a network namespace and a TUN device")
	}
	for _, tool := range []string{"ip", "ping"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s in PATH: %v", tool, err)
		}
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		t.Skipf("needs /dev/net/tun: %v", err)
	}
	var rnd [3]byte
	rand.Read(rnd[:])
	id := hex.EncodeToString(rnd[:])
	ns := "pcdS" + id
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	if out, err := exec.Command("ip", "-n", ns, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("lo up: %v\n%s", err, out)
	}

	dir := t.TempDir()
	cfg := config.Default()
	cfg.PrivateKeyFile = filepath.Join(dir, "private.key")
	cfg.TUN.Name = "pcs" + id
	cfg.Multicast.Enable = false
	cfg.Admin.Socket = ""
	cfg.Metrics.Listen = ""
	logs := &testhelp.LogBuffer{}
	d, err := New(Options{
		Config:   cfg,
		Logger:   NewLogger(io.MultiWriter(logs, testWriter{t}), "text", new(slog.LevelVar)),
		Version:  "test",
		Notify:   func(string) {},
		TUNNetNS: "/run/netns/" + ns,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })

	ping := func(dst netip.Addr) (string, error) {
		out, err := exec.Command("ip", "netns", "exec", ns, "ping", "-6", "-c", "1", "-W", "3", dst.String()).CombinedOutput()
		return string(out), err
	}
	// Our node address: answered by the kernel, never seen by the daemon.
	if out, err := ping(d.Address()); err != nil {
		t.Fatalf("ping own address: %v\n%s", err, out)
	}
	// Another address in our /64.
	subnet := d.subnet.Addr().As16()
	subnet[15] = 5
	dst := netip.AddrFrom16(subnet)
	out, err := ping(dst)
	if err == nil || !strings.Contains(out, "Address unreachable") {
		t.Fatalf("ping %s in our own /64: want Address unreachable, got %v\n%s", dst, err, out)
	}
	st, err := d.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Drops["daemon_to_self"] != 1 || st.Drops["session_bad_key"] != 0 {
		t.Fatalf("drops %v, want daemon_to_self 1 and no session_bad_key", st.Drops)
	}
	if rs := d.path.Resolver().Stats(); rs.Count[lookup.LookupStarted] != 0 {
		t.Fatalf("resolver saw the packet: %+v", rs)
	}
}
