package link

import (
	"sync/atomic"
	"time"

	"github.com/pineconed/pineconed/internal/enum"
	"github.com/pineconed/pineconed/overlay/wire"
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

type counter struct{ frames, bytes atomic.Uint64 }

func (c *counter) add(n int) {
	c.frames.Add(1)
	c.bytes.Add(uint64(n))
}

type counters struct {
	since   time.Time
	in, out [wire.CountedTypes]counter
	drops   [numDrops]atomic.Uint64
	writes  atomic.Uint64
}

func (s *counters) drop(d Drop) { s.drops[d].Add(1) }

// Counter is a number of frames and their total size in bytes.
type Counter struct {
	Frames uint64 `json:"frames"`
	Bytes  uint64 `json:"bytes"`
}

// Stats is a snapshot of one link's counters, for the node's metrics and
// the admin API.
type Stats struct {
	// ConnectedSince is when the handshake finished and the link was made.
	ConnectedSince time.Time `json:"connected_since"`
	// In and Out count frames read and written, keyed by frame type name
	// ("keepalive", "tree_announcement", "bootstrap", "traffic",
	// "wakeup_broadcast", "unknown"). Types never seen are absent.
	In  map[string]Counter `json:"in"`
	Out map[string]Counter `json:"out"`
	// Drops counts frames Send refused, keyed by Drop.String.
	// Reasons that never happened are absent.
	Drops map[string]uint64 `json:"drops"`
	// Writes counts writes to the connection. Frames out divided by writes
	// is how well the writer batches.
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
		In:             map[string]Counter{},
		Out:            map[string]Counter{},
		Drops:          map[string]uint64{},
		Writes:         c.stats.writes.Load(),
		ProtocolQueued: len(c.protoQ.ch),
		TrafficQueued:  trafficFrames,

		ProtocolQueuedBytes: c.protoQ.bytes.Load(),
		TrafficQueuedBytes:  trafficBytes,
	}
	for i := range wire.CountedTypes {
		if f := c.stats.in[i].frames.Load(); f > 0 {
			s.In[wire.SlotName(i)] = Counter{Frames: f, Bytes: c.stats.in[i].bytes.Load()}
		}
		if f := c.stats.out[i].frames.Load(); f > 0 {
			s.Out[wire.SlotName(i)] = Counter{Frames: f, Bytes: c.stats.out[i].bytes.Load()}
		}
	}
	for d := range numDrops {
		if n := c.stats.drops[d].Load(); n > 0 {
			s.Drops[d.String()] = n
		}
	}
	return s
}

// Total sums a set of per-type counters.
func Total(m map[string]Counter) Counter {
	var t Counter
	for _, c := range m {
		t.Frames += c.Frames
		t.Bytes += c.Bytes
	}
	return t
}
