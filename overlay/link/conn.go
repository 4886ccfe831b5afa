package link

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pineconed/pineconed/internal/bufpool"
	"github.com/pineconed/pineconed/internal/defaults"
	"github.com/pineconed/pineconed/overlay"
	"github.com/pineconed/pineconed/overlay/router"
	"github.com/pineconed/pineconed/overlay/wire"
)

// Protocol timings (docs/protocol.md §1.4) and our queue sizes.
const (
	// DefaultKeepaliveInterval is how long the writer stays silent before
	// it sends a Keepalive. Stock nodes drop a peer after 5 s of silence.
	DefaultKeepaliveInterval = 3 * time.Second
	// DefaultReadTimeout is how long one whole frame may take to arrive.
	DefaultReadTimeout = 5 * time.Second
	// DefaultWriteTimeout bounds each write to the connection.
	DefaultWriteTimeout = 3 * time.Second
	// DefaultProtocolQueue is the protocol queue's length in frames.
	// Protocol frames are small and few; a full queue means the peer has
	// stopped reading for a long time.
	DefaultProtocolQueue = 256
	// DefaultProtocolQueueBytes caps the buffer bytes held by the
	// protocol queue: tree announcements grow with the path to the root,
	// which a hostile parent chooses.
	DefaultProtocolQueueBytes = 1 << 20
	// DefaultTrafficQueue is the traffic queue's length in frames.
	DefaultTrafficQueue = 512
	// DefaultTrafficQueueBytes caps the buffer bytes held by the traffic
	// queue, so that large frames (up to 64 KiB each) cannot make one slow
	// peer hold tens of megabytes.
	DefaultTrafficQueueBytes = 4 << 20
	// DefaultWriteBuffer is the writer's buffer: how many bytes of frames
	// one flush can carry.
	DefaultWriteBuffer = 64 << 10
	// DefaultReadBuffer is the reader's buffer. It is all the read-ahead a
	// link does beyond the frame being handed to the node.
	DefaultReadBuffer = 64 << 10
)

// Config tunes a link. The zero value gives the protocol's defaults; a
// negative duration turns that timer off (the reference's
// ConnectionKeepalives(false), for transports that cannot afford them).
type Config struct {
	// KeepaliveInterval is the idle time after which a Keepalive is sent.
	KeepaliveInterval time.Duration
	// ReadTimeout is the time allowed for each whole frame to arrive. The
	// deadline is cleared once the frame is in.
	ReadTimeout time.Duration
	// WriteTimeout is the time allowed for each write to the connection.
	// The deadline is cleared once the write returns.
	WriteTimeout time.Duration
	// ProtocolQueue and TrafficQueue are the queue lengths in frames.
	ProtocolQueue int
	TrafficQueue  int
	// ProtocolQueueBytes and TrafficQueueBytes cap the memory the queued
	// frames hold: the capacity of their buffers, not their lengths.
	ProtocolQueueBytes int
	TrafficQueueBytes  int
	// WriteBuffer and ReadBuffer are the buffered writer's and reader's
	// sizes in bytes.
	WriteBuffer int
	ReadBuffer  int
	// Logger receives the link's debug messages; nil means slog.Default().
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	defaults.IfZero(&c.KeepaliveInterval, DefaultKeepaliveInterval)
	defaults.IfZero(&c.ReadTimeout, DefaultReadTimeout)
	defaults.IfZero(&c.WriteTimeout, DefaultWriteTimeout)
	defaults.IfNotPositive(&c.ProtocolQueue, DefaultProtocolQueue)
	defaults.IfNotPositive(&c.TrafficQueue, DefaultTrafficQueue)
	defaults.IfNotPositive(&c.ProtocolQueueBytes, DefaultProtocolQueueBytes)
	defaults.IfNotPositive(&c.TrafficQueueBytes, DefaultTrafficQueueBytes)
	defaults.IfNotPositive(&c.WriteBuffer, DefaultWriteBuffer)
	defaults.IfNotPositive(&c.ReadBuffer, DefaultReadBuffer)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// MaxHeldBytes is the most memory one link's frames and buffers hold while
// its peer stops reading: both queues full to their byte caps, the
// writer's and reader's buffers, the frame the writer is writing and the
// frame the reader is reading (each at most one large pool buffer). With
// the defaults it is 5.26 MiB.
func (c Config) MaxHeldBytes() int {
	c = c.withDefaults()
	return c.ProtocolQueueBytes + c.TrafficQueueBytes + c.WriteBuffer + c.ReadBuffer + 2*bufpool.LargeSize
}

// Reasons a link ends. The reason passed to Detach wraps one of these (or
// is the error the node returned from Receive, wrapped in ErrRejected, or
// whatever reason the caller of Close gave).
var (
	// ErrClosed is the reason when Close is called with a nil reason.
	ErrClosed = errors.New("link closed")
	// ErrRemoteClosed means the remote side ended the stream.
	ErrRemoteClosed = errors.New("remote closed the connection")
	// ErrReadTimeout means a whole frame did not arrive within the read
	// timeout: the peer went silent or stalled mid-frame.
	ErrReadTimeout = errors.New("read timeout")
	// ErrWriteTimeout means a write did not finish within the write
	// timeout: the peer stopped reading.
	ErrWriteTimeout = errors.New("write timeout")
	// ErrBadFrame means a frame header was malformed: bad magic (also
	// wraps wire.ErrBadMagic) or an impossible declared length.
	ErrBadFrame = errors.New("malformed frame header")
	// ErrRejected wraps the error the node's Receive returned for a frame.
	ErrRejected = errors.New("frame rejected")
)

// Receiver is the part of the node a running link reports to.
type Receiver interface {
	// Receive takes one whole frame read from the peer on port. The frame
	// is an internal/bufpool buffer (from bufpool.Alloc) that the receiver
	// owns from the call on: it may change it, keep it or hand it on, and
	// gives it to bufpool.Put when done (a receiver that forgets costs the
	// pool a buffer, nothing more). The link reads every frame into a
	// buffer of its own, so that a delivered or forwarded frame is never
	// copied out of the one the socket filled. A non-nil error is a
	// protocol violation: the link closes with that error as its reason.
	Receive(port router.Port, frame []byte) error
	// KeepaliveSent counts one Keepalive of size bytes that the link made
	// itself and wrote on port. The node counts the frames it queues with
	// Send; the link's own keepalives never pass through it, so without
	// this the node's counters would miss them. It is called from the
	// link's writer and must not block.
	KeepaliveSent(port router.Port, size int)
	// Detach is called exactly once, after the link's goroutines have
	// stopped: no Receive or KeepaliveSent call follows it.
	Detach(port router.Port, reason error)
}

// keepaliveFrame is the Keepalive frame, the same bytes every time.
var keepaliveFrame = func() []byte {
	b, err := (&wire.Keepalive{}).Append(nil)
	if err != nil {
		panic("link: cannot encode a keepalive: " + err.Error())
	}
	return b
}()

// Conn is one peering over a net.Conn after a successful Handshake. It
// implements overlay.Link. Create it with New, hand it to the node's Attach
// (which may already Send on it), then call Start with the port Attach gave.
type Conn struct {
	nc     net.Conn
	remote wire.PublicKey
	cfg    Config
	log    *slog.Logger

	protoQ   queue
	trafficQ *fairQueue

	mu      sync.Mutex
	closed  bool
	started bool
	reason  error
	port    router.Port
	recv    Receiver
	closing chan struct{} // closed by the first Close
	done    chan struct{} // closed after Detach has returned

	stats counters
}

var _ overlay.Link = (*Conn)(nil)

// New wraps a connection whose handshake with remote has succeeded. Nothing
// runs until Start; frames sent before then wait in the queues.
func New(nc net.Conn, remote wire.PublicKey, cfg Config) *Conn {
	cfg = cfg.withDefaults()
	c := &Conn{
		nc:       nc,
		remote:   remote,
		cfg:      cfg,
		log:      cfg.Logger.With("peer", remote, "remote", nc.RemoteAddr().String()),
		protoQ:   newQueue(cfg.ProtocolQueue, cfg.ProtocolQueueBytes),
		trafficQ: newFairQueue(cfg.TrafficQueue, cfg.TrafficQueueBytes),
		closing:  make(chan struct{}),
		done:     make(chan struct{}),
	}
	c.stats.since = time.Now()
	return c
}

// Remote is the key the remote proved in the handshake.
func (c *Conn) Remote() wire.PublicKey { return c.remote }

// RemoteAddr is the underlying connection's remote address.
func (c *Conn) RemoteAddr() net.Addr { return c.nc.RemoteAddr() }

// Start runs the reader and writer for the node port the link was attached
// on; r receives the frames and, once, the Detach. Calling Start more than
// once has no effect. If the link was closed before Start, it still detaches.
func (c *Conn) Start(port router.Port, r Receiver) {
	c.mu.Lock()
	if c.started {
		c.mu.Unlock()
		return
	}
	c.started, c.port, c.recv = true, port, r
	c.log = c.log.With("port", uint8(port))
	c.mu.Unlock()
	go c.run()
}

// Done is closed when a started link has finished: both goroutines have
// stopped, the connection is closed and Detach has returned.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Reason is why the link closed, or nil while it is open.
func (c *Conn) Reason() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reason
}

// Close ends the peering with reason (nil means ErrClosed). Only the first
// call counts. It does not wait: the link's own goroutine closes the
// connection and calls Detach. On a link that was never started, Close
// closes the connection itself.
func (c *Conn) Close(reason error) {
	if reason == nil {
		reason = ErrClosed
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed, c.reason = true, reason
	started := c.started
	close(c.closing)
	c.mu.Unlock()
	if !started {
		_ = c.nc.Close()
	}
}

// Send queues one whole encoded frame; see overlay.Link. A frame whose header
// does not describe exactly its own length is dropped and counted as
// "malformed": a bad frame from us could crash a stock node (docs/protocol.md §3.8).
//
// The link owns frame from the call on. A small frame in a large
// internal/bufpool buffer is first moved to a small one (bufpool.Shrink),
// so that the queue's byte budget, which counts buffer capacity, admits as
// many small frames as its length allows. A frame built in a pool buffer
// goes back to the pool (bufpool.Put) once it has been written to the
// connection or dropped here; frames still queued when the link closes
// are left to the garbage collector.
func (c *Conn) Send(frame []byte, protocol bool) bool {
	if len(frame) < wire.HeaderSize || len(frame) > wire.MaxFrameSize ||
		[4]byte(frame[:4]) != wire.Magic || int(binary.BigEndian.Uint16(frame[8:10])) != len(frame) {
		c.stats.drop(DropMalformed)
		bufpool.Put(frame)
		return false
	}
	select {
	case <-c.closing:
		c.stats.drop(DropClosed)
		bufpool.Put(frame)
		return false
	default:
	}
	frame = bufpool.Shrink(frame)
	if protocol {
		if !c.protoQ.push(frame) {
			c.stats.drop(DropProtocolQueueFull)
			bufpool.Put(frame)
			return false
		}
		return true
	}
	ok, evicted := c.trafficQ.push(frame)
	if evicted != nil {
		c.stats.drop(DropTrafficQueueFull)
		recycle(evicted)
	}
	if !ok {
		c.stats.drop(DropTrafficQueueFull)
		bufpool.Put(frame)
	}
	return ok
}

// queue is one of a link's send queues: a channel bounded in frames, and
// a budget of buffer bytes (cap, the memory a queued frame keeps alive).
type queue struct {
	ch    chan []byte
	bytes atomic.Int64
	limit int64
}

func newQueue(frames, bytes int) queue {
	return queue{ch: make(chan []byte, frames), limit: int64(bytes)}
}

// push queues frame if both bounds allow it.
func (q *queue) push(frame []byte) bool {
	n := int64(cap(frame))
	if q.bytes.Add(n) > q.limit {
		q.bytes.Add(-n)
		return false
	}
	select {
	case q.ch <- frame:
		return true
	default:
		q.bytes.Add(-n)
		return false
	}
}

// taken returns a frame received from q.ch to the byte budget.
func (q *queue) taken(frame []byte) { q.bytes.Add(-int64(cap(frame))) }

// run owns the reader and writer goroutines, closes the connection when
// the link is closing, and detaches once both have stopped.
func (c *Conn) run() {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); c.readLoop() }()
	go func() { defer wg.Done(); c.writeLoop() }()
	<-c.closing
	_ = c.nc.Close()
	wg.Wait()
	reason := c.Reason()
	c.log.Debug("link closed", "reason", reason)
	c.recv.Detach(c.port, reason)
	close(c.done)
}

func (c *Conn) readLoop() {
	br := bufio.NewReaderSize(c.nc, c.cfg.ReadBuffer)
	var hdr [wire.HeaderSize]byte
	for {
		var deadline time.Time
		if c.cfg.ReadTimeout > 0 && !frameBuffered(br) {
			deadline = time.Now().Add(c.cfg.ReadTimeout)
			if err := c.nc.SetReadDeadline(deadline); err != nil {
				c.Close(c.readError(err, time.Time{}, 0, wire.HeaderSize))
				return
			}
		}
		if n, err := io.ReadFull(br, hdr[:]); err != nil {
			c.Close(c.readError(err, deadline, n, wire.HeaderSize))
			return
		}
		h, err := wire.ParseHeader(hdr[:])
		if err != nil {
			c.Close(fmt.Errorf("%w: %w", ErrBadFrame, err))
			return
		}
		// The receiver owns the frame (see Receiver): a new pool buffer
		// per frame, of the smallest class that holds it.
		buf := bufpool.Alloc(h.Length)
		copy(buf, hdr[:])
		if n, err := readBody(br, c.nc, buf[wire.HeaderSize:]); err != nil {
			bufpool.Put(buf)
			c.Close(c.readError(err, deadline, wire.HeaderSize+n, h.Length))
			return
		}
		// The frame is in: its deadline must not outlive it (see the
		// package doc), even while Receive holds the reader up.
		if !deadline.IsZero() {
			if err := c.nc.SetReadDeadline(time.Time{}); err != nil {
				bufpool.Put(buf)
				c.Close(fmt.Errorf("read: clear deadline: %w", err))
				return
			}
		}
		select {
		case <-c.closing:
			bufpool.Put(buf)
			return
		default:
		}
		if err := c.recv.Receive(c.port, buf); err != nil {
			c.Close(fmt.Errorf("%w: %s frame: %w", ErrRejected, h.Type, err))
			return
		}
	}
}

// frameBuffered reports whether br already holds the whole next frame. Such
// a frame has arrived, and reading it cannot block, so it needs no read
// deadline: small frames come dozens to a socket read, and setting and
// clearing a deadline (two timer updates and a clock read) for each was
// most of what the link itself spent on them.
func frameBuffered(br *bufio.Reader) bool {
	n := br.Buffered()
	if n < wire.HeaderSize {
		return false
	}
	b, err := br.Peek(wire.HeaderSize)
	if err != nil {
		return false
	}
	h, err := wire.ParseHeader(b)
	return err == nil && h.Length <= n
}

// directRead is the size from which the rest of a frame body that the
// read buffer does not hold is read from the connection straight into the
// frame's own buffer: a bufio.Reader reads directly only into a slice at
// least as large as its buffer, which no frame is (64 KiB), so large
// frames were copied once more, out of the read buffer. Smaller rests go
// through the buffer, which gathers many small frames per system call.
const directRead = 16 << 10

// readBody fills b, the body of a frame: first with what br has buffered,
// then, when at least directRead bytes remain, straight from nc (br is
// empty then, so nothing is read out of order), else through br.
func readBody(br *bufio.Reader, nc net.Conn, b []byte) (int, error) {
	n := 0
	if k := min(br.Buffered(), len(b)); k > 0 {
		// Buffered bytes come without a system call or an error.
		n, _ = br.Read(b[:k])
	}
	var err error
	var m int
	switch rest := len(b) - n; {
	case rest == 0:
	case rest >= directRead:
		m, err = io.ReadFull(nc, b[n:])
	default:
		m, err = io.ReadFull(br, b[n:])
	}
	return n + m, err
}

// readError turns a failed read of a frame into the reason the link ends.
func (c *Conn) readError(err error, deadline time.Time, got, want int) error {
	select {
	case <-c.closing:
		// Our own Close made the read fail; its reason stands.
		return err
	default:
	}
	if !deadline.IsZero() && !time.Now().Before(deadline) {
		return fmt.Errorf("%w: no whole frame within %v (got %d of %d bytes)", ErrReadTimeout, c.cfg.ReadTimeout, got, want)
	}
	// net.Pipe reports the other end's Close as io.ErrClosedPipe.
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.ErrClosedPipe) {
		if got == 0 {
			return ErrRemoteClosed
		}
		return fmt.Errorf("%w mid-frame (got %d of %d bytes)", ErrRemoteClosed, got, want)
	}
	return fmt.Errorf("read: %w", err)
}

// deadlineWriter gives every write to the connection its own deadline, so
// both explicit flushes and the buffer's own spills when a burst overflows
// it are bounded, and clears it once the write is done, so that an idle
// link holds no deadline (see the package doc).
type deadlineWriter struct{ c *Conn }

func (w deadlineWriter) Write(p []byte) (int, error) {
	c := w.c
	var deadline time.Time
	if c.cfg.WriteTimeout > 0 {
		deadline = time.Now().Add(c.cfg.WriteTimeout)
		if err := c.nc.SetWriteDeadline(deadline); err != nil {
			return 0, fmt.Errorf("set write deadline: %w", err)
		}
	}
	n, err := c.nc.Write(p)
	c.stats.writes.Add(1)
	if err != nil {
		if !deadline.IsZero() && !time.Now().Before(deadline) {
			return n, fmt.Errorf("%w: %d bytes not written within %v", ErrWriteTimeout, len(p)-n, c.cfg.WriteTimeout)
		}
		return n, fmt.Errorf("write: %w", err)
	}
	if !deadline.IsZero() {
		if err := c.nc.SetWriteDeadline(time.Time{}); err != nil {
			return n, fmt.Errorf("clear write deadline: %w", err)
		}
	}
	return n, nil
}

func (c *Conn) writeLoop() {
	bw := bufio.NewWriterSize(deadlineWriter{c}, c.cfg.WriteBuffer)
	ka := c.cfg.KeepaliveInterval
	var idle <-chan time.Time
	var timer *time.Timer
	lastWrite := time.Now()
	if ka > 0 {
		timer = time.NewTimer(ka)
		defer timer.Stop()
		idle = timer.C
	}
	for {
		var frame []byte
		keepalive := false
		// Protocol frames first; then traffic in the fair queue's order.
		select {
		case frame = <-c.protoQ.ch:
			c.protoQ.taken(frame)
		default:
			frame = c.trafficQ.pop()
		}
		if frame == nil {
			// Both queues are empty: this is the moment to put
			// everything buffered on the wire in one write.
			if bw.Buffered() > 0 {
				if err := bw.Flush(); err != nil {
					c.Close(err)
					return
				}
				lastWrite = time.Now()
			}
			select {
			case frame = <-c.protoQ.ch:
				c.protoQ.taken(frame)
			case <-c.trafficQ.ready:
				// A token may outlive the frames it announced
				// (taken by an earlier pop): look again.
				continue
			case <-idle:
				if wait := ka - time.Since(lastWrite); wait > 0 {
					timer.Reset(wait)
					continue
				}
				timer.Reset(ka)
				frame, keepalive = keepaliveFrame, true
			case <-c.closing:
				return
			}
		}
		n := len(frame)
		_, err := bw.Write(frame)
		// bw has copied or written the frame: it is free. (Put ignores
		// keepaliveFrame, far smaller than a pool buffer.)
		bufpool.Put(frame)
		if err != nil {
			c.Close(err)
			return
		}
		if keepalive {
			c.recv.KeepaliveSent(c.port, n)
		}
	}
}
