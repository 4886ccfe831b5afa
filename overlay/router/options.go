package router

import (
	"time"

	"github.com/pineconed/pineconed/internal/defaults"
)

// Protocol timers (docs/protocol.md §4.8, §5.6, §6.2, §7). They are the reference's
// values. Those that other nodes depend on are not configurable: nodes that
// disagree on them interoperate badly (a bootstrap interval longer than the
// route expiry breaks SNEK). The local decisions of when to send that this
// package makes differently from the reference are listed with the tuned
// timers below.
const (
	// AnnouncementInterval is how often a root re-announces itself with a
	// new sequence number.
	AnnouncementInterval = 30 * time.Minute
	// AnnouncementTimeout is the age after which a peer's announcement no
	// longer counts in parent selection.
	AnnouncementTimeout = 45 * time.Minute
	// ReparentWait is how long a node that heard bad news from its parent
	// stays root before choosing a parent again.
	ReparentWait = time.Second
	// MaintenanceInterval is the period of the maintenance tick that sends
	// bootstraps and expires soft state.
	MaintenanceInterval = time.Second
	// BootstrapInterval is how often a non-root node sends a bootstrap.
	BootstrapInterval = 5 * time.Second
	// SNEKExpiry is how long a SNEK route (and the descending pointer)
	// stays valid after the bootstrap that installed it.
	SNEKExpiry = 10 * time.Second
	// CoordCacheLifetime is how long learnt destination coordinates are
	// used for tree routing.
	CoordCacheLifetime = 60 * time.Second
	// WakeupInterval is how often a stock node floods its own wakeup
	// broadcast; this package does so only with ReferenceTimers.
	WakeupInterval = 60 * time.Second
	// WakeupRepeatGuard is the minimum time between two accepted wakeups
	// from the same originator.
	WakeupRepeatGuard = 30 * time.Second
	// WakeupSeenExpiry is how long an originator stays in the seen set.
	WakeupSeenExpiry = 180 * time.Second
)

// Tuned timers: where this package decides differently from the reference
// when to send (Options.ReferenceTimers restores the reference's choices).
// Each is a local decision that no stock node can tell from a slow or busy
// peer: frames and their contents are unchanged, only their timing.
const (
	// DefaultWakeupRefresh is the mean period of our own periodic wakeup
	// flood (the reference: WakeupInterval, 60 s). The periodic flood is
	// ~95 % of all control frames with the reference's timer (one flood of
	// five hops per node per minute), while nothing in the protocol needs
	// it: the wakeup on a peer's first announcement, which stays, already
	// tells the neighbourhood about a new node, and receivers forget an
	// originator only after WakeupSeenExpiry. Each period is drawn from
	// [½, 1½) of the mean, and the first one from [0, mean), so nodes that
	// started together do not flood together.
	//
	// The flood serves applications on stock nodes that look for nearby
	// nodes; no routing state depends on it. One flood costs about 5 700
	// frames on the 9 204-node skitter graph (the busiest hub forwards one
	// from each of its 253 neighbours to all its peers), so a 1 h mean
	// still cost ~1.6 frames per node per second there, more than half of
	// what bootstraps cost. With 12 h it is ~0.13: a newcomer's
	// applications hear of us on first contact with us, and of nodes that
	// were there before it within 12 h on average.
	DefaultWakeupRefresh = 12 * time.Hour
	// FastBootstrapInterval is the bootstrap interval while this node's
	// place in the tree or snake changed within FastBootstrapWindow (the
	// reference: always BootstrapInterval). The snake settles one link of
	// each chain per bootstrap round (docs/simulation/README.md), so rounds
	// of 1 s while things move settle it in a fifth of the time, and a
	// settled node costs no more than before. Stock nodes accept a
	// bootstrap whatever its interval: its sequence, the sender's clock in
	// milliseconds, still increases.
	FastBootstrapInterval = time.Second
	// DefaultFastBootstrapWindow is how long after a change of parent, root
	// or descending (lower-keyed) neighbour a node bootstraps every
	// FastBootstrapInterval: as long as a SNEK route lives, so that the
	// routes a change made stale have expired, and been replaced, before
	// the node slows down. In the routing simulator (seeds 1–3, medians,
	// steady state measured after every node's window closed) 10 s brought
	// every first packet through after a cold start in 8 s on fc00 and 9 s
	// on yggdrasil, where 6 s took 20 s and 36 s, at the same steady-state
	// frames; 15 s gained nothing more (docs/simulation/README.md).
	DefaultFastBootstrapWindow = SNEKExpiry
	// DefaultBootstrapHandoffAge bounds the age of a relayed bootstrap that
	// a node passes on again when a route to a key between its originator
	// and where it went arrives (the reference: never; see Router.handOff).
	// A stock node takes the copy for the bootstrap it is: the
	// originator's signed frame, with its sequence, which nodes that saw it
	// drop as a replay.
	DefaultBootstrapHandoffAge = 400 * time.Millisecond
	// DefaultTerminalHandoffAge bounds instead the age of a bootstrap that
	// ended at this node: as long as the originator's next bootstrap may
	// take to come, so that the copy handed off is still its latest. The
	// path such a bootstrap laid ends here, so the originator's next
	// bootstrap follows it here again and then on along the branch the
	// handoff laid; a relayed bootstrap's branch has no such guarantee. In
	// the routing simulator (seeds 1–3) this brought yggdrasil back to
	// ≥ 99 % within 15.5 s of losing its best-connected node on every seed,
	// where 400 ms took 36 s on seed 2, and seed 3's cold start to 100 % in
	// 79 s instead of 119 s, at the same frames on dn42, fc00 and
	// yggdrasil; skitter sent 0.05 more per node per second on two seeds
	// of three (docs/simulation/README.md).
	DefaultTerminalHandoffAge = BootstrapInterval
)

// Default bounds. The reference bounds none of these tables; a peer can
// make it grow them without limit (docs/protocol.md §11.4, §11.7).
const (
	// DefaultMaxSNEKEntries bounds the SNEK routing table: far above what
	// a node sees in practice (one route per bootstrap originator whose
	// path crosses it), low enough to cap memory at about a megabyte.
	DefaultMaxSNEKEntries = 10000
	// DefaultMaxWakeupSeen bounds the wakeup duplicate-suppression set.
	DefaultMaxWakeupSeen = 4096
	// DefaultCoordCacheSize bounds the coordinate cache.
	DefaultCoordCacheSize = 4096
	// DefaultSnapshotInterval refills Publish's budget of snapshot
	// rebuilds for SNEK route changes: a thousand a second sustained,
	// after a burst of SnapshotBurst. A rebuild copies the route
	// pointers, a few microseconds on a hub with thousands of routes, so
	// even a flood of bootstraps from new keys costs less in rebuilds than
	// in checking their signatures. The bound was 50 ms when a rebuild
	// copied and sorted the whole table; in the routing simulator that
	// held hubs' route changes back for tens of milliseconds, long enough
	// for neighbours to disagree and bounce first packets between them:
	// on skitter 0.26 % of first packets were lost at steady state and no
	// round ever delivered all of them; with 1 ms, 0.05 % and 100 % after
	// 63 s (docs/simulation/README.md).
	DefaultSnapshotInterval = time.Millisecond
	// SnapshotBurst is how many rebuilds for route changes Publish makes
	// at once before it holds changes back to the interval.
	SnapshotBurst = 10
)

// defaultOutputActionHint sizes the reused action slice.
const defaultOutputActionHint = 16

// Options tune a Router. The zero value is what the daemon runs: on the
// wire like a stock node, with the tuned timers above; ReferenceTimers
// makes its timing a stock node's too.
type Options struct {
	// ReferenceTimers uses the reference's timers instead of the tuned
	// ones: a wakeup flood every WakeupInterval on the node's start grid,
	// a bootstrap every BootstrapInterval. The capture replay test runs
	// with it, so that our frames are the stock node's byte for byte at
	// the capture's timing; the routing simulator runs with it to measure
	// the reference's behaviour.
	ReferenceTimers bool
	// WakeupRefresh is the mean period of the periodic wakeup flood
	// without ReferenceTimers; 0 means DefaultWakeupRefresh and a negative
	// value sends none (only the wakeup on first contact).
	WakeupRefresh time.Duration
	// FastBootstrapWindow is how long after a change of parent, root or
	// descending neighbour the node bootstraps every FastBootstrapInterval,
	// without ReferenceTimers; 0 means DefaultFastBootstrapWindow and a
	// negative value bootstraps every BootstrapInterval always.
	FastBootstrapWindow time.Duration
	// BootstrapHandoffAge is how young a relayed bootstrap must be for the
	// node to pass it on again towards a closer key it has just learnt,
	// without ReferenceTimers; 0 means DefaultBootstrapHandoffAge and a
	// negative value never passes one on.
	BootstrapHandoffAge time.Duration
	// TerminalHandoffAge is the same bound for a bootstrap that ended at
	// this node; 0 means DefaultTerminalHandoffAge and a negative value
	// BootstrapHandoffAge. With handoffs off (a negative
	// BootstrapHandoffAge, or ReferenceTimers) none is passed on.
	TerminalHandoffAge time.Duration
	// HopLimiting drops Traffic whose hop limit has run out and decrements
	// it on every forward. Off by default, as in the reference, which
	// forwards the hop limit unchanged.
	HopLimiting bool
	// DisableWakeups stops this node from originating wakeup broadcasts
	// (the 60 s flood and the one sent on a peer's first announcement).
	// Broadcasts from others are still checked and forwarded.
	DisableWakeups bool
	// InsecureSkipSignatures signs nothing (zero signatures) and verifies
	// nothing, like the reference's PINECONE_DISABLE_SIGNATURES. It exists
	// only to make large simulations cheap; such a node cannot peer with
	// real ones, which disconnect it on the first announcement.
	InsecureSkipSignatures bool
	// MaxSNEKEntries bounds the SNEK routing table. A bootstrap from a new
	// originator that would exceed it is dropped and counted
	// (DropSNEKTableFull). 0 means DefaultMaxSNEKEntries.
	MaxSNEKEntries int
	// MaxWakeupSeen bounds the set of wakeup originators remembered for
	// duplicate suppression (and the cache of verified wakeup signatures).
	// A broadcast from a new originator with the set full evicts the
	// oldest record, counted as DropWakeupSeenFull, so that every
	// originator keeps being forwarded: a set that refused newcomers would
	// stop forwarding the wakeups of most originators on a large overlay.
	// 0 means DefaultMaxWakeupSeen.
	MaxWakeupSeen int
	// CoordCacheSize bounds the coordinate cache; the least recently used
	// entry is evicted. 0 means DefaultCoordCacheSize.
	CoordCacheSize int
	// SnapshotInterval bounds how often Publish rebuilds the snapshot for
	// SNEK route changes beyond its burst (see Publish). 0 means
	// DefaultSnapshotInterval; a negative value means no bound, which
	// benchmarks compare against.
	SnapshotInterval time.Duration
}

func (o Options) withDefaults() Options {
	defaults.IfNotPositive(&o.MaxSNEKEntries, DefaultMaxSNEKEntries)
	defaults.IfNotPositive(&o.MaxWakeupSeen, DefaultMaxWakeupSeen)
	defaults.IfNotPositive(&o.CoordCacheSize, DefaultCoordCacheSize)
	// A negative value of these five has its own meaning (see their
	// fields), so only zero takes the default.
	defaults.IfZero(&o.WakeupRefresh, DefaultWakeupRefresh)
	defaults.IfZero(&o.FastBootstrapWindow, DefaultFastBootstrapWindow)
	defaults.IfZero(&o.BootstrapHandoffAge, DefaultBootstrapHandoffAge)
	defaults.IfZero(&o.TerminalHandoffAge, DefaultTerminalHandoffAge)
	defaults.IfZero(&o.SnapshotInterval, DefaultSnapshotInterval)
	return o
}
