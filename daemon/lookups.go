package daemon

import (
	"time"

	"github.com/pineconed/pineconed/addressing"
)

// lookupResult is how a lookup for one prefix ended.
type lookupResult struct {
	ok      bool
	latency time.Duration
}

// onLookupDone feeds the latency histogram and hands the outcome to the
// admin lookups waiting for that prefix.
func (d *Daemon) onLookupDone(prefix addressing.KeyPrefix, latency time.Duration, ok bool) {
	result := "found"
	if !ok {
		result = "timeout"
	}
	if d.metrics != nil {
		d.metrics.ObserveLookup(result, latency)
	}
	d.lookupMu.Lock()
	waiters := d.lookupWaiters[prefix]
	delete(d.lookupWaiters, prefix)
	d.lookupMu.Unlock()
	for _, w := range waiters {
		w <- lookupResult{ok: ok, latency: latency} // buffered, one send each
	}
}

// awaitLookup registers for the outcome of the next lookup of prefix to
// end. The returned function unregisters; call it when no longer waiting.
func (d *Daemon) awaitLookup(prefix addressing.KeyPrefix) (<-chan lookupResult, func()) {
	ch := make(chan lookupResult, 1)
	d.lookupMu.Lock()
	d.lookupWaiters[prefix] = append(d.lookupWaiters[prefix], ch)
	d.lookupMu.Unlock()
	return ch, func() {
		d.lookupMu.Lock()
		defer d.lookupMu.Unlock()
		ws := d.lookupWaiters[prefix]
		for i, w := range ws {
			if w == ch {
				ws = append(ws[:i], ws[i+1:]...)
				break
			}
		}
		if len(ws) == 0 {
			delete(d.lookupWaiters, prefix)
		} else {
			d.lookupWaiters[prefix] = ws
		}
	}
}
