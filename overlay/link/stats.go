package link

import (
	"sync/atomic"
	"time"

	"github.com/pineconed/pineconed/internal/enum"
)

// Drop is a reason Send refused a frame; it indexes the link's drop
// counters and dropNames, whose entries are the keys of Stats.Drops.
type Drop uint8

const (
	// DropProtocolQueueFull: Send found the protocol queue full.
	DropProtocolQueueFull Drop = iota
	// DropTrafficQueueFull: Send found the traffic queue full, by frames or
	// by bytes.
	DropTrafficQueueFull
	// DropClosed: Send was called after Close.
	DropClosed
	// DropMalformed: Send was given bytes that are not one whole frame.
	DropMalformed
	numDrops
)

// dropNames are the stable names of Drop: admin replies and metric labels.
var dropNames = [numDrops]string{
	DropProtocolQueueFull: "protocol_queue_full",
	DropTrafficQueueFull:  "traffic_queue_full",
	DropClosed:            "closed",
	DropMalformed:         "malformed",
}

// String is the reason's stable name, the key it has in Stats.Drops.
func (d Drop) String() string { return enum.Name(dropNames[:], d, "drop") }

// counters are what only the link knows. The frames it reads and writes
// are counted once, by the node, per port (overlay.PeerStatus In and Out):
// it sees every frame a link hands it and every frame it queues, and the
// link reports the keepalives it makes itself (Receiver.KeepaliveSent).
type counters struct {
	since  time.Time
	drops  [numDrops]atomic.Uint64
	writes atomic.Uint64
}

func (s *counters) drop(d Drop) { s.drops[d].Add(1) }

// Stats is a snapshot of what one link alone counts and holds, for the
// admin API. Frames read and written are not here: the node counts them
// per peering (overlay.PeerStatus).
type Stats struct {
	// ConnectedSince is when the handshake finished and the link was made.
	ConnectedSince time.Time `json:"connected_since"`
	// Drops counts frames Send refused, keyed by Drop.String.
	// Reasons that never happened are absent.
	Drops map[string]uint64 `json:"drops"`
	// Writes counts writes to the connection. The node's frames out on the
	// peering divided by writes is how well the writer batches.
	Writes uint64 `json:"writes"`
	// ProtocolQueued and TrafficQueued are the frames waiting right now.
	ProtocolQueued int `json:"protocol_queued"`
	TrafficQueued  int `json:"traffic_queued"`
	// ProtocolQueuedBytes and TrafficQueuedBytes are the buffer bytes
	// (capacity) the waiting frames hold, which Config's byte caps bound.
	ProtocolQueuedBytes int64 `json:"protocol_queued_bytes"`
	TrafficQueuedBytes  int64 `json:"traffic_queued_bytes"`
}

// Stats returns a snapshot of the link's counters.
func (c *Conn) Stats() Stats {
	trafficFrames, trafficBytes := c.trafficQ.queued()
	s := Stats{
		ConnectedSince: c.stats.since,
		Drops:          map[string]uint64{},
		Writes:         c.stats.writes.Load(),
		ProtocolQueued: len(c.protoQ.ch),
		TrafficQueued:  trafficFrames,

		ProtocolQueuedBytes: c.protoQ.bytes.Load(),
		TrafficQueuedBytes:  trafficBytes,
	}
	for d := range numDrops {
		if n := c.stats.drops[d].Load(); n > 0 {
			s.Drops[d.String()] = n
		}
	}
	return s
}
