package session

// The replay window is a ring of 64-bit blocks, WireGuard style: the bit
// for counter c lives in block (c/64) mod windowBlocks. When a newer counter
// arrives the blocks between the old and the new head are cleared, which
// slides the window without shifting bits. One block is always the head's,
// partly in the future, so the usable window is (windowBlocks-1)*64 counters.
const (
	windowBlocks = 2048 / 64
	// WindowSize is how far behind the highest counter seen a packet may
	// arrive and still be accepted.
	WindowSize = (windowBlocks - 1) * 64
)

type replayResult int

const (
	replayOK replayResult = iota
	replayDuplicate
	replayTooOld
)

type replayWindow struct {
	head   uint64 // highest counter accepted so far
	any    bool   // whether any counter was accepted
	blocks [windowBlocks]uint64
}

// accept marks counter c as seen if it is new and inside the window. Call it
// only after the packet authenticated, or a forger could burn counters.
func (w *replayWindow) accept(c uint64) replayResult {
	block := c / 64
	if !w.any || c > w.head {
		if w.any {
			cur := w.head / 64
			diff := block - cur
			if diff > windowBlocks {
				diff = windowBlocks
			}
			for i := uint64(1); i <= diff; i++ {
				w.blocks[(cur+i)%windowBlocks] = 0
			}
		} else {
			w.blocks = [windowBlocks]uint64{}
		}
		w.head = c
		w.any = true
	} else if w.head-c >= WindowSize {
		return replayTooOld
	}
	bit := uint64(1) << (c % 64)
	b := &w.blocks[block%windowBlocks]
	if *b&bit != 0 {
		return replayDuplicate
	}
	*b |= bit
	return replayOK
}
