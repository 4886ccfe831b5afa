package router

import (
	"sync"
	"time"

	"github.com/pineconed/pineconed/overlay/wire"
)

// CoordCache remembers the tree coordinates of nodes that sent us traffic
// (docs/protocol.md §6.2). It is what makes routing hybrid: a reply to a key in the
// cache carries destination coordinates and goes by the tree instead of
// SNEK. The Router fills it when it delivers a frame, the node reads it on
// every send, both without the control lock, so it has its own mutex.
//
// The reference keeps an unbounded map; this one holds at most a fixed
// number of keys and evicts the least recently used.
type CoordCache struct {
	mu      sync.Mutex
	max     int
	entries map[wire.PublicKey]*cacheEntry
	// head is the most recently used entry, tail the least.
	head, tail *cacheEntry
}

type cacheEntry struct {
	key        wire.PublicKey
	coords     wire.Coordinates
	stored     time.Time
	prev, next *cacheEntry
}

// NewCoordCache returns an empty cache for at most max keys (max < 1 means
// DefaultCoordCacheSize).
func NewCoordCache(max int) *CoordCache {
	if max < 1 {
		max = DefaultCoordCacheSize
	}
	return &CoordCache{max: max, entries: make(map[wire.PublicKey]*cacheEntry)}
}

// Get returns the coordinates stored for key if they are younger than
// CoordCacheLifetime at now. The returned slice is shared and must not be
// modified.
func (c *CoordCache) Get(key wire.PublicKey, now time.Time) (wire.Coordinates, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[key]
	if e == nil || now.Sub(e.stored) >= CoordCacheLifetime {
		return nil, false
	}
	c.moveToFront(e)
	return e.coords, true
}

// Put stores coords for key as of now. The cache keeps its own copy, and
// only makes one when the coordinates changed, so that refreshing an active
// conversation on every delivered frame does not allocate.
func (c *CoordCache) Put(key wire.PublicKey, coords wire.Coordinates, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[key]
	switch {
	case e != nil:
		c.moveToFront(e)
	case len(c.entries) >= c.max:
		// Reuse the least recently used entry for the new key.
		e = c.tail
		c.unlink(e)
		delete(c.entries, e.key)
		e.key, e.coords = key, nil
		c.entries[key] = e
		c.pushFront(e)
	default:
		e = &cacheEntry{key: key}
		c.entries[key] = e
		c.pushFront(e)
	}
	if !e.coords.Equal(coords) {
		e.coords = append(wire.Coordinates(nil), coords...)
	}
	e.stored = now
}

// Sweep removes entries that have expired at now and returns how many.
func (c *CoordCache) Sweep(now time.Time) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for e := c.tail; e != nil; {
		prev := e.prev
		if now.Sub(e.stored) >= CoordCacheLifetime {
			c.unlink(e)
			delete(c.entries, e.key)
			n++
		}
		e = prev
	}
	return n
}

// Clear forgets everything: coordinates from another tree are meaningless,
// so the Router clears the cache when the root key changes.
func (c *CoordCache) Clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.entries)
	c.head, c.tail = nil, nil
}

// Len is the number of keys held, expired or not.
func (c *CoordCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

func (c *CoordCache) unlink(e *cacheEntry) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		c.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		c.tail = e.prev
	}
	e.prev, e.next = nil, nil
}

func (c *CoordCache) pushFront(e *cacheEntry) {
	e.next = c.head
	if c.head != nil {
		c.head.prev = e
	}
	c.head = e
	if c.tail == nil {
		c.tail = e
	}
}

func (c *CoordCache) moveToFront(e *cacheEntry) {
	if c.head == e {
		return
	}
	c.unlink(e)
	c.pushFront(e)
}
