package daemon

import (
	"github.com/pineconed/pineconed/config"
)

// applyPeerPolicy applies reloaded listeners, allowed_keys and max_peers.
// What the peers package cannot change at run time keeps its running value
// in live (so the next reload reports it again) and is logged as needing a
// restart.
func (d *Daemon) applyPeerPolicy(old config.Config, live *config.Config, ch config.Changes) {
	if ch.Changed("peers.max_peers") {
		// Both bounds move: the peer manager's (it refuses before the
		// handshake's Attach) and the node's (it refuses on Attach).
		if err := d.peers.SetMaxPeers(live.Peers.MaxPeers); err != nil {
			d.log.Error("reload: max_peers not changed", "err", err)
			live.Peers.MaxPeers = old.Peers.MaxPeers
		} else {
			d.node.SetMaxPeers(live.Peers.MaxPeers)
		}
	}
	if ch.Changed("peers.allowed_keys") {
		// The peer manager closes running inbound and discovered peerings
		// that the new list no longer allows.
		d.peers.SetAllowedKeys(live.Peers.AllowedKeys)
	}
	if len(ch.ListenAdded) > 0 || len(ch.ListenRemoved) > 0 {
		// overlay/peers opens listeners only in New; it has no way to add
		// or close one on a running manager.
		d.log.Warn("reload: listener changes take effect only after a restart",
			"added", ch.ListenAdded, "removed", ch.ListenRemoved)
		live.Peers.Listen = old.Peers.Listen
	}
}
