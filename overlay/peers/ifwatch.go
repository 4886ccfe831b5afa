package peers

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// ErrInterfaceDown closes the peerings whose traffic left by a network
// interface that went down or away.
var ErrInterfaceDown = errors.New("network interface down")

// watchInterfaces follows the kernel's link notifications (netlink) and
// ends at once the peerings over an interface that goes down: the kernel
// knows the link is gone, so there is no point in waiting for the read
// timeout. It runs until the manager closes. Without netlink (not Linux,
// or not allowed) the manager works as before, on timeouts alone.
func (m *Manager) watchInterfaces() {
	ch := make(chan netlink.LinkUpdate, 64)
	done := make(chan struct{})
	err := netlink.LinkSubscribeWithOptions(ch, done, netlink.LinkSubscribeOptions{
		ErrorCallback: func(err error) {
			if m.ctx.Err() == nil {
				m.log.Warn("interface watch", "err", err)
			}
		},
	})
	if err != nil {
		m.log.Info("not watching network interfaces; dead links are noticed by timeouts only", "err", err)
		return
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		defer func() {
			close(done)
			// The subscription's reader may be blocked handing over an
			// update; it closes ch once its socket is shut.
			for range ch {
			}
		}()
		for {
			select {
			case u, ok := <-ch:
				if !ok {
					if m.ctx.Err() == nil {
						m.log.Warn("interface watch stopped; dead links are noticed by timeouts only")
					}
					return
				}
				if linkDown(u) {
					m.dropInterface(int(u.Index), u.Attrs().Name)
				}
			case <-m.ctx.Done():
				return
			}
		}
	}()
}

// linkDown reports whether an update means that nothing passes the
// interface any more: deleted, administratively down, or without carrier
// (the far end of a veth or a cable went down). Interfaces that report no
// operational state (OperUnknown, as tun and loopback do) count as up.
func linkDown(u netlink.LinkUpdate) bool {
	if u.Header.Type == unix.RTM_DELLINK {
		return true
	}
	a := u.Attrs()
	if a == nil {
		return false
	}
	return a.Flags&net.FlagUp == 0 || a.OperState == netlink.OperDown || a.OperState == netlink.OperLowerLayerDown
}

// dropInterface closes every peering over the interface with index idx.
func (m *Manager) dropInterface(idx int, name string) {
	for _, p := range m.sw.Peerings() {
		if p.Info.Ifindex == idx {
			m.log.Info("closing peering: its interface went down", "iface", name, "peer", p.Info.Key)
			p.Link.Close(fmt.Errorf("%w: %s", ErrInterfaceDown, name))
		}
	}
}

// interfaceOf returns the index of the interface a connection's packets
// leave by: the zone of a link-local remote address, else the kernel's
// route to the remote address. It is 0 when that cannot be told (a
// remote address that is not an IP address, as on the client side of a
// WebSocket, or no route); such peerings rely on timeouts alone.
func interfaceOf(remote net.Addr) int {
	if remote == nil {
		return 0
	}
	ap, err := netip.ParseAddrPort(remote.String())
	if err != nil {
		return 0
	}
	if zone := ap.Addr().Zone(); zone != "" {
		if ifi, err := net.InterfaceByName(zone); err == nil {
			return ifi.Index
		}
		return 0
	}
	routes, err := netlink.RouteGet(ap.Addr().AsSlice())
	if err != nil || len(routes) == 0 {
		return 0
	}
	return routes[0].LinkIndex
}
