package router

import (
	"fmt"
	"sync/atomic"

	"github.com/pineconed/pineconed/internal/enum"
)

// DropReason says why a frame was not forwarded or delivered.
type DropReason uint8

// Drop reasons. Their String forms are stable metric label values.
const (
	// DropNoRoute: our own bootstrap found no next hop.
	DropNoRoute DropReason = iota
	// DropWatermark: the next hop's watermark is worse than the frame's
	// (SNEK loop suppression, §6.3).
	DropWatermark
	// DropIngress: the next hop is the port the frame came from.
	DropIngress
	// DropHopLimit: hop limiting is on and the hop limit ran out.
	DropHopLimit
	// DropBadBootstrapPayload: a bootstrap's signed payload did not parse.
	DropBadBootstrapPayload
	// DropBadBootstrapSignature: a bootstrap's signature did not verify.
	DropBadBootstrapSignature
	// DropBootstrapWrongRoot: a bootstrap for a root other than ours.
	DropBootstrapWrongRoot
	// DropBootstrapReplay: a bootstrap no newer than the route we have.
	DropBootstrapReplay
	// DropSNEKTableFull: a bootstrap from a new originator with the table
	// at its bound.
	DropSNEKTableFull
	// DropWakeupWrongRoot: a wakeup broadcast for another root.
	DropWakeupWrongRoot
	// DropWakeupDuplicate: a wakeup from an originator seen too recently,
	// or not newer than the last one.
	DropWakeupDuplicate
	// DropWakeupSeenFull: a wakeup from a new originator found the seen set
	// at its bound; the oldest record was dropped to make room and the
	// wakeup was accepted (Options.MaxWakeupSeen).
	DropWakeupSeenFull
	// DropUnknownType: a frame type this version does not know.
	DropUnknownType
	// DropUnknownPort: a frame from a port with no peering (or one being
	// disconnected).
	DropUnknownPort
	// DropEncode: a frame could not be encoded (it would exceed 65 535
	// bytes).
	DropEncode
	// DropTrafficNoRoute: a Traffic frame this node originates has no
	// next hop: no peer is closer to its destination than we are, as on a
	// fresh node whose tree and SNEK neighbours are not known yet. (Such a
	// frame used to be counted as an ingress drop: its next hop, this
	// node, is also where it came from.)
	DropTrafficNoRoute
	numDropReasons
)

var dropNames = [numDropReasons]string{
	DropNoRoute:               "no_route",
	DropWatermark:             "watermark",
	DropIngress:               "ingress",
	DropHopLimit:              "hop_limit",
	DropBadBootstrapPayload:   "bad_bootstrap_payload",
	DropBadBootstrapSignature: "bad_bootstrap_signature",
	DropBootstrapWrongRoot:    "bootstrap_wrong_root",
	DropBootstrapReplay:       "bootstrap_replay",
	DropSNEKTableFull:         "snek_table_full",
	DropWakeupWrongRoot:       "wakeup_wrong_root",
	DropWakeupDuplicate:       "wakeup_duplicate",
	DropWakeupSeenFull:        "wakeup_seen_full",
	DropUnknownType:           "unknown_type",
	DropUnknownPort:           "unknown_port",
	DropEncode:                "encode",
	DropTrafficNoRoute:        "traffic_no_route",
}

func (d DropReason) String() string {
	return enum.Name(dropNames[:], d, "drop")
}

// DisconnectReason says why a peer broke the protocol.
type DisconnectReason uint8

// Disconnect reasons (docs/protocol.md §4.4, §7). Their String forms are stable
// metric label values.
const (
	// DisconnectBadSignature: an announcement hop signature did not verify.
	DisconnectBadSignature DisconnectReason = iota
	// DisconnectNoHops: an announcement without any hop.
	DisconnectNoHops
	// DisconnectRootHop: the first hop is not signed by the root.
	DisconnectRootHop
	// DisconnectPortZero: a hop names port 0.
	DisconnectPortZero
	// DisconnectWrongSender: the last hop is not the peer's key.
	DisconnectWrongSender
	// DisconnectDuplicateKey: a key signs two hops (a loop).
	DisconnectDuplicateKey
	// DisconnectOldSequence: an older sequence for the same root than the
	// peer sent before.
	DisconnectOldSequence
	// DisconnectBadWakeupPayload: a wakeup payload did not parse.
	DisconnectBadWakeupPayload
	// DisconnectBadWakeupSignature: a wakeup signature did not verify.
	DisconnectBadWakeupSignature
	// DisconnectInvalidPort: PeerUp was given a port outside 1..MaxPort.
	DisconnectInvalidPort
	numDisconnectReasons
)

var disconnectNames = [numDisconnectReasons]string{
	DisconnectBadSignature:       "bad_signature",
	DisconnectNoHops:             "no_hops",
	DisconnectRootHop:            "root_hop_mismatch",
	DisconnectPortZero:           "port_zero",
	DisconnectWrongSender:        "wrong_last_hop",
	DisconnectDuplicateKey:       "duplicate_key",
	DisconnectOldSequence:        "old_root_sequence",
	DisconnectBadWakeupPayload:   "bad_wakeup_payload",
	DisconnectBadWakeupSignature: "bad_wakeup_signature",
	DisconnectInvalidPort:        "invalid_port",
}

func (d DisconnectReason) String() string {
	return enum.Name(disconnectNames[:], d, "disconnect")
}

// ProtocolError is the Reason of an ActionDisconnect.
type ProtocolError struct {
	Port   Port
	Reason DisconnectReason
	// Err gives detail; it may be nil.
	Err error
}

func (e *ProtocolError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: protocol error %s: %v", e.Port, e.Reason, e.Err)
	}
	return fmt.Sprintf("%s: protocol error %s", e.Port, e.Reason)
}

func (e *ProtocolError) Unwrap() error { return e.Err }

// counters are shared by a Router and all its Snapshots: the data plane
// counts without the control lock, so they are atomics.
type counters struct {
	drops         [numDropReasons]atomic.Uint64
	disconnects   [numDisconnectReasons]atomic.Uint64
	delivered     atomic.Uint64
	originated    atomic.Uint64
	routedTree    atomic.Uint64
	routedSNEK    atomic.Uint64
	treeFallbacks atomic.Uint64
}

func (c *counters) drop(d DropReason) { c.drops[d].Add(1) }

// Stats is a point-in-time copy of a Router's counters. Maps are keyed by
// DropReason and DisconnectReason names. Frames are not counted here: the
// node counts each frame once, on the port it crossed (overlay.Stats), and
// a second count in the Router would only be two shared atomics more per
// forwarded packet that disagree with the first by the link queue's drops.
type Stats struct {
	// Drops counts frames dropped, by reason.
	Drops map[string]uint64
	// Disconnects counts peers dropped for protocol errors, by reason.
	Disconnects map[string]uint64
	// Delivered counts Traffic frames handed to the application.
	Delivered uint64
	// Originated counts Traffic frames this node sent.
	Originated uint64
	// RoutedByTree and RoutedBySNEK count Traffic routing decisions by
	// the method that found the next hop.
	RoutedByTree, RoutedBySNEK uint64
	// TreeFallbacks counts frames whose destination coordinates led
	// nowhere and which continued by SNEK.
	TreeFallbacks uint64
}

func (c *counters) snapshot() Stats {
	s := Stats{
		Drops:         map[string]uint64{},
		Disconnects:   map[string]uint64{},
		Delivered:     c.delivered.Load(),
		Originated:    c.originated.Load(),
		RoutedByTree:  c.routedTree.Load(),
		RoutedBySNEK:  c.routedSNEK.Load(),
		TreeFallbacks: c.treeFallbacks.Load(),
	}
	// Every reason, zeros too: a counter series that exists from the
	// start lets alerts and rate() see its first increase.
	for i := range c.drops {
		s.Drops[DropReason(i).String()] = c.drops[i].Load()
	}
	for i := range c.disconnects {
		if v := c.disconnects[i].Load(); v > 0 {
			s.Disconnects[DisconnectReason(i).String()] = v
		}
	}
	return s
}
