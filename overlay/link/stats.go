package link

import (
	"sync/atomic"
	"time"

	"github.com/pineconed/pineconed/overlay/wire"
)

// Drop reasons, the keys of Stats.Drops.
const (
	// DropProtocolQueueFull: Send found the protocol queue full.
	DropProtocolQueueFull = "protocol_queue_full"
	// DropTrafficQueueFull: Send found the traffic queue full, by frames or
	// by bytes.
	DropTrafficQueueFull = "traffic_queue_full"
	// DropClosed: Send was called after Close.
	DropClosed = "closed"
	// DropMalformed: Send was given bytes that are not one whole frame.
	DropMalformed = "malformed"
)

var dropReasons = [...]string{DropProtocolQueueFull, DropTrafficQueueFull, DropClosed, DropMalformed}

// numTypes counts the frame types we keep apart in statistics: the five
// known types and one bucket for every unknown type.
const numTypes = int(wire.TypeWakeupBroadcast) + 2

func typeIndex(t wire.FrameType) int {
	if int(t) < numTypes-1 {
		return int(t)
	}
	return numTypes - 1
}

func typeName(i int) string {
	if i < numTypes-1 {
		return wire.FrameType(i).String()
	}
	return "unknown"
}

type counter struct{ frames, bytes atomic.Uint64 }

func (c *counter) add(n int) {
	c.frames.Add(1)
	c.bytes.Add(uint64(n))
}

type counters struct {
	since   time.Time
	in, out [numTypes]counter
	drops   [len(dropReasons)]atomic.Uint64
	writes  atomic.Uint64
}

func (s *counters) drop(reason string) {
	for i, r := range dropReasons {
		if r == reason {
			s.drops[i].Add(1)
			return
		}
	}
}

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
	// Drops counts frames Send refused, keyed by the Drop* reasons.
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
	for i := range numTypes {
		if f := c.stats.in[i].frames.Load(); f > 0 {
			s.In[typeName(i)] = Counter{Frames: f, Bytes: c.stats.in[i].bytes.Load()}
		}
		if f := c.stats.out[i].frames.Load(); f > 0 {
			s.Out[typeName(i)] = Counter{Frames: f, Bytes: c.stats.out[i].bytes.Load()}
		}
	}
	for i, r := range dropReasons {
		if n := c.stats.drops[i].Load(); n > 0 {
			s.Drops[r] = n
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
