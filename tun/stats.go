package tun

import "sync/atomic"

// Stats is a snapshot of a device's counters since it was opened.
type Stats struct {
	// ReadPackets and ReadBytes count every packet read from the TUN (after
	// GSO splitting), whether it was then accepted or dropped.
	ReadPackets, ReadBytes uint64
	// WrittenPackets and WrittenBytes count packets handed to the kernel by
	// successful writes.
	WrittenPackets, WrittenBytes uint64
	// ReadBatches and WriteBatches count Read and Write calls on the device;
	// packets per batch shows how well batching works.
	ReadBatches, WriteBatches uint64
	// Drops by reason name (Reason.String()), every reason, zeros too, so
	// that each metric series exists from the start.
	Drops map[string]uint64
}

type counters struct {
	readPackets, readBytes       atomic.Uint64
	writtenPackets, writtenBytes atomic.Uint64
	readBatches, writeBatches    atomic.Uint64
	drops                        [numReasons]atomic.Uint64
}

func (c *counters) drop(r Reason, n int) {
	if r > Accept && r < numReasons && n > 0 {
		c.drops[r].Add(uint64(n))
	}
}

func (c *counters) snapshot() Stats {
	s := Stats{
		ReadPackets:    c.readPackets.Load(),
		ReadBytes:      c.readBytes.Load(),
		WrittenPackets: c.writtenPackets.Load(),
		WrittenBytes:   c.writtenBytes.Load(),
		ReadBatches:    c.readBatches.Load(),
		WriteBatches:   c.writeBatches.Load(),
		Drops:          map[string]uint64{},
	}
	for r := Accept + 1; r < numReasons; r++ {
		s.Drops[r.String()] = c.drops[r].Load()
	}
	return s
}
