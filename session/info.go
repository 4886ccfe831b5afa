package session

import (
	"maps"
	"slices"
	"time"

	"github.com/pineconed/pineconed/overlay/wire"
)

// What the admin API sees of the sessions.

// Info describes one peer's session for the admin API.
type Info struct {
	Remote      wire.PublicKey
	State       string // "established", "handshake" or "waiting" (answered an initiation, not yet confirmed)
	Initiator   bool   // whether we initiated the current keypair
	Age         time.Duration
	KeypairAge  time.Duration // age of the current keypair
	LastRekey   time.Time
	LastReceive time.Time
	BytesIn     uint64
	BytesOut    uint64
	PeerMTU     int // 0 until a handshake told us
	Queued      int
}

// Sessions lists every peer with state.
func (m *Manager) Sessions(now time.Time) []Info {
	m.mu.RLock()
	peers := slices.Collect(maps.Values(m.peers))
	m.mu.RUnlock()
	out := make([]Info, 0, len(peers))
	for _, p := range peers {
		p.mu.Lock()
		if p.dead {
			p.mu.Unlock()
			continue
		}
		in := Info{
			Remote:      p.key,
			Age:         now.Sub(p.created),
			LastRekey:   p.lastRekey,
			LastReceive: p.lastRecv,
			BytesIn:     p.bytesIn.Load(),
			BytesOut:    p.bytesOut.Load(),
			PeerMTU:     p.peerMTU,
			Queued:      len(p.queue),
		}
		switch kp := p.usableLocked(now); {
		case kp != nil:
			in.State = "established"
			in.Initiator = kp.initiator
			in.KeypairAge = now.Sub(kp.created)
		case p.hs != nil:
			in.State = "handshake"
		default:
			in.State = "waiting"
		}
		p.mu.Unlock()
		out = append(out, in)
	}
	return out
}

// PeerMTU returns the TUN MTU that dst announced in its last handshake.
func (m *Manager) PeerMTU(dst wire.PublicKey) (int, bool) {
	m.mu.RLock()
	p := m.peers[dst]
	m.mu.RUnlock()
	if p == nil {
		return 0, false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.peerMTU, p.peerMTU > 0
}
