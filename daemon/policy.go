package daemon

import (
	"errors"
	"slices"

	"github.com/pineconed/pineconed/config"
	"github.com/pineconed/pineconed/overlay/peers"
)

// applyPeerPolicy applies reloaded listeners, allowed_keys, max_peers and
// peer_timeout.
// A change that fails keeps its running value in live, so the next reload
// reports it again.
func (d *Daemon) applyPeerPolicy(old config.Config, live *config.Config, ch config.Changes) {
	if ch.Changed("peers.max_peers") {
		// The peer manager is the one place max_peers is enforced.
		if err := d.peers.SetMaxPeers(live.Peers.MaxPeers); err != nil {
			d.log.Error("reload: max_peers not changed", "err", err)
			live.Peers.MaxPeers = old.Peers.MaxPeers
		}
	}
	if ch.Changed("peers.peer_timeout") {
		// New peerings get it; running ones keep theirs (see
		// peers.Manager.SetPeerTimeout).
		if err := d.peers.SetPeerTimeout(live.Peers.PeerTimeout); err != nil {
			d.log.Error("reload: peer_timeout not changed", "err", err)
			live.Peers.PeerTimeout = old.Peers.PeerTimeout
		}
	}
	if ch.Changed("peers.allowed_keys") {
		// The peer manager closes running inbound and discovered peerings
		// that the new list no longer allows.
		d.peers.SetAllowedKeys(live.Peers.AllowedKeys)
	}
	if len(ch.ListenAdded) > 0 || len(ch.ListenRemoved) > 0 {
		d.applyListeners(old, live, ch)
	}
}

// applyListeners closes the listeners the file no longer has and opens the
// new ones, in that order, so that a port can move from one scheme to
// another in one reload. Peerings accepted by a closed listener stay up.
// A listener that fails to open is logged and left out of live, so the
// next reload tries it again.
func (d *Daemon) applyListeners(old config.Config, live *config.Config, ch config.Changes) {
	for _, u := range ch.ListenRemoved {
		if err := d.peers.RemoveListener(u); err != nil && !errors.Is(err, peers.ErrUnknownListener) {
			d.log.Warn("reload: closing listener", "uri", u, "err", err)
		}
	}
	var failed []string
	for _, u := range ch.ListenAdded {
		if err := d.peers.AddListener(u); err != nil && !errors.Is(err, peers.ErrListenerExists) {
			d.log.Error("reload: listener did not open", "uri", u, "err", err)
			failed = append(failed, u.String())
		}
	}
	if len(failed) > 0 {
		live.Peers.Listen = slices.DeleteFunc(slices.Clone(live.Peers.Listen), func(u config.PeerURI) bool {
			return slices.Contains(failed, u.String())
		})
	}
}
