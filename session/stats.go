package session

import (
	"sync/atomic"

	"github.com/pineconed/pineconed/internal/enum"
)

// Counter names one of a Manager's event counters. Each event is counted
// once, where it happens; Stats, the daemon's getStats reply and the
// metrics all read the same array through this enum and its name table.
type Counter uint8

// The counters. Those from QueueFull on are drops: their DropReason is the
// label under pineconed_drops_total (with the "session_" prefix the daemon
// adds).
const (
	HandshakesInitiated Counter = iota // handshake series started by us
	InitiationsSent                    // initiation messages, retries included
	ResponsesSent                      // handshake responses
	HandshakesCompleted                // keypairs that became current, either role
	HandshakesFailed                   // series given up after HandshakeGiveUp
	CollisionsYielded                  // simultaneous initiation, we answered theirs
	CollisionsIgnored                  // simultaneous initiation, we kept ours
	BadHandshake                       // Noise rejected the message
	WrongStatic                        // initiator's static key is not the frame source's
	ReplayedInits                      // initiation timestamp not newer than the last
	PacketsIn                          // IPv6 packets delivered
	PacketsOut                         // IPv6 packets sent
	BytesIn                            // transport payload bytes received
	BytesOut                           // transport payload bytes sent
	KeepalivesSent                     // empty transport messages
	EchoRequestsIn                     // echo requests answered
	EchoRepliesIn                      // echo replies received
	PeersExpired                       // forgotten after IdleTimeout
	CookieRepliesSent                  // cookie replies sent under load (defence.go)
	CookiesReceived                    // cookie replies that opened
	PeersEvicted                       // half-open peers evicted to make room

	DropQueueFull        // handshake queue at MaxQueue
	DropTooManyPeer      // MaxPeers reached
	DropTooBig           // packet larger than MaxPacket
	DropBadKey           // destination key has no X25519 form, or is ours
	DropUnreachable      // queued packets of a given-up handshake
	UnknownIndex         // receiver index names nothing of ours
	DecryptFailures      // transport message that did not open
	Replays              // counter already seen
	TooOld               // counter behind the replay window
	Expired              // message for a keypair past RejectAfterTime
	Malformed            // not a session message, or bad lengths
	BadInner             // decrypted, but the inner message is invalid
	BadSource            // inner IPv6 source does not belong to the sender
	InitiationsLimited   // refused by the per-source or global rate limit
	NeedCookie           // refused under load for want of a valid cookie mac
	CookieRepliesLimited // cookie replies not sent, over their rate
	BadCookie            // cookie reply that did not open

	// NumCounters is the number of counters: the length of Stats.Counts.
	NumCounters
)

// firstDrop is the first counter that is a drop reason.
const firstDrop = DropQueueFull

// counterNames are the counters' stable names; a drop's name is its
// metric label (after the daemon's "session_" prefix), so these are part
// of the dashboards' and alerts' vocabulary and never change.
var counterNames = [NumCounters]string{
	HandshakesInitiated:  "handshakes_initiated",
	InitiationsSent:      "initiations_sent",
	ResponsesSent:        "responses_sent",
	HandshakesCompleted:  "handshakes_completed",
	HandshakesFailed:     "handshakes_failed",
	CollisionsYielded:    "collisions_yielded",
	CollisionsIgnored:    "collisions_ignored",
	BadHandshake:         "bad_handshake",
	WrongStatic:          "wrong_static",
	ReplayedInits:        "replayed_initiations",
	PacketsIn:            "packets_in",
	PacketsOut:           "packets_out",
	BytesIn:              "bytes_in",
	BytesOut:             "bytes_out",
	KeepalivesSent:       "keepalives_sent",
	EchoRequestsIn:       "echo_requests_in",
	EchoRepliesIn:        "echo_replies_in",
	PeersExpired:         "peers_expired",
	CookieRepliesSent:    "cookie_replies_sent",
	CookiesReceived:      "cookies_received",
	PeersEvicted:         "peers_evicted",
	DropQueueFull:        "queue_full",
	DropTooManyPeer:      "too_many_peers",
	DropTooBig:           "too_big",
	DropBadKey:           "bad_key",
	DropUnreachable:      "unreachable",
	UnknownIndex:         "unknown_index",
	DecryptFailures:      "decrypt_failed",
	Replays:              "replay",
	TooOld:               "too_old",
	Expired:              "expired",
	Malformed:            "malformed",
	BadInner:             "bad_inner",
	BadSource:            "bad_source",
	InitiationsLimited:   "initiation_rate_limited",
	NeedCookie:           "need_cookie",
	CookieRepliesLimited: "cookie_reply_rate_limited",
	BadCookie:            "bad_cookie",
}

// handshakeOutcomes sorts the counters that end a handshake into the
// outcomes of pineconed_handshakes_total; the others have none.
var handshakeOutcomes = [NumCounters]string{
	HandshakesCompleted: "ok",
	HandshakesFailed:    "timeout",
	BadHandshake:        "bad_message",
	WrongStatic:         "rejected",
	ReplayedInits:       "rejected",
}

// String is the counter's stable name.
func (c Counter) String() string {
	return enum.Name(counterNames[:], c, "counter")
}

// DropReason is the counter's drop label ("queue_full", …), or "" for a
// counter that is not a drop.
func (c Counter) DropReason() string {
	if c < firstDrop || c >= NumCounters {
		return ""
	}
	return counterNames[c]
}

// HandshakeOutcome is the handshake outcome ("ok", "timeout",
// "bad_message", "rejected") the counter adds to, or "" for none.
func (c Counter) HandshakeOutcome() string {
	if c >= NumCounters {
		return ""
	}
	return handshakeOutcomes[c]
}

// Stats is a snapshot of a Manager's counters.
type Stats struct {
	// Counts holds every counter, indexed by Counter.
	Counts [NumCounters]uint64

	Peers    int // current
	HalfOpen int // current half-open peers
}

// counters are a Manager's live counters.
type counters [NumCounters]atomic.Uint64

// add counts n events of c.
func (s *counters) add(c Counter, n uint64) { s[c].Add(n) }

// inc counts one event of c.
func (s *counters) inc(c Counter) { s[c].Add(1) }

// Stats returns a snapshot of the counters.
func (m *Manager) Stats() Stats {
	m.mu.RLock()
	n := len(m.peers)
	m.mu.RUnlock()
	st := Stats{Peers: n, HalfOpen: int(m.halfOpen.Load())}
	for c := range st.Counts {
		st.Counts[c] = m.st[c].Load()
	}
	return st
}
