package tun

import (
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/pineconed/pineconed/internal/bufpool"
	wgtun "golang.zx2c4.com/wireguard/tun"
)

// writeOffset is the headroom left in front of every packet handed to the
// device's Write. With offloads on, wireguard's tun writes a virtio-net header
// (10 bytes) in front of each packet, in place; 16 keeps the packet start
// aligned.
const writeOffset = 16

// WriteHeadroom is how far into its buffer a packet given to
// Writer.WriteBuffer must start: the device writes its own header in front
// of the packet, in place.
const WriteHeadroom = writeOffset

// maxIPv6Packet is the largest non-jumbo IPv6 packet.
const maxIPv6Packet = IPv6HeaderLen + 0xffff

// maxConsecutiveReadErrors bounds how long Run keeps going while every read
// fails: a few malformed GSO packets are survivable, an fd that only returns
// errors is not.
const maxConsecutiveReadErrors = 100

// readRoom is the byte the Reader leaves free in front of every packet in
// its buffer, for the session layer's inner type byte (Framed).
const readRoom = 1

// Reader reads batches of packets from the TUN into buffers it reuses. One
// Reader per device; its methods are not safe for concurrent use.
type Reader struct {
	dev     wgtun.Device
	c       *counters
	filter  Filter
	bufLen  int
	bufs    [][]byte
	sizes   []int
	pkts    [][]byte
	framed  [][]byte // pkts with the readRoom byte in front
	headers []Header
	errRun  int
}

func newReader(dev wgtun.Device, c *counters, mtu int, f Filter) *Reader {
	n := max(dev.BatchSize(), 1)
	bufLen := max(mtu, MinMTU)
	r := &Reader{
		dev:     dev,
		c:       c,
		filter:  f,
		bufLen:  bufLen,
		bufs:    make([][]byte, n),
		sizes:   make([]int, n),
		pkts:    make([][]byte, 0, n),
		framed:  make([][]byte, 0, n),
		headers: make([]Header, 0, n),
	}
	// One allocation for all buffers keeps them close together.
	sizes := readBufSizes(n, bufLen)
	total := 0
	for _, s := range sizes {
		total += readRoom + s
	}
	backing := make([]byte, total)
	for i, s := range sizes {
		s += readRoom
		r.bufs[i], backing = backing[:s:s], backing[s:]
	}
	return r
}

// gsoHeaderRoom is the most header (IPv6, extension headers, TCP) a
// segment split from a GSO super-packet is given room for, beyond its
// share of the payload: the extension headers a local socket can set
// (hop-by-hop, two destination options, routing) are 2 KiB each at most.
const gsoHeaderRoom = 4*2048 + IPv6HeaderLen + 60

// maxGSORead is the most a single read of an offloading device yields:
// wireguard's tun reads a super-packet into a 64 KiB buffer and splits it.
const maxGSORead = 0xffff

// readBufSizes sizes the n buffers one Read fills. Buffer 0 takes a
// whole packet of bufLen. Buffer i > 0 is used only when a GSO
// super-packet splits into more than i segments, so its segments' payload
// is less than maxGSORead/i: the sizes fall off harmonically, and a batch
// of 128 at a 65 250-byte MTU holds 1.5 MiB instead of 8 MiB. That 8 MiB
// was most of an idle daemon's live heap, and the GC lets garbage grow to
// as much again as the live heap before it collects, so it doubled the
// RSS an idle node could reach (issue 12).
func readBufSizes(n, bufLen int) []int {
	sizes := make([]int, n)
	for i := range sizes {
		sizes[i] = bufLen
		if i > 0 {
			sizes[i] = min(bufLen, gsoHeaderRoom+(maxGSORead+i-1)/i)
		}
	}
	return sizes
}

// Read blocks until the device yields at least one packet and returns the
// packets the Filter accepted with their parsed headers (same index). With
// offloads on, one read may be a TCP or UDP super-packet that comes back split
// into MTU-sized packets. The returned slices are valid until the next Read.
// A batch may come back empty when everything in it was dropped. Read returns
// os.ErrClosed once the device is closed; other errors are counted and
// returned too, and the caller may go on reading (Run does).
func (r *Reader) Read() ([][]byte, []Header, error) {
	r.pkts, r.framed, r.headers = r.pkts[:0], r.framed[:0], r.headers[:0]
	n, err := r.dev.Read(r.bufs, r.sizes, readRoom)
	if err != nil && !errors.Is(err, wgtun.ErrTooManySegments) {
		if errors.Is(err, os.ErrClosed) {
			return nil, nil, os.ErrClosed
		}
		r.c.drop(DropReadError, 1)
		return nil, nil, fmt.Errorf("tun read: %w", err)
	}
	if err != nil {
		// The packets before the overflow are good; the rest of the
		// super-packet is gone. Not fatal.
		r.c.drop(DropTooManySegments, 1)
	}
	// The counters move once per batch, not per packet: they are shared
	// atomics that the admin and metrics readers touch too.
	var packets, bytes uint64
	for i := 0; i < n && i < len(r.bufs); i++ {
		size := r.sizes[i]
		packets++
		bytes += uint64(max(size, 0))
		if size < 0 || size > r.bufLen {
			// The kernel offered more than a buffer holds (the MTU was
			// raised behind our back); the copy was cut short.
			r.c.drop(DropOversize, 1)
			continue
		}
		framed := r.bufs[i][:readRoom+size]
		pkt := framed[readRoom:]
		h, reason := r.filter.Classify(pkt)
		if reason != Accept {
			r.c.drop(reason, 1)
			continue
		}
		r.pkts = append(r.pkts, pkt)
		r.framed = append(r.framed, framed)
		r.headers = append(r.headers, h)
	}
	r.c.readBatches.Add(1)
	r.c.readPackets.Add(packets)
	r.c.readBytes.Add(bytes)
	return r.pkts, r.headers, nil
}

// Framed is packet i of the last Read (or of the batch Run is handing
// over) with one free byte in front of it: the session layer writes its
// inner type byte there and seals the packet where it lies
// (session.Manager.SendFramed). Valid as long as the packet is.
func (r *Reader) Framed(i int) []byte { return r.framed[i] }

// Run reads until the device is closed, calling fn with each non-empty batch
// of accepted packets (valid only during the call). It returns nil when the
// device was closed, or an error after many reads in a row failed.
func (r *Reader) Run(fn func(pkts [][]byte, hdrs []Header)) error {
	for {
		pkts, hdrs, err := r.Read()
		switch {
		case errors.Is(err, os.ErrClosed):
			return nil
		case err != nil:
			r.errRun++
			if r.errRun >= maxConsecutiveReadErrors {
				return fmt.Errorf("%d reads in a row failed, last: %w", r.errRun, err)
			}
			continue
		}
		r.errRun = 0
		if len(pkts) > 0 {
			fn(pkts, hdrs)
		}
	}
}

// WriterConfig sizes a Writer.
type WriterConfig struct {
	// QueueLen bounds the packets waiting to be written; more are dropped
	// and counted as queue_full. Default 1024.
	QueueLen int
	// MaxBatch bounds the packets in one write call. Default: the device's
	// BatchSize when offloads are on, else 64 (still one wake-up per batch).
	MaxBatch int
}

// DefaultWriterQueueLen is the queue bound used when WriterConfig.QueueLen
// is zero.
const DefaultWriterQueueLen = 1024

// largePacket is the size from which Writer.Write copies a packet straight
// into a buffer the device can write (headroom and, with offloads, room to
// GRO-merge), instead of a small buffer copied again at flush time: for
// large packets the second copy costs more than the bigger buffer.
const largePacket = 4096

// Writer takes packets from any goroutine through a bounded queue and writes
// them to the TUN in batches, one Write call per batch. With offloads on, a
// batch is where GRO happens: consecutive segments of one TCP (or UDP) flow are
// merged into one super-packet, so the kernel's stack handles one skb instead
// of dozens.
//
// Queued packets are held in three kinds of buffers: small packets in small
// buffers (pool) that flush copies into the batch's write buffers, large
// ones (largePacket and up) in write-ready buffers (bigPool) that hold the
// packet at writeOffset and go to the device as they are, and the
// internal/bufpool buffers of WriteBuffer, which go to the device as they
// are when GRO has room in them and are copied like small ones otherwise.
type Writer struct {
	dev     wgtun.Device
	c       *counters
	queue   chan queued
	pool    sync.Pool
	bigPool sync.Pool
	bigCap  int
	stop    chan struct{}
	once    sync.Once
	wg      sync.WaitGroup
	gro     bool

	mu  sync.Mutex
	err error // why the loop stopped on its own, if it did

	// Owned by the loop goroutine.
	backing [][]byte
	bufs    [][]byte
	batch   []queued
}

// queued is one packet waiting in the Writer's queue: in a buffer of the
// writer's pools (bp, the packet at 0 in pool's, at writeOffset in
// bigPool's), or with bp nil in an internal/bufpool buffer buf, at off.
type queued struct {
	bp     *[]byte
	buf    []byte
	off, n int
}

func newWriter(dev wgtun.Device, c *counters, cfg WriterConfig) *Writer {
	if cfg.QueueLen <= 0 {
		cfg.QueueLen = DefaultWriterQueueLen
	}
	gro := dev.BatchSize() > 1
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = 64
		if gro {
			cfg.MaxBatch = dev.BatchSize()
		}
	}
	w := &Writer{
		dev:     dev,
		c:       c,
		queue:   make(chan queued, cfg.QueueLen),
		stop:    make(chan struct{}),
		gro:     gro,
		backing: make([][]byte, cfg.MaxBatch),
		bufs:    make([][]byte, 0, cfg.MaxBatch),
		batch:   make([]queued, 0, cfg.MaxBatch),
	}
	w.pool.New = func() any {
		b := make([]byte, 0, 2048)
		return &b
	}
	// Room for the largest packet, which is also what GRO needs: it
	// appends the payloads of later packets to the first packet of a flow,
	// in place, only if the buffer has room.
	w.bigCap = writeOffset + maxIPv6Packet
	w.bigPool.New = func() any {
		b := make([]byte, 0, w.bigCap)
		return &b
	}
	w.wg.Add(1)
	go w.loop()
	return w
}

// Write queues a copy of pkt for the TUN and reports whether it was queued.
// pkt must be one whole IPv6 packet; anything else is dropped here so that it
// cannot make the kernel reject a whole batch. The caller keeps pkt.
func (w *Writer) Write(pkt []byte) bool {
	if _, err := ParseIPv6(pkt); err != nil {
		w.c.drop(reasonForParseError(err), 1)
		return false
	}
	select {
	case <-w.stop:
		w.c.drop(DropClosed, 1)
		return false
	default:
	}
	q := queued{n: len(pkt)}
	if len(pkt) >= largePacket && writeOffset+len(pkt) <= w.bigCap {
		q.bp = w.bigPool.Get().(*[]byte)
		*q.bp = append((*q.bp)[:writeOffset], pkt...)
		q.off = writeOffset
	} else {
		q.bp = w.pool.Get().(*[]byte)
		*q.bp = append((*q.bp)[:0], pkt...)
	}
	return w.enqueue(q)
}

// WriteBuffer queues pkt for the TUN without copying it, and reports
// whether it was queued. pkt must lie in buf, an internal/bufpool buffer
// given from its start, at least WriteHeadroom bytes in (the packet path
// hands over the buffer a link read the packet's frame into, decrypted in
// place). The Writer owns buf from the call on, queued or not, and gives it
// to bufpool.Put once written or dropped. A pkt outside buf or too close to
// its start is copied as Write does.
func (w *Writer) WriteBuffer(buf, pkt []byte) bool {
	off := cap(buf) - cap(pkt)
	if len(pkt) == 0 || off < writeOffset || off+len(pkt) > len(buf) || &buf[off] != &pkt[0] {
		ok := w.Write(pkt)
		bufpool.Put(buf)
		return ok
	}
	if _, err := ParseIPv6(pkt); err != nil {
		bufpool.Put(buf)
		w.c.drop(reasonForParseError(err), 1)
		return false
	}
	select {
	case <-w.stop:
		bufpool.Put(buf)
		w.c.drop(DropClosed, 1)
		return false
	default:
	}
	return w.enqueue(queued{buf: buf, off: off, n: len(pkt)})
}

// enqueue queues q, or drops it when the queue is full.
func (w *Writer) enqueue(q queued) bool {
	select {
	case w.queue <- q:
		return true
	default:
		w.release(q)
		w.c.drop(DropQueueFull, 1)
		return false
	}
}

// groRoom is the room from a packet's start that makes its buffer good
// enough for GRO, which appends the payloads of later segments of a flow
// to the first one's buffer, in place, as far as the buffer has room: 60
// KiB is nearly all of the 64 KiB a super-packet reaches, and every large
// internal/bufpool buffer has it beyond a frame's headers (their headroom
// shrinks with the frame headers written in them, so few have a full
// maxIPv6Packet).
const groRoom = 60 << 10

// ready reports whether a queued packet goes to the device in its own
// buffer, with writeOffset bytes in front of it: a bigPool buffer, or a
// bufpool buffer when GRO is off or has groRoom in it (a large one).
func (w *Writer) ready(q queued) bool {
	if q.bp != nil {
		return cap(*q.bp) == w.bigCap
	}
	return !w.gro || cap(q.buf)-q.off >= groRoom
}

// packet is the queued packet's bytes.
func (q queued) packet() []byte {
	if q.bp != nil {
		return (*q.bp)[q.off : q.off+q.n]
	}
	return q.buf[q.off : q.off+q.n]
}

// release gives a queued buffer back to its pool.
func (w *Writer) release(q queued) {
	switch {
	case q.bp == nil:
		bufpool.Put(q.buf)
	case cap(*q.bp) == w.bigCap:
		w.bigPool.Put(q.bp)
	default:
		w.pool.Put(q.bp)
	}
}

// Close stops the writer; packets still queued are dropped as closed. It is
// safe to call more than once and returns the error that stopped the writer
// on its own, if any. A Write racing with Close may report true for a packet
// that is then never written nor counted; after Close returns, Write always
// reports false.
func (w *Writer) Close() error {
	w.once.Do(func() { close(w.stop) })
	w.wg.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

func (w *Writer) loop() {
	defer w.wg.Done()
	defer w.drainClosed()
	for {
		select {
		case <-w.stop:
			return
		case q := <-w.queue:
			w.batch = append(w.batch[:0], q)
		}
	fill:
		for len(w.batch) < cap(w.batch) {
			select {
			case q := <-w.queue:
				w.batch = append(w.batch, q)
			default:
				break fill
			}
		}
		if err := w.flush(); err != nil {
			w.mu.Lock()
			w.err = err
			w.mu.Unlock()
			w.once.Do(func() { close(w.stop) })
			return
		}
	}
}

// flush writes w.batch in one call. It returns an error only when the device
// is gone.
func (w *Writer) flush() error {
	w.bufs = w.bufs[:0]
	var bytes uint64
	for i, q := range w.batch {
		n := q.n
		bytes += uint64(n)
		if w.ready(q) {
			if q.bp != nil {
				w.bufs = append(w.bufs, *q.bp)
			} else {
				w.bufs = append(w.bufs, q.buf[q.off-writeOffset:q.off+n])
			}
			continue
		}
		need := writeOffset + n
		if w.gro {
			need = w.bigCap
		}
		if cap(w.backing[i]) < need {
			w.backing[i] = make([]byte, need)
		}
		b := w.backing[i][:writeOffset+n]
		copy(b[writeOffset:], q.packet())
		w.bufs = append(w.bufs, b)
	}
	count := len(w.batch)
	_, err := w.dev.Write(w.bufs, writeOffset)
	// The device is done with every buffer, including the ready ones.
	for _, q := range w.batch {
		w.release(q)
	}
	w.batch = w.batch[:0]
	w.c.writeBatches.Add(1)
	switch {
	case err == nil:
		w.c.writtenPackets.Add(uint64(count))
		w.c.writtenBytes.Add(bytes)
		return nil
	case errors.Is(err, os.ErrClosed):
		w.c.drop(DropClosed, count)
		return fmt.Errorf("tun write: %w", err)
	default:
		w.c.drop(DropWriteError, count)
		return nil
	}
}

func (w *Writer) drainClosed() {
	for {
		select {
		case q := <-w.queue:
			w.release(q)
			w.c.drop(DropClosed, 1)
		default:
			return
		}
	}
}
