package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/pineconed/pineconed/addressing"
	"github.com/pineconed/pineconed/admin"
	"github.com/pineconed/pineconed/overlay"
	"github.com/pineconed/pineconed/overlay/link"
	"github.com/pineconed/pineconed/overlay/peers"
	"github.com/pineconed/pineconed/overlay/peers/peeruri"
	"github.com/pineconed/pineconed/overlay/router"
	"github.com/pineconed/pineconed/overlay/wire"
)

// backend answers admin requests from the daemon's live state.
type backend struct{ d *Daemon }

var _ admin.Backend = backend{}

// lookupPoll is how often an admin lookup looks at the resolver cache
// besides being told when the lookup for its prefix ends.
const lookupPoll = 100 * time.Millisecond

func coords(c wire.Coordinates) []uint64 {
	out := make([]uint64, len(c))
	copy(out, c)
	return out
}

// Self implements admin.Backend.
func (b backend) Self(ctx context.Context) (admin.Self, error) {
	d := b.d
	s := d.node.Self()
	out := admin.Self{
		PublicKey:     d.key.String(),
		Address:       d.addr.String(),
		Subnet:        d.subnet.String(),
		Coords:        coords(s.Coords),
		RootKey:       s.Root.Key.String(),
		RootSequence:  s.Root.Seq,
		ParentPort:    s.Parent.Number(),
		UptimeSeconds: int64(time.Since(d.started).Seconds()),
		Version:       d.opts.Version,
		PeerCount:     s.Peers,
	}
	if s.Parent != router.NoPort {
		out.ParentKey = s.ParentKey.String()
	}
	if d.dev != nil {
		out.TunName = d.dev.Name()
		out.TunMTU = d.dev.MTU()
	}
	return out, nil
}

// transport is the admin API's transport name for a peering: peerings
// made by LAN discovery show as "multicast" whatever they run over.
func transport(info overlay.PeerInfo) string {
	if info.Origin == overlay.OriginLAN {
		return admin.TransportMulticast
	}
	return info.Transport
}

// statsLink is what overlay/link's links add to overlay.Link: their own
// counters. In-memory test links do not have them.
type statsLink interface{ Stats() link.Stats }

// Peers implements admin.Backend. Every field of a peer comes from one
// overlay.PeerStatus (its link's drops from its own Link), so a port that
// is freed and taken again while the list is built cannot lend one
// peering's counters to another.
func (b backend) Peers(ctx context.Context) ([]admin.Peer, error) {
	d := b.d
	now := time.Now()
	out := []admin.Peer{}
	for _, p := range d.node.Peers() {
		ap := admin.Peer{
			Port:          uint64(p.Port),
			PublicKey:     p.Info.Key.String(),
			Address:       addressing.NodeAddr(p.Info.Key).String(),
			URI:           p.Info.URI,
			Transport:     transport(p.Info),
			Inbound:       p.Info.Inbound,
			Origin:        p.Info.Origin.String(),
			Interface:     p.Info.Interface,
			UptimeSeconds: int64(now.Sub(p.Since).Seconds()),
			Drops:         map[string]uint64{},
			Coords:        coords(p.Router.Coords),
			IsParent:      p.Router.IsParent,
			Duplicate:     p.Duplicate,
			Name:          d.cards.name(p.Info.Key),
		}
		for _, c := range p.In {
			ap.FramesIn += c.Frames
			ap.BytesIn += c.Bytes
		}
		for _, c := range p.Out {
			ap.FramesOut += c.Frames
			ap.BytesOut += c.Bytes
		}
		if l, ok := p.Link.(statsLink); ok {
			for k, v := range l.Stats().Drops {
				ap.Drops[k] = v
			}
		}
		if len(ap.Drops) == 0 && p.QueueDrops > 0 {
			ap.Drops["queue_full"] = p.QueueDrops
		}
		out = append(out, ap)
	}
	return out, nil
}

// StaticPeers implements admin.Backend.
func (b backend) StaticPeers(ctx context.Context) ([]admin.StaticPeer, error) {
	now := time.Now()
	out := []admin.StaticPeer{}
	for _, sp := range b.d.peers.List() {
		ap := admin.StaticPeer{
			URI:          sp.URI.String(),
			State:        staticState(sp.State),
			StateSeconds: int64(now.Sub(sp.Since).Seconds()),
			LastError:    sp.LastError,
			Failures:     sp.Failures,
		}
		if sp.State == peers.StateBackoff && sp.NextAttempt.After(now) {
			// Rounded up: "0 s" would read as due already.
			ap.NextAttemptSeconds = int64((sp.NextAttempt.Sub(now) + time.Second - 1) / time.Second)
		}
		out = append(out, ap)
	}
	return out, nil
}

// staticState is the admin API's name for a static peer state.
func staticState(s peers.State) string {
	switch s {
	case peers.StateConnected:
		return admin.StaticStateConnected
	case peers.StateBackoff:
		return admin.StaticStateWaiting
	}
	return admin.StaticStateDialling
}

// Tree implements admin.Backend.
func (b backend) Tree(ctx context.Context) (admin.Tree, error) {
	d := b.d
	s := d.node.Self()
	out := admin.Tree{
		RootKey:       s.Root.Key.String(),
		RootSequence:  s.Root.Seq,
		Coords:        coords(s.Coords),
		ParentPort:    s.Parent.Number(),
		Announcements: []admin.TreeAnnouncement{},
	}
	if s.Parent != router.NoPort {
		out.ParentKey = s.ParentKey.String()
	}
	out.Ancestors, out.Children = []string{}, []admin.TreeChild{}
	now := time.Now()
	for _, p := range d.node.Peers() {
		v := p.Router
		if !v.HasAnnouncement {
			continue
		}
		if v.IsParent {
			for _, k := range v.Ancestry {
				out.Ancestors = append(out.Ancestors, k.String())
			}
		}
		// A child's coordinates are ours plus the port it has at us.
		if v.Root == s.Root && len(v.Coords) == len(s.Coords)+1 &&
			slices.Equal(v.Coords[:len(s.Coords)], s.Coords) && v.Coords[len(s.Coords)] == uint64(p.Port) {
			out.Children = append(out.Children, admin.TreeChild{Port: uint64(p.Port), PublicKey: p.Info.Key.String()})
		}
		out.Announcements = append(out.Announcements, admin.TreeAnnouncement{
			Port:               uint64(p.Port),
			PublicKey:          p.Info.Key.String(),
			RootKey:            v.Root.Key.String(),
			RootSequence:       v.Root.Seq,
			Coords:             coords(v.Coords),
			ReceivedAgoSeconds: now.Sub(v.ReceivedAt).Seconds(),
		})
	}
	return out, nil
}

// Snake implements admin.Backend.
func (b backend) Snake(ctx context.Context) (admin.Snake, error) {
	s := b.d.node.Snake()
	now := time.Now()
	out := admin.Snake{Entries: []admin.SnakeEntry{}}
	expiries := map[wire.PublicKey]time.Time{}
	for _, e := range s.Entries {
		expiries[e.Originator] = e.Expires
		out.Entries = append(out.Entries, admin.SnakeEntry{
			OriginKey:         e.Originator.String(),
			SourcePort:        e.Source.Number(),
			DestinationPort:   e.Destination.Number(),
			WatermarkSequence: e.Watermark.Seq,
			RootKey:           e.Root.Key.String(),
			RootSequence:      e.Root.Seq,
			ExpiresInSeconds:  max(0, e.Expires.Sub(now).Seconds()),
		})
	}
	if s.HasAscending {
		// Our ascending neighbour is where our bootstraps go; it has no
		// route entry of its own here, so no expiry unless it also
		// bootstrapped through us.
		n := &admin.SnakeNeighbour{PublicKey: s.Ascending.String(), Port: s.AscendingPort.Number()}
		if exp, ok := expiries[s.Ascending]; ok {
			n.ExpiresInSeconds = expiresIn(exp, now)
		}
		out.Ascending = n
	}
	if s.HasDescending {
		out.Descending = &admin.SnakeNeighbour{
			PublicKey:        s.Descending.Originator.String(),
			Port:             s.Descending.Source.Number(),
			ExpiresInSeconds: expiresIn(s.Descending.Expires, now),
		}
	}
	return out, nil
}

// expiresIn is a neighbour's expires_in_seconds.
func expiresIn(exp, now time.Time) *float64 {
	s := max(0, exp.Sub(now).Seconds())
	return &s
}

// sessionState maps the session layer's states onto the admin API's.
func sessionState(s string) string {
	switch s {
	case "established":
		return admin.SessionEstablished
	case "handshake", "waiting":
		return admin.SessionHandshaking
	}
	return s
}

// Sessions implements admin.Backend.
func (b backend) Sessions(ctx context.Context) ([]admin.Session, error) {
	now := time.Now()
	out := []admin.Session{}
	for _, s := range b.d.path.Sessions().Sessions(now) {
		as := admin.Session{
			RemoteKey:        s.Remote.String(),
			RemoteAddress:    addressing.NodeAddr(s.Remote).String(),
			State:            sessionState(s.State),
			AgeSeconds:       int64(s.Age.Seconds()),
			BytesIn:          s.BytesIn,
			BytesOut:         s.BytesOut,
			LastRekeySeconds: -1,
			PeerMTU:          s.PeerMTU,
			Name:             b.d.cards.name(s.Remote),
		}
		if !s.LastRekey.IsZero() {
			as.LastRekeySeconds = int64(now.Sub(s.LastRekey).Seconds())
		}
		out = append(out, as)
	}
	return out, nil
}

// Card implements admin.Backend.
func (b backend) Card(ctx context.Context, a admin.CardArgs) (admin.CardResponse, error) {
	text, c, err := b.d.Card(a.Host, a.Name, time.Duration(a.ValidSeconds)*time.Second)
	if err != nil {
		return admin.CardResponse{}, err
	}
	info := cardInfo(&heldCard{card: c}, time.Now())
	info.Source = ""
	return admin.CardResponse{Card: text, CardInfo: info}, nil
}

// ImportCard implements admin.Backend.
func (b backend) ImportCard(ctx context.Context, text string) (admin.CardInfo, bool, error) {
	return b.d.ImportCard([]byte(text))
}

// Cards implements admin.Backend.
func (b backend) Cards(ctx context.Context) ([]admin.CardInfo, error) { return b.d.Cards(), nil }

// RemoveCard implements admin.Backend.
func (b backend) RemoveCard(ctx context.Context, id string) (admin.CardInfo, error) {
	return b.d.RemoveCard(id)
}

// KeyName implements admin.Backend.
func (b backend) KeyName(key [32]byte) string { return b.d.cards.name(key) }

// Stats implements admin.Backend.
func (b backend) Stats(ctx context.Context) (admin.Stats, error) { return b.d.Stats(ctx) }

// AddPeer implements admin.Backend. The request's URI is parsed here, once.
func (b backend) AddPeer(ctx context.Context, uri string) error {
	u, err := peeruri.ParsePeer(uri)
	if err != nil {
		return err
	}
	if err := b.d.peers.Add(u, overlay.OriginAdmin); err != nil {
		return err
	}
	b.d.log.Info("static peer added over the admin socket", "uri", uri)
	return nil
}

// RemovePeer implements admin.Backend.
func (b backend) RemovePeer(ctx context.Context, uri string) error {
	u, err := peeruri.ParsePeer(uri)
	if err != nil {
		return err
	}
	if err := b.d.peers.Remove(u); err != nil {
		return err
	}
	b.d.log.Info("static peer removed over the admin socket", "uri", uri)
	return nil
}

// Lookup implements admin.Backend. An address not in the cache starts a
// lookup over the overlay (or joins the one running for its prefix) and
// waits for its outcome: the key when an owner answers, an error naming the
// address as soon as the resolver gives up, or ctx's error.
func (b backend) Lookup(ctx context.Context, s string) ([32]byte, bool, error) {
	d := b.d
	a, err := netip.ParseAddr(s)
	if err != nil {
		return [32]byte{}, false, fmt.Errorf("lookup %s: %w", s, err)
	}
	prefix, ok := addressing.PrefixOf(a)
	if !ok {
		return [32]byte{}, false, fmt.Errorf("lookup %s: not an overlay address (fd00::/8 node addresses, fc00::/8 subnets)", a)
	}
	if addressing.Belongs(a, d.key) {
		return d.key, true, nil
	}
	if k, ok := d.path.Resolver().Lookup(time.Now(), a); ok {
		return k, true, nil
	}
	// Register before starting, so that an answer arriving at once is not
	// missed.
	done, unregister := d.awaitLookup(prefix)
	defer unregister()
	if k, ok := d.path.Resolver().Resolve(time.Now(), a, nil); ok {
		return k, false, nil
	}
	// The resolver's cache is also filled by handshakes (Learn), which end
	// a pending lookup too; the poll is a safety net for a lookup the
	// resolver could not start (too many pending).
	t := time.NewTicker(lookupPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return [32]byte{}, false, fmt.Errorf("lookup %s: no answer yet: %w", a, ctx.Err())
		case <-d.stop:
			return [32]byte{}, false, errors.New("lookup: daemon shutting down")
		case r := <-done:
			if !r.ok {
				what := ""
				if prefix.Kind() == addressing.KindSubnet {
					what = " for " + prefix.String()
				}
				return [32]byte{}, false, fmt.Errorf("no node owns %s: no answer to the lookup%s in %s",
					a, what, r.latency.Round(100*time.Millisecond))
			}
			if k, ok := d.path.Resolver().Lookup(time.Now(), a); ok {
				return k, false, nil
			}
			done = nil // found but already gone from the cache: poll on
		case <-t.C:
			if k, ok := d.path.Resolver().Lookup(time.Now(), a); ok {
				return k, false, nil
			}
		}
	}
}

// Ping implements admin.Backend: one echo request over the session to key,
// matched to its reply by a fresh id.
func (b backend) Ping(ctx context.Context, key [32]byte) (time.Duration, error) {
	d := b.d
	k := wire.PublicKey(key)
	if k == d.key {
		return 0, errors.New("ping: that is this node's own key")
	}
	id := d.pingNext.Add(1)
	ch := make(chan time.Time, 1)
	d.pingMu.Lock()
	d.pings[id] = pingWaiter{key: k, ch: ch}
	d.pingMu.Unlock()
	defer func() {
		d.pingMu.Lock()
		delete(d.pings, id)
		d.pingMu.Unlock()
	}()
	start := time.Now()
	d.path.Sessions().SendEcho(start, k, id, nil)
	select {
	case at := <-ch:
		return at.Sub(start), nil
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-d.stop:
		return 0, errors.New("ping: daemon shutting down")
	}
}

// onEchoReply hands an echo reply to the probe waiting for its id; late
// replies find nobody and are ignored.
func (d *Daemon) onEchoReply(src wire.PublicKey, id uint64, _ []byte) {
	at := time.Now()
	d.pingMu.Lock()
	w, ok := d.pings[id]
	d.pingMu.Unlock()
	if !ok || w.key != src {
		d.log.Debug("echo reply for no probe", "peer", src, "id", id)
		return
	}
	select {
	case w.ch <- at:
	default:
	}
}

// pingWaiter is one probe waiting for its echo reply.
type pingWaiter struct {
	key wire.PublicKey
	ch  chan time.Time
}
