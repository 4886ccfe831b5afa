package tun

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

// openNamed opens a TUN called name in ns, returning Open's error.
func openNamed(ns, name string, addr netip.Addr) (*Device, error) {
	return Open(Config{
		Name:      name,
		Addresses: []netip.Prefix{netip.PrefixFrom(addr, 8)},
		NetNSPath: "/run/netns/" + ns,
	})
}

// A route another interface holds for an overlay prefix is refused with its
// name, never replaced, and nothing of ours is left behind.
func TestOpenRefusesRouteHeldByAnotherInterface(t *testing.T) {
	requireNetNS(t)
	ns := newNetNS(t)
	ipIn(t, ns, "link", "add", "pcveth0", "type", "veth", "peer", "name", "pcveth1")
	ipIn(t, ns, "link", "set", "pcveth0", "up")
	ipIn(t, ns, "-6", "route", "add", "fd00::/8", "dev", "pcveth0")
	d, err := openNamed(ns, "pctun0", nodeAddr(1))
	if err == nil {
		d.Close()
		t.Fatal("Open took over a route held by pcveth0")
	}
	if !strings.Contains(err.Error(), "fd00::/8") || !strings.Contains(err.Error(), "pcveth0") {
		t.Fatalf("error does not name the prefix and the interface holding it: %v", err)
	}
	if r := ipIn(t, ns, "-6", "route", "show", "fd00::/8"); !strings.Contains(r, "dev pcveth0") {
		t.Fatalf("pcveth0's route is gone: %q", r)
	}
	if out := ipIn(t, ns, "link", "show"); strings.Contains(out, "pctun0") {
		t.Fatalf("failed Open left its interface behind: %s", out)
	}
}

// A second device in the same namespace (another daemon with another TUN
// name) fails and, on its way out, leaves the first one's routes alone.
func TestSecondDeviceLeavesFirstDevicesRoutes(t *testing.T) {
	requireNetNS(t)
	ns := newNetNS(t)
	first := openIn(t, ns, nodeAddr(1), 1400)
	second, err := openNamed(ns, "pctun1", nodeAddr(2))
	if err == nil {
		second.Close()
		t.Fatal("second device opened over the first one's routes")
	}
	if !strings.Contains(err.Error(), first.Name()) {
		t.Fatalf("error does not name %s: %v", first.Name(), err)
	}
	for _, dst := range []string{"fd99::1", "fc12::1"} {
		if r := ipIn(t, ns, "-6", "route", "get", dst); !strings.Contains(r, "dev "+first.Name()) {
			t.Fatalf("after the second device failed, route to %s: %s", dst, r)
		}
	}
}

// An existing interface of the configured name (here a persistent TUN that
// TUNSETIFF would attach to) is neither adopted nor deleted.
func TestOpenRefusesExistingInterface(t *testing.T) {
	requireNetNS(t)
	ns := newNetNS(t)
	ipIn(t, ns, "tuntap", "add", "dev", "pctun0", "mode", "tun")
	d, err := openNamed(ns, "pctun0", nodeAddr(1))
	if err == nil {
		d.Close()
		t.Fatal("Open adopted an existing interface")
	}
	if !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("unclear error: %v", err)
	}
	if out := ipIn(t, ns, "link", "show"); !strings.Contains(out, "pctun0") {
		t.Fatal("the existing interface was deleted")
	}
}

// Deleting the interface from outside closes Gone; closing the device
// ourselves does not.
func TestGoneWhenInterfaceDeleted(t *testing.T) {
	requireNetNS(t)
	ns := newNetNS(t)
	d := openIn(t, ns, nodeAddr(1), 1400)
	select {
	case <-d.Gone():
		t.Fatal("Gone closed before anything happened")
	case <-time.After(100 * time.Millisecond):
	}
	ipIn(t, ns, "link", "del", d.Name())
	select {
	case <-d.Gone():
	case <-time.After(5 * time.Second):
		t.Fatal("Gone not closed 5 s after `ip link del`")
	}
	if err := d.Close(); err != nil {
		t.Logf("Close after deletion: %v", err)
	}

	d2 := openIn(t, ns, nodeAddr(1), 1400)
	if err := d2.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-d2.Gone():
		t.Fatal("Gone closed by our own Close")
	default:
	}
}
