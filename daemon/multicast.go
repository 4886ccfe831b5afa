package daemon

import (
	"fmt"

	"github.com/pineconed/pineconed/config"
	"github.com/pineconed/pineconed/overlay/multicast"
)

// multicastRunner is a running LAN discovery.
type multicastRunner struct {
	disc *multicast.Discovery
	log  func(msg string, args ...any)
}

func (m *multicastRunner) close() {
	if err := m.disc.Close(); err != nil {
		m.log("closing multicast discovery", "err", err)
	}
}

// startMulticast starts LAN discovery with the [multicast] options. Our own
// TUN is never used for discovery.
func startMulticast(d *Daemon, mc config.MulticastConfig) (*multicastRunner, error) {
	pats, err := mc.InterfacePatterns()
	if err != nil {
		return nil, fmt.Errorf("multicast: %w", err)
	}
	var exclude []string
	if d.dev != nil {
		exclude = append(exclude, d.dev.Name())
	}
	disc, err := multicast.New(multicast.Config{
		Key:        d.key,
		Interfaces: pats,
		Exclude:    exclude,
		ListenPort: mc.ListenPort,
		Logger:     d.log,
	}, d.peers)
	if err != nil {
		return nil, fmt.Errorf("multicast discovery: %w", err)
	}
	return &multicastRunner{disc: disc, log: d.log.Warn}, nil
}
