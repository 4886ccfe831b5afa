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
		// The node enforces the bound on Attach, so lowering it takes
		// effect at once for new peerings. The peers package checks its
		// start-up bound as well, so raising it above that needs a
		// restart.
		d.node.SetMaxPeers(live.Peers.MaxPeers)
		if live.Peers.MaxPeers > old.Peers.MaxPeers {
			d.log.Warn("reload: max_peers raised; the peer manager keeps its start-up bound until a restart",
				"running", old.Peers.MaxPeers, "configured", live.Peers.MaxPeers)
		}
	}
	if ch.Changed("peers.listen") {
		d.log.Warn("reload: listener changes need a restart in this build", "running", old.Peers.Listen, "configured", live.Peers.Listen)
		live.Peers.Listen = old.Peers.Listen
	}
	if ch.Changed("peers.allowed_keys") {
		d.log.Warn("reload: allowed_keys changes need a restart in this build")
		live.Peers.AllowedKeys = old.Peers.AllowedKeys
	}
}
