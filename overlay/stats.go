package overlay

import (
	"sync/atomic"

	"github.com/pineconed/pineconed/overlay/wire"
)

// nodeDrop is a reason the node itself dropped a frame; it complements the
// router's drop reasons.
type nodeDrop uint8

const (
	// dropLinkQueueFull is counted per port (portCounters.queueDrops) and
	// summed when asked; its slot in nodeCounters.drops stays zero.
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

// typeCounters counts frames and bytes per frame type.
type typeCounters struct {
	frames [wire.CountedTypes]atomic.Uint64
	bytes  [wire.CountedTypes]atomic.Uint64
}

func (c *typeCounters) add(t wire.FrameType, n int) {
	i := wire.CountSlot(t)
	c.frames[i].Add(1)
	c.bytes[i].Add(uint64(n))
}

// FrameCount is frames and bytes of one type in one direction.
type FrameCount struct {
	Frames, Bytes uint64
}

// typeCounts is a reading of typeCounters, kept as the baseline a port's
// counters had when its current peering was attached.
type typeCounts struct{ frames, bytes [wire.CountedTypes]uint64 }

func (c *typeCounters) load() typeCounts {
	var v typeCounts
	for i := range wire.CountedTypes {
		v.frames[i], v.bytes[i] = c.frames[i].Load(), c.bytes[i].Load()
	}
	return v
}

// since is what was counted after base, by frame type name.
func (v typeCounts) since(base typeCounts) map[string]FrameCount {
	out := make(map[string]FrameCount, wire.CountedTypes)
	for i := range wire.CountedTypes {
		out[wire.SlotName(i)] = FrameCount{Frames: v.frames[i] - base.frames[i], Bytes: v.bytes[i] - base.bytes[i]}
	}
	return out
}

func (v *typeCounts) add(o typeCounts) {
	for i := range wire.CountedTypes {
		v.frames[i] += o.frames[i]
		v.bytes[i] += o.bytes[i]
	}
}

// portCounters count what crossed one port, over every peering it has
// held: each frame is counted once, here, where the node reads or queues
// it. A peering's counters are the difference from a baseline taken when
// it was attached, and the node's totals are the sum over all ports, so
// the totals only ever grow, as Prometheus counters must: a peer that
// leaves does not take its frames with it, and a frame a departing
// peering's goroutines count late still lands in the total.
type portCounters struct {
	in, out    typeCounters
	queueDrops atomic.Uint64
}

// portBaseline is a reading of portCounters at Attach.
type portBaseline struct {
	in, out    typeCounts
	queueDrops uint64
}

func (c *portCounters) load() portBaseline {
	return portBaseline{in: c.in.load(), out: c.out.load(), queueDrops: c.queueDrops.Load()}
}

// nodeCounters are node-wide events that belong to no port.
type nodeCounters struct {
	drops       [numNodeDrops]atomic.Uint64
	rootChanges atomic.Uint64
}

func (c *nodeCounters) drop(d nodeDrop) { c.drops[d].Add(1) }
