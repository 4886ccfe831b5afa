package admin

import "context"

// Stats is a snapshot of the daemon's counters, returned by getStats and
// read by the metrics collector at every scrape. The packages that count
// (overlay, session, addressing, tun) keep plain atomic counters; the
// daemon copies them in here, so none of them needs Prometheus.
//
// Fields documented as counters must never decrease while the daemon runs:
// keep node-wide totals rather than sums over the peers or sessions that
// happen to be alive, or Prometheus sees a reset when one goes away.
// Map keys become label values; keep them to a small fixed set.
type Stats struct {
	// PeersByTransport counts current peerings by transport ("tcp", "ws",
	// "wss", "multicast"). Gauge.
	PeersByTransport map[string]uint64 `json:"peers_by_transport"`
	// Frames counts overlay frames and their bytes by frame type
	// ("keepalive", "tree_announcement", "bootstrap", "traffic",
	// "wakeup_broadcast", "unknown"). In means received from a peer, out
	// means sent to a peer. Counters.
	Frames map[string]FrameCounters `json:"frames"`
	// Drops counts frames and packets dropped, by reason (e.g.
	// "queue_full", "no_route", "bad_frame", "replay", "bad_source").
	// Counter.
	Drops map[string]uint64 `json:"drops"`
	// TreeRootChanges counts how often the root key we follow changed.
	// Counter.
	TreeRootChanges uint64 `json:"tree_root_changes"`
	// TreeDepth is our distance from the root (length of our coordinates).
	// Gauge.
	TreeDepth uint64 `json:"tree_depth"`
	// IsRoot reports that we are the root of the tree. Gauge (0/1).
	IsRoot bool `json:"is_root"`
	// SnakeEntries is the number of entries in the SNEK routing table.
	// Gauge.
	SnakeEntries uint64 `json:"snake_entries"`
	// SessionsByState counts end-to-end sessions by state (see the
	// Session* constants). Gauge.
	SessionsByState map[string]uint64 `json:"sessions_by_state"`
	// Handshakes counts completed session handshakes by result ("ok",
	// "timeout", "bad_message", "rejected"). Counter.
	Handshakes map[string]uint64 `json:"handshakes"`
	// Lookups counts address lookups by result ("found", "not_found",
	// "timeout", "cached"). Counter. The latency of the same lookups goes to
	// metrics.ObserveLookup.
	Lookups map[string]uint64 `json:"lookups"`
	// StaticPeers counts the configured static peers by state (the
	// StaticState* constants), every state present. Gauge.
	StaticPeers map[string]uint64 `json:"static_peers"`
	// Tun counts packets through the TUN device. Counters.
	Tun TunCounters `json:"tun"`
}

// FrameCounters counts the frames of one type in both directions.
type FrameCounters struct {
	FramesIn  uint64 `json:"frames_in"`
	FramesOut uint64 `json:"frames_out"`
	BytesIn   uint64 `json:"bytes_in"`
	BytesOut  uint64 `json:"bytes_out"`
}

// TunCounters counts packets through the TUN device. Read means the daemon
// read it from the device (a local program sent it into the VPN); written
// means the daemon wrote it to the device (delivered to a local program).
type TunCounters struct {
	PacketsRead    uint64 `json:"packets_read"`
	PacketsWritten uint64 `json:"packets_written"`
	BytesRead      uint64 `json:"bytes_read"`
	BytesWritten   uint64 `json:"bytes_written"`
}

// StatsSource returns a fresh snapshot of the counters. Backend.Stats has
// this signature.
type StatsSource func(ctx context.Context) (Stats, error)
