package lookup

import (
	"fmt"
	"sync/atomic"
)

// Counter names one event the Resolver counts. Each event is counted once,
// where it happens; Stats, the admin replies and the metrics all read the
// same table.
type Counter uint8

// Counters. Their String forms are stable: the metrics use them as label
// values (see Class).
const (
	// CacheHit: Resolve found a live cache entry.
	CacheHit Counter = iota
	// LookupStarted: a lookup began (its first request).
	LookupStarted
	// LookupFound: a lookup ended with a key (an answer, or a handshake
	// that proved one).
	LookupFound
	// LookupTimedOut: a lookup gave up after 11×RetryInterval.
	LookupTimedOut
	// RequestSent: a lookup request went out, retries included.
	RequestSent
	// RouteRetry: a request was resent because the routes changed
	// (RoutesChanged).
	RouteRetry
	// ResponseAccepted: an answer ended a pending lookup.
	ResponseAccepted
	// ResponseUnsolicited: an answer whose nonce is of no pending lookup.
	ResponseUnsolicited
	// ResponseMismatch: an answer whose key does not match the prefix or
	// the frame's source.
	ResponseMismatch
	// RequestReceived: a well-formed lookup request arrived.
	RequestReceived
	// RequestAnswered: we answered a request for our own key.
	RequestAnswered
	// RequestNotOurs: SNEK handed us a lookup for a prefix we do not own.
	RequestNotOurs
	// Malformed: a payload that failed to parse.
	Malformed
	// DropQueueFull: a packet found its destination's queue at MaxQueue.
	DropQueueFull
	// DropPendingFull: a packet found MaxPending destinations already
	// pending.
	DropPendingFull
	// DropNotOverlay: a packet for a destination outside the overlay
	// ranges.
	DropNotOverlay
	// DropUnreachable: a packet handed to Unreachable when its lookup gave
	// up.
	DropUnreachable
	numCounters
)

// Class says which metric a Counter feeds.
type Class uint8

// Classes.
const (
	// Activity counters are the protocol's own traffic and bookkeeping; the
	// admin API and the tests read them.
	Activity Class = iota
	// Result counters are the outcomes of a Resolve that needed a key:
	// cached, found or timed out (pineconed_lookups_total{result}).
	Result
	// Drop counters count a packet or a lookup message lost
	// (pineconed_drops_total{reason="lookup_…"}).
	Drop
)

var counterInfo = [numCounters]struct {
	name  string
	class Class
}{
	CacheHit:            {"cached", Result},
	LookupStarted:       {"started", Activity},
	LookupFound:         {"found", Result},
	LookupTimedOut:      {"timeout", Result},
	RequestSent:         {"requests_sent", Activity},
	RouteRetry:          {"route_retries", Activity},
	ResponseAccepted:    {"responses_accepted", Activity},
	ResponseUnsolicited: {"unsolicited", Drop},
	ResponseMismatch:    {"mismatch", Drop},
	RequestReceived:     {"requests_received", Activity},
	RequestAnswered:     {"requests_answered", Activity},
	RequestNotOurs:      {"requests_not_ours", Activity},
	Malformed:           {"malformed", Drop},
	DropQueueFull:       {"queue_full", Drop},
	DropPendingFull:     {"pending_full", Drop},
	DropNotOverlay:      {"not_overlay", Drop},
	DropUnreachable:     {"unreachable", Drop},
}

func (c Counter) String() string {
	if c < numCounters {
		return counterInfo[c].name
	}
	return fmt.Sprintf("counter_%d", uint8(c))
}

// Class is the metric c feeds.
func (c Counter) Class() Class {
	if c < numCounters {
		return counterInfo[c].class
	}
	return Activity
}

type counters [numCounters]atomic.Uint64

func (cs *counters) inc(c Counter)           { cs[c].Add(1) }
func (cs *counters) add(c Counter, n uint64) { cs[c].Add(n) }

// Stats is a snapshot of a Resolver's counters.
type Stats struct {
	// Count holds every counter, indexed by Counter.
	Count [numCounters]uint64
	// CacheEntries and Pending are the current cache size and number of
	// destinations being looked up.
	CacheEntries, Pending int
}

// ByClass returns the counters of class cl by name, zeros too, so that a
// metric series exists before its first event.
func (s Stats) ByClass(cl Class) map[string]uint64 {
	out := make(map[string]uint64)
	for c := range numCounters {
		if counterInfo[c].class == cl {
			out[counterInfo[c].name] = s.Count[c]
		}
	}
	return out
}
