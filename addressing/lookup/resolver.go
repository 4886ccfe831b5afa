// Package lookup is the address lookup protocol: it resolves an overlay
// address to the full key of the node that owns it, asking over the overlay,
// and answers such lookups for this node's own key.
//
// SNEK routes a frame towards the smallest known key at or above its
// destination and hands it to the application there even if the key does not
// match (docs/protocol.md §5.3). Every key starting with prefix P sorts at or above
// P ‖ 00…, and no key below it starts with P, so a lookup sent to that "lookup
// key" (addressing.KeyPrefix.LookupKey) lands on the owner of P when it
// exists. The owner answers with its full key; the Resolver accepts an answer
// only for a pending lookup with the same nonce and only if the key really
// starts with the prefix.
//
// On a fresh network the route a lookup needs may be missing at any node on
// the way, and a request that finds no route is lost (at the origin as a
// traffic_no_route drop; a node on the way with no closer route delivers
// it to itself, which does not own the prefix, or drops it). Only the origin's
// own route changes are visible here (Resolver.RoutesChanged), so a pending
// lookup is also resent on a dense timer: every 500 ms for its first 4 s,
// then every second until it gives up at 11 s. That costs 15 request frames
// of well under 200 bytes each for an address nobody owns (4 with the 0/1/3/7 s
// schedule it replaced, which left a route that formed just after a request
// unused for up to 4 s), one lookup per destination at a time.
//
// The address arithmetic it relies on (key prefixes, lookup keys) is
// package addressing; the message layouts are package envelope.
package lookup

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"net/netip"
	"sync"
	"time"

	"github.com/pineconed/pineconed/addressing"
	"github.com/pineconed/pineconed/envelope"
	"github.com/pineconed/pineconed/internal/defaults"
	"github.com/pineconed/pineconed/overlay/wire"
)

// SendFunc hands a payload to the overlay for delivery to dst. It is best
// effort: loss is not reported. The callee owns payload.
type SendFunc func(dst wire.PublicKey, payload []byte)

// Config tunes a Resolver. Zero fields take the defaults shown.
type Config struct {
	// CacheTTL is how long a resolved key is trusted without being
	// re-proved (Learn) or looked up again. Default 10 minutes.
	CacheTTL time.Duration
	// RetryInterval paces a pending lookup's requests: one every
	// RetryInterval/2 for the first 4×RetryInterval, while a fresh
	// network's SNEK routes are still forming (at this node or at any node
	// on the way, which this node cannot see), then one every
	// RetryInterval; the lookup gives up at 11×RetryInterval. Default 1 s:
	// requests at 0, 0.5, 1, …, 4 s, then 5, 6, …, 10 s, and failure at
	// 11 s. That is 15 requests (30 bytes of payload, under 200 bytes as
	// overlay frames) for a destination nobody owns, against 4 with the 0/1/3/7 s
	// schedule this replaced, which let a route that formed just after a
	// request wait up to 4 s (issue 10). A lookup is one per destination,
	// and MaxPending bounds the destinations, so the resolver sends at most
	// 2×MaxPending requests a second on its timers.
	RetryInterval time.Duration
	// MaxQueue bounds the packets held per pending destination. Default 64.
	MaxQueue int
	// MaxPending bounds the number of destinations being looked up at
	// once. Default 256.
	MaxPending int
	// MaxCache bounds the number of cached prefixes. Default 16384.
	MaxCache int
	// Rand is the source of lookup nonces. Default crypto/rand.
	Rand io.Reader
}

func (c Config) withDefaults() Config {
	defaults.IfNotPositive(&c.CacheTTL, 10*time.Minute)
	defaults.IfNotPositive(&c.RetryInterval, time.Second)
	defaults.IfNotPositive(&c.MaxQueue, 64)
	defaults.IfNotPositive(&c.MaxPending, 256)
	defaults.IfNotPositive(&c.MaxCache, 16384)
	defaults.IfZero(&c.Rand, rand.Reader)
	return c
}

// Callbacks are called without any Resolver lock held, from the
// goroutine that called HandlePayload, Tick or Learn. Any may be nil.
type Callbacks struct {
	// Resolved receives the packets queued for a prefix, in arrival order,
	// once its key is known. The callee owns the packets.
	Resolved func(key wire.PublicKey, packets [][]byte)
	// Unreachable receives the packets queued for a prefix whose lookup
	// failed, for the daemon to answer with ICMPv6 Destination Unreachable.
	Unreachable func(prefix addressing.KeyPrefix, packets [][]byte)
	// LookupDone reports that the lookup for prefix has ended: ok when a
	// key owning it was found (an answer, or a handshake that proved one),
	// false when the resolver gave up. It fires for every lookup, including
	// those started without packets (Resolve with a nil packet), so a caller
	// waiting for one prefix learns its outcome at once. latency runs from
	// the first request to the accepted answer or to giving up, for a
	// latency histogram; prefix.Kind() tells node from subnet lookups.
	LookupDone func(prefix addressing.KeyPrefix, latency time.Duration, ok bool)
}

type cacheEntry struct {
	key     wire.PublicKey
	expires time.Time
}

type pendingLookup struct {
	prefix  addressing.KeyPrefix
	nonce   uint64
	started time.Time
	next    time.Time // when the next timed request is due
	queue   [][]byte
	// lastSent is when the last request went out; routeRetry means a
	// route change came too soon after it and a resend is owed.
	lastSent   time.Time
	routeRetry bool
}

// Resolver maps overlay addresses to keys, looks unknown ones up over the
// overlay, and answers lookups for our own key. It is safe for concurrent
// use and runs no goroutines: retries happen in Tick.
type Resolver struct {
	self wire.PublicKey
	cfg  Config
	send SendFunc
	cb   Callbacks

	mu        sync.RWMutex
	cache     map[addressing.KeyPrefix]cacheEntry
	pending   map[addressing.KeyPrefix]*pendingLookup
	byNonce   map[uint64]*pendingLookup
	lastSweep time.Time

	count counters
}

// New returns a resolver for a node with key self that sends lookup
// messages through send.
func New(self wire.PublicKey, cfg Config, send SendFunc, cb Callbacks) *Resolver {
	return &Resolver{
		self:    self,
		cfg:     cfg.withDefaults(),
		send:    send,
		cb:      cb,
		cache:   make(map[addressing.KeyPrefix]cacheEntry),
		pending: make(map[addressing.KeyPrefix]*pendingLookup),
		byNonce: make(map[uint64]*pendingLookup),
	}
}

// Resolve returns the key that owns dst if it is cached. Otherwise it copies
// packet (if not nil) into the destination's queue, starts a lookup if none
// is running, and returns false; the packet comes back later through the
// Resolved or Unreachable callback. Packets that cannot be queued are
// dropped and counted. A nil packet just starts a lookup (e.g. for a ping).
func (r *Resolver) Resolve(now time.Time, dst netip.Addr, packet []byte) (wire.PublicKey, bool) {
	p, ok := addressing.PrefixOf(dst)
	if !ok {
		r.count.inc(DropNotOverlay)
		return wire.PublicKey{}, false
	}
	if p.Matches(r.self) {
		// Our own address: nothing to look up (the kernel normally keeps
		// these packets local anyway).
		return r.self, true
	}
	r.mu.RLock()
	e, hit := r.cache[p]
	r.mu.RUnlock()
	if hit && now.Before(e.expires) {
		r.count.inc(CacheHit)
		return e.key, true
	}

	r.mu.Lock()
	if e, hit := r.cache[p]; hit && now.Before(e.expires) {
		r.mu.Unlock()
		r.count.inc(CacheHit)
		return e.key, true
	}
	if pl := r.pending[p]; pl != nil {
		if packet != nil {
			if len(pl.queue) >= r.cfg.MaxQueue {
				r.count.inc(DropQueueFull)
			} else {
				pl.queue = append(pl.queue, append([]byte(nil), packet...))
			}
		}
		r.mu.Unlock()
		return wire.PublicKey{}, false
	}
	if len(r.pending) >= r.cfg.MaxPending {
		r.mu.Unlock()
		if packet != nil {
			r.count.inc(DropPendingFull)
		}
		return wire.PublicKey{}, false
	}
	pl := &pendingLookup{prefix: p, started: now}
	r.sentLocked(pl, now)
	pl.nonce = r.newNonceLocked()
	if packet != nil {
		pl.queue = append(pl.queue, append([]byte(nil), packet...))
	}
	r.pending[p] = pl
	r.byNonce[pl.nonce] = pl
	req := r.request(pl)
	r.mu.Unlock()

	r.count.inc(LookupStarted)
	r.sendRequest(p, req)
	return wire.PublicKey{}, false
}

func (r *Resolver) newNonceLocked() uint64 {
	var b [8]byte
	for {
		if _, err := io.ReadFull(r.cfg.Rand, b[:]); err != nil {
			// A broken entropy source must not stall lookups; fall back
			// to a counter, which still matches answers to requests.
			binary.BigEndian.PutUint64(b[:], uint64(len(r.byNonce))+uint64(time.Now().UnixNano()))
		}
		n := binary.BigEndian.Uint64(b[:])
		if _, dup := r.byNonce[n]; !dup {
			return n
		}
	}
}

func (r *Resolver) request(pl *pendingLookup) []byte {
	b, err := envelope.LookupRequest{Kind: pl.prefix.Kind(), Nonce: pl.nonce, Prefix: pl.prefix.Bytes()}.Append(nil)
	if err != nil {
		// Prefixes are built with valid kinds and lengths; this cannot
		// happen, and if it did the lookup would simply time out.
		return nil
	}
	return b
}

func (r *Resolver) sendRequest(p addressing.KeyPrefix, req []byte) {
	if req == nil {
		return
	}
	r.count.inc(RequestSent)
	r.send(p.LookupKey(), req)
}

// HandlePayload processes a lookup request or response that arrived from
// the overlay with frame source key src. Anything else, or anything
// malformed, is counted and returned as an error.
func (r *Resolver) HandlePayload(now time.Time, src wire.PublicKey, payload []byte) error {
	t, err := envelope.ParseHeader(payload)
	if err != nil {
		r.count.inc(Malformed)
		return err
	}
	switch t {
	case envelope.TypeLookupRequest:
		return r.handleRequest(src, payload)
	case envelope.TypeLookupResponse:
		return r.handleResponse(now, src, payload)
	}
	r.count.inc(Malformed)
	return fmt.Errorf("resolver: %w: %s", envelope.ErrWrongType, t)
}

func (r *Resolver) handleRequest(src wire.PublicKey, payload []byte) error {
	req, err := envelope.ParseLookupRequest(payload)
	if err != nil {
		r.count.inc(Malformed)
		return fmt.Errorf("lookup request from %s: %w", src, err)
	}
	r.count.inc(RequestReceived)
	p, err := addressing.NewKeyPrefix(req.Kind, req.Prefix)
	if err != nil {
		r.count.inc(Malformed)
		return err
	}
	if !p.Matches(r.self) {
		r.count.inc(RequestNotOurs)
		return nil
	}
	if src == r.self {
		return nil
	}
	resp, err := envelope.LookupResponse{Kind: req.Kind, Nonce: req.Nonce, Key: r.self}.Append(nil)
	if err != nil {
		return err
	}
	r.count.inc(RequestAnswered)
	r.send(src, resp)
	return nil
}

func (r *Resolver) handleResponse(now time.Time, src wire.PublicKey, payload []byte) error {
	resp, err := envelope.ParseLookupResponse(payload)
	if err != nil {
		r.count.inc(Malformed)
		return fmt.Errorf("lookup response from %s: %w", src, err)
	}
	r.mu.Lock()
	pl := r.byNonce[resp.Nonce]
	if pl == nil {
		r.mu.Unlock()
		r.count.inc(ResponseUnsolicited)
		return nil
	}
	if resp.Kind != pl.prefix.Kind() || !pl.prefix.Matches(resp.Key) || resp.Key != src {
		// The lookup stays pending: the real owner may still answer.
		r.mu.Unlock()
		r.count.inc(ResponseMismatch)
		return fmt.Errorf("lookup response from %s: key %s does not own %s", src, resp.Key, pl.prefix)
	}
	r.removePendingLocked(pl)
	r.learnLocked(now, resp.Key)
	r.mu.Unlock()

	r.count.inc(ResponseAccepted)
	r.finish(pl, resp.Key, now, true)
	return nil
}

func (r *Resolver) removePendingLocked(pl *pendingLookup) {
	delete(r.pending, pl.prefix)
	delete(r.byNonce, pl.nonce)
}

func (r *Resolver) finish(pl *pendingLookup, key wire.PublicKey, now time.Time, ok bool) {
	if ok {
		r.count.inc(LookupFound)
		if r.cb.Resolved != nil && len(pl.queue) > 0 {
			r.cb.Resolved(key, pl.queue)
		}
	} else {
		r.count.inc(LookupTimedOut)
		r.count.add(DropUnreachable, uint64(len(pl.queue)))
		if r.cb.Unreachable != nil && len(pl.queue) > 0 {
			r.cb.Unreachable(pl.prefix, pl.queue)
		}
	}
	if r.cb.LookupDone != nil {
		r.cb.LookupDone(pl.prefix, now.Sub(pl.started), ok)
	}
}

// Learn records that key is proven (by a completed session handshake) and
// caches both its node and subnet prefixes until now+CacheTTL. Lookups
// pending for either prefix complete at once.
func (r *Resolver) Learn(now time.Time, key wire.PublicKey) {
	if key == r.self {
		return
	}
	var done []*pendingLookup
	r.mu.Lock()
	r.learnLocked(now, key)
	for _, p := range [...]addressing.KeyPrefix{addressing.NodeKeyPrefix(key), addressing.SubnetKeyPrefix(key)} {
		if pl := r.pending[p]; pl != nil {
			r.removePendingLocked(pl)
			done = append(done, pl)
		}
	}
	r.mu.Unlock()
	for _, pl := range done {
		r.finish(pl, key, now, true)
	}
}

func (r *Resolver) learnLocked(now time.Time, key wire.PublicKey) {
	exp := now.Add(r.cfg.CacheTTL)
	for _, p := range [...]addressing.KeyPrefix{addressing.NodeKeyPrefix(key), addressing.SubnetKeyPrefix(key)} {
		if _, ok := r.cache[p]; !ok && len(r.cache) >= r.cfg.MaxCache {
			r.evictLocked(now)
		}
		r.cache[p] = cacheEntry{key: key, expires: exp}
	}
}

// evictLocked makes room in a full cache: expired entries first, otherwise
// the one closest to expiry.
func (r *Resolver) evictLocked(now time.Time) {
	r.sweepLocked(now)
	if len(r.cache) < r.cfg.MaxCache {
		return
	}
	var victim addressing.KeyPrefix
	var first time.Time
	for p, e := range r.cache {
		if first.IsZero() || e.expires.Before(first) {
			victim, first = p, e.expires
		}
	}
	delete(r.cache, victim)
}

func (r *Resolver) sweepLocked(now time.Time) {
	for p, e := range r.cache {
		if !now.Before(e.expires) {
			delete(r.cache, p)
		}
	}
	r.lastSweep = now
}

// Forget drops the cache entries that map to key, e.g. when its session
// expired or the key stopped answering.
func (r *Resolver) Forget(key wire.PublicKey) {
	r.mu.Lock()
	for _, p := range [...]addressing.KeyPrefix{addressing.NodeKeyPrefix(key), addressing.SubnetKeyPrefix(key)} {
		if e, ok := r.cache[p]; ok && e.key == key {
			delete(r.cache, p)
		}
	}
	r.mu.Unlock()
}

// Tick sends due retries, fails lookups that reached their give-up time,
// and sweeps expired cache entries. It also sends the resends RoutesChanged
// owes. Call it every 250 ms or so; retry timing is only as precise as the
// tick interval.
func (r *Resolver) Tick(now time.Time) {
	type retry struct {
		p   addressing.KeyPrefix
		req []byte
	}
	var retries []retry
	var failed []*pendingLookup
	r.mu.Lock()
	for _, pl := range r.pending {
		switch {
		case !now.Before(pl.started.Add(r.giveUp())):
			r.removePendingLocked(pl)
			failed = append(failed, pl)
		case pl.routeRetry && now.Sub(pl.lastSent) >= r.routeRetryGap():
			r.count.inc(RouteRetry)
			fallthrough
		case r.due(pl, now):
			r.sentLocked(pl, now)
			retries = append(retries, retry{pl.prefix, r.request(pl)})
		}
	}
	if now.Sub(r.lastSweep) >= 10*time.Second {
		r.sweepLocked(now)
	}
	r.mu.Unlock()

	for _, rt := range retries {
		r.sendRequest(rt.p, rt.req)
	}
	for _, pl := range failed {
		r.finish(pl, wire.PublicKey{}, now, false)
	}
}

// RoutesChanged tells the resolver that the overlay has gained a route (a
// new tree parent, SNEK neighbour or route; overlay.Node.RoutesChanged).
// Every pending lookup sends its request again at once: the earlier ones
// may have found no route. A resend counts as the lookup's latest request,
// so its next timed one follows a full interval later; the give-up time
// stays. A lookup that sent a request less than RetryInterval/4 ago
// resends at the end of that gap instead (in Tick), so a burst of route
// changes costs each lookup at most four requests a second. It returns how
// many requests it sent and how many it left owed to Tick.
func (r *Resolver) RoutesChanged(now time.Time) (sent, owed int) {
	var resends []*pendingLookup
	var reqs [][]byte
	r.mu.Lock()
	for _, pl := range r.pending {
		if now.Sub(pl.lastSent) < r.routeRetryGap() {
			pl.routeRetry = true
			owed++
			continue
		}
		r.sentLocked(pl, now)
		resends = append(resends, pl)
		reqs = append(reqs, r.request(pl))
	}
	r.mu.Unlock()
	for i, pl := range resends {
		r.count.inc(RouteRetry)
		r.sendRequest(pl.prefix, reqs[i])
	}
	return len(resends), owed
}

// sentLocked records that pl's request goes out now and schedules the
// next one.
func (r *Resolver) sentLocked(pl *pendingLookup, now time.Time) {
	gap := r.cfg.RetryInterval
	if now.Sub(pl.started) < 4*r.cfg.RetryInterval {
		gap /= 2
	}
	pl.lastSent, pl.routeRetry, pl.next = now, false, now.Add(gap)
}

// due reports whether pl's next timed request should go out at this tick.
// A tick that comes a little before the due time (tickers jitter) sends
// it: waiting for the next tick would stretch the gap by a whole tick.
func (r *Resolver) due(pl *pendingLookup, now time.Time) bool {
	return !now.Before(pl.next.Add(-r.cfg.RetryInterval / 8))
}

// giveUp is how long a lookup lasts.
func (r *Resolver) giveUp() time.Duration { return 11 * r.cfg.RetryInterval }

// routeRetryGap is the least time between two requests of one lookup when
// route changes ask for resends.
func (r *Resolver) routeRetryGap() time.Duration { return r.cfg.RetryInterval / 4 }

// Lookup returns the cached key for dst without starting a lookup.
func (r *Resolver) Lookup(now time.Time, dst netip.Addr) (wire.PublicKey, bool) {
	p, ok := addressing.PrefixOf(dst)
	if !ok {
		return wire.PublicKey{}, false
	}
	r.mu.RLock()
	e, hit := r.cache[p]
	r.mu.RUnlock()
	if !hit || !now.Before(e.expires) {
		return wire.PublicKey{}, false
	}
	return e.key, true
}

// Stats returns a snapshot of the counters.
func (r *Resolver) Stats() Stats {
	var st Stats
	r.mu.RLock()
	st.CacheEntries, st.Pending = len(r.cache), len(r.pending)
	r.mu.RUnlock()
	for c := range numCounters {
		st.Count[c] = r.count[c].Load()
	}
	return st
}
