package daemon

import (
	"github.com/pineconed/pineconed/config"
)

// multicastRunner is a running LAN discovery.
type multicastRunner struct {
	stop func()
}

func (m *multicastRunner) close() { m.stop() }

// startMulticast starts LAN discovery. This build has no overlay/multicast
// package yet, so it says so once and runs without discovery.
func startMulticast(d *Daemon, mc config.MulticastConfig) (*multicastRunner, error) {
	d.log.Warn("multicast discovery is not part of this build; configure static peers or listeners")
	return nil, nil
}
