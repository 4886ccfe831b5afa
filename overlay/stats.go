package overlay

import (
	"sync/atomic"

	"github.com/pineconed/pineconed/overlay/wire"
)

// nodeDrop is a reason the node itself dropped a frame; it complements the
// router's drop reasons.
type nodeDrop uint8

const (
	dropLinkQueueFull nodeDrop = iota
	dropDeliveryQueueFull
	dropNoLink
	dropEncode
	numNodeDrops
)

// nodeDropNames are the stable metric label values of nodeDrop.
var nodeDropNames = [numNodeDrops]string{
	dropLinkQueueFull:     "link_queue_full",
	dropDeliveryQueueFull: "delivery_queue_full",
	dropNoLink:            "no_link",
	dropEncode:            "encode",
}

// numTypes counts the known frame types plus one slot for unknown ones.
const numTypes = int(wire.TypeWakeupBroadcast) + 2

// typeCounters counts frames and bytes per frame type.
type typeCounters struct {
	frames [numTypes]atomic.Uint64
	bytes  [numTypes]atomic.Uint64
}

func typeSlot(t wire.FrameType) int {
	if int(t) < numTypes-1 {
		return int(t)
	}
	return numTypes - 1
}

func (c *typeCounters) add(t wire.FrameType, n int) {
	i := typeSlot(t)
	c.frames[i].Add(1)
	c.bytes[i].Add(uint64(n))
}

// FrameCount is frames and bytes of one type in one direction.
type FrameCount struct {
	Frames, Bytes uint64
}

func (c *typeCounters) snapshot() map[string]FrameCount {
	out := make(map[string]FrameCount, numTypes)
	for i := 0; i < numTypes; i++ {
		name := "unknown"
		if i < numTypes-1 {
			name = wire.FrameType(i).String()
		}
		out[name] = FrameCount{Frames: c.frames[i].Load(), Bytes: c.bytes[i].Load()}
	}
	return out
}

// linkCounters are one peering's counters as the node sees them.
type linkCounters struct {
	in, out    typeCounters
	queueDrops atomic.Uint64
}

// nodeCounters are node-wide and only ever grow, as Prometheus counters
// must: a peer that leaves does not take its frames with it.
type nodeCounters struct {
	in, out     typeCounters
	drops       [numNodeDrops]atomic.Uint64
	rootChanges atomic.Uint64
}

func (c *nodeCounters) drop(d nodeDrop) { c.drops[d].Add(1) }
