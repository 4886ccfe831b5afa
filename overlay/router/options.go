package router

import "time"

// Protocol timers (protocol §4.8, §5.6, §6.2, §7). They are the reference's
// values and not configurable: nodes that disagree on them interoperate
// badly (a bootstrap interval longer than the route expiry breaks SNEK).
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
	// WakeupInterval is how often a node floods its own wakeup broadcast.
	WakeupInterval = 60 * time.Second
	// WakeupRepeatGuard is the minimum time between two accepted wakeups
	// from the same originator.
	WakeupRepeatGuard = 30 * time.Second
	// WakeupSeenExpiry is how long an originator stays in the seen set.
	WakeupSeenExpiry = 180 * time.Second
)

// Default bounds. The reference bounds none of these tables; a peer can
// make it grow them without limit (protocol §11.4, §11.7).
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
	// rebuilds for SNEK route changes: 20 a second sustained, after a
	// burst of SnapshotBurst. Route changes other than refreshes come
	// with changes of the network, far less often than that; a flood of
	// bootstraps from new keys would otherwise cost a copy and sort of the
	// whole table each.
	DefaultSnapshotInterval = 50 * time.Millisecond
	// SnapshotBurst is how many rebuilds for route changes Publish makes
	// at once before it holds changes back to the interval.
	SnapshotBurst = 10
)

// defaultOutputActionHint sizes the reused action slice.
const defaultOutputActionHint = 16

// Options tune a Router. The zero value behaves like a stock node.
type Options struct {
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
	// duplicate suppression. A broadcast from a new originator beyond it is
	// dropped and counted. 0 means DefaultMaxWakeupSeen.
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
	if o.MaxSNEKEntries <= 0 {
		o.MaxSNEKEntries = DefaultMaxSNEKEntries
	}
	if o.MaxWakeupSeen <= 0 {
		o.MaxWakeupSeen = DefaultMaxWakeupSeen
	}
	if o.CoordCacheSize <= 0 {
		o.CoordCacheSize = DefaultCoordCacheSize
	}
	if o.SnapshotInterval == 0 {
		o.SnapshotInterval = DefaultSnapshotInterval
	}
	return o
}
