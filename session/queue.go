package session

import (
	"sync/atomic"
	"time"

	"github.com/pineconed/pineconed/envelope"
	"github.com/pineconed/pineconed/overlay/wire"
)

// maxHandshakeMessage is the largest handshake-layer payload: an
// initiation with a cookie mac.
const maxHandshakeMessage = envelope.HandshakeInitCookieSize

// IsHandshake reports whether t is a handshake-layer message type, one
// that HandshakeQueue takes: initiations (with or without a cookie mac),
// responses and cookie replies. Transport messages are not.
func IsHandshake(t envelope.Type) bool {
	switch t {
	case envelope.TypeHandshakeInit, envelope.TypeHandshakeInitCookie,
		envelope.TypeHandshakeResponse, envelope.TypeCookieReply:
		return true
	}
	return false
}

// HandshakeQueue keeps handshakes off the transport path: the goroutine
// that reads delivered payloads offers handshake messages to it and goes
// straight back to decrypting transport messages, while Run, on its own
// goroutine, does the Diffie-Hellman. The queue holds at most its size in
// messages, each copied into a fixed array (so the caller's buffer is free
// at once and the queue's memory is size × 164 bytes); when it is full, a
// message is dropped and counted, as WireGuard does with its handshake
// queue.
type HandshakeQueue struct {
	m     *Manager
	ch    chan queuedHandshake
	drops atomic.Uint64
}

type queuedHandshake struct {
	src wire.PublicKey
	n   int
	buf [maxHandshakeMessage]byte
}

// NewHandshakeQueue returns a queue of size messages in front of m.
func (m *Manager) NewHandshakeQueue(size int) *HandshakeQueue {
	return &HandshakeQueue{m: m, ch: make(chan queuedHandshake, max(1, size))}
}

// Offer queues a copy of a handshake message from src and reports whether
// it was taken: false when the queue is full (counted in Drops) or when
// payload is too long to be a handshake message (counted as malformed by
// the Manager).
func (q *HandshakeQueue) Offer(src wire.PublicKey, payload []byte) bool {
	if len(payload) > maxHandshakeMessage {
		q.m.st.inc(Malformed)
		return false
	}
	e := queuedHandshake{src: src, n: len(payload)}
	copy(e.buf[:], payload)
	select {
	case q.ch <- e:
		return true
	default:
		q.drops.Add(1)
		return false
	}
}

// Drops is the number of handshake messages dropped on a full queue.
func (q *HandshakeQueue) Drops() uint64 { return q.drops.Load() }

// Run processes queued messages with the Manager until stop is closed.
// now is the clock; onError, if set, sees what HandlePayload refused (for
// debug logging). The caller owns the goroutine Run runs on.
func (q *HandshakeQueue) Run(stop <-chan struct{}, now func() time.Time, onError func(src wire.PublicKey, err error)) {
	for {
		select {
		case <-stop:
			return
		case e := <-q.ch:
			if err := q.m.HandlePayload(now(), e.src, e.buf[:e.n]); err != nil && onError != nil {
				onError(e.src, err)
			}
		}
	}
}
