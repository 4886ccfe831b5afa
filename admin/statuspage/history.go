package statuspage

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"

	"github.com/pineconed/pineconed/admin"
)

// Defaults for the throughput history: one sample every two seconds, five
// minutes kept.
const (
	DefaultInterval = 2 * time.Second
	DefaultSize     = 150
	// sampleTimeout bounds the backend calls of one sample.
	sampleTimeout = time.Second
)

// Point is one entry of the throughput graph: the rates over the interval
// that ended at UnixMS, in bytes per second.
type Point struct {
	UnixMS        int64   `json:"unix_ms"`
	OverlayInBps  float64 `json:"overlay_in_bps"`
	OverlayOutBps float64 `json:"overlay_out_bps"`
	TunReadBps    float64 `json:"tun_read_bps"`
	TunWriteBps   float64 `json:"tun_write_bps"`
}

// PeerRate is one peering's traffic rate over the last interval.
type PeerRate struct {
	Port      uint64  `json:"port"`
	PublicKey string  `json:"public_key"`
	InBps     float64 `json:"in_bps"`
	OutBps    float64 `json:"out_bps"`
}

// Rates is what the history adds to the admin API's data: the graph,
// oldest point first, and the current rate of every peering.
type Rates struct {
	IntervalSeconds float64    `json:"interval_seconds"`
	History         []Point    `json:"history"`
	Peers           []PeerRate `json:"peers"`
}

// sample is the counters read at one moment. Only the last sample keeps
// the per-peer counters, so memory stays bounded by size points plus one
// peer table (max_peers entries).
type sample struct {
	at                    time.Time
	overlayIn, overlayOut uint64
	tunRead, tunWritten   uint64
	peers                 map[uint64]peerCounters
}

type peerCounters struct {
	key     string
	in, out uint64
}

// History samples the daemon's counters through the admin Backend at a
// fixed interval and keeps a bounded ring of the resulting rates. It reads
// the same counters the admin API and the metrics serve; it counts nothing
// itself.
type History struct {
	b        admin.Backend
	interval time.Duration

	mu    sync.Mutex
	ring  []Point // ring buffer of at most cap(ring) points
	next  int     // where the next point goes once the ring is full
	last  *sample
	peers []PeerRate
}

// NewHistory returns a history of at most size points sampled from b every
// interval (zero values take the defaults).
func NewHistory(b admin.Backend, interval time.Duration, size int) *History {
	if interval <= 0 {
		interval = DefaultInterval
	}
	if size <= 0 {
		size = DefaultSize
	}
	return &History{b: b, interval: interval, ring: make([]Point, 0, size), peers: []PeerRate{}}
}

// Run samples until stop is closed. Its caller owns the goroutine. Each
// sample's backend calls are bounded by sampleTimeout, so Run returns
// within that of stop closing.
func (h *History) Run(stop <-chan struct{}) {
	t := time.NewTicker(h.interval)
	defer t.Stop()
	h.Sample(context.Background(), time.Now())
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			h.Sample(context.Background(), now)
		}
	}
}

// Sample reads the counters once, at now. A failed read is skipped: the
// next one measures over the longer interval.
func (h *History) Sample(ctx context.Context, now time.Time) {
	ctx, cancel := context.WithTimeout(ctx, sampleTimeout)
	defer cancel()
	st, err := h.b.Stats(ctx)
	if err != nil {
		return
	}
	ps, err := h.b.Peers(ctx)
	if err != nil {
		return
	}
	s := &sample{at: now, tunRead: st.Tun.BytesRead, tunWritten: st.Tun.BytesWritten,
		peers: make(map[uint64]peerCounters, len(ps))}
	for _, f := range st.Frames {
		s.overlayIn += f.BytesIn
		s.overlayOut += f.BytesOut
	}
	for _, p := range ps {
		s.peers[p.Port] = peerCounters{key: p.PublicKey, in: p.BytesIn, out: p.BytesOut}
	}
	h.add(s)
}

func (h *History) add(s *sample) {
	h.mu.Lock()
	defer h.mu.Unlock()
	prev := h.last
	h.last = s
	if prev == nil || !s.at.After(prev.at) {
		return
	}
	secs := s.at.Sub(prev.at).Seconds()
	p := Point{
		UnixMS:        s.at.UnixMilli(),
		OverlayInBps:  rate(prev.overlayIn, s.overlayIn, secs),
		OverlayOutBps: rate(prev.overlayOut, s.overlayOut, secs),
		TunReadBps:    rate(prev.tunRead, s.tunRead, secs),
		TunWriteBps:   rate(prev.tunWritten, s.tunWritten, secs),
	}
	if len(h.ring) < cap(h.ring) {
		h.ring = append(h.ring, p)
	} else {
		h.ring[h.next] = p
		h.next = (h.next + 1) % len(h.ring)
	}
	peers := make([]PeerRate, 0, len(s.peers))
	for port, c := range s.peers {
		r := PeerRate{Port: port, PublicKey: c.key}
		// A port reused by another key, or a new peering, has no rate yet.
		if old, ok := prev.peers[port]; ok && old.key == c.key {
			r.InBps, r.OutBps = rate(old.in, c.in, secs), rate(old.out, c.out, secs)
		}
		peers = append(peers, r)
	}
	slices.SortFunc(peers, func(a, b PeerRate) int { return cmp.Compare(a.Port, b.Port) })
	h.peers = peers
}

// rate is the growth of a counter per second; a counter that went down
// (a peering replaced on the same port) counts as no traffic.
func rate(before, after uint64, secs float64) float64 {
	if after < before {
		return 0
	}
	return float64(after-before) / secs
}

// Rates returns a copy of the history, oldest point first, and the peers'
// current rates in port order.
func (h *History) Rates() Rates {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := Rates{IntervalSeconds: h.interval.Seconds(), History: make([]Point, 0, len(h.ring))}
	out.History = append(out.History, h.ring[h.next:]...)
	out.History = append(out.History, h.ring[:h.next]...)
	out.Peers = append([]PeerRate{}, h.peers...)
	return out
}
