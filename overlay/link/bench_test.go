package link

import (
	"bufio"
	"io"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pineconed/pineconed/internal/bufpool"
	"github.com/pineconed/pineconed/internal/testhelp"
	"github.com/pineconed/pineconed/internal/testhelp/testframe"
	"github.com/pineconed/pineconed/overlay/router"
	"github.com/pineconed/pineconed/overlay/wire"
)

// countingSwitch counts the bytes a link hands it, and gives each frame
// back to the pool as the node does once done with it.
type countingSwitch struct{ bytes atomic.Int64 }

func (s *countingSwitch) Receive(_ router.Port, f []byte) error {
	s.bytes.Add(int64(len(f)))
	bufpool.Put(f)
	return nil
}

func (s *countingSwitch) KeepaliveSent(router.Port, int) {}

func (s *countingSwitch) Detach(router.Port, error) {}

// rawTCPRate measures the baseline: the same number of bytes pushed
// through a loopback TCP connection in 64 KiB writes and reads.
func rawTCPRate(b *testing.B, total int64) float64 {
	client, server := tcpConns(b)
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 64<<10)
		_, _ = io.CopyBuffer(io.Discard, io.LimitReader(server, total), buf)
	}()
	chunk := make([]byte, 64<<10)
	start := time.Now()
	for sent := int64(0); sent < total; {
		n := min(int64(len(chunk)), total-sent)
		if _, err := client.Write(chunk[:n]); err != nil {
			b.Fatal(err)
		}
		sent += n
	}
	<-done
	return float64(total) / time.Since(start).Seconds()
}

// BenchmarkLinkThroughput sends 1400-byte traffic frames (a typical IPv6
// packet in a Traffic frame) from one link to another over loopback TCP
// and reports the rate and its ratio to raw TCP with large writes measured
// in the same run, plus frames per write (the batching factor).
// BenchmarkLinkThroughput sends one reused 1 400-byte frame.
func BenchmarkLinkThroughput(b *testing.B) {
	frame := testframe.Of(wire.TypeTraffic, 1400, 0x42)
	benchThroughput(b, len(frame), func() []byte { return frame })
}

// BenchmarkLinkThroughputPooled sends 1 400-byte frames built the way the
// node builds them, each in its own internal/bufpool buffer with the
// header in the headroom, so that it measures what the link does with
// pool buffers (moving small frames to small buffers, giving them back).
func BenchmarkLinkThroughputPooled(b *testing.B) {
	benchPooled(b, 1400)
}

// BenchmarkLinkThroughputLarge is BenchmarkLinkThroughputPooled with
// 65 000-byte frames, those of the default 65 250-byte TUN MTU: one frame
// per write, and reads that fill most of the reader's buffer.
func BenchmarkLinkThroughputLarge(b *testing.B) {
	benchPooled(b, 65000)
}

// benchPooled runs benchThroughput with frames of size bytes, each built
// in its own pool buffer with its header in the headroom.
func benchPooled(b *testing.B, size int) {
	tmpl := testframe.Of(wire.TypeTraffic, size, 0x42)
	benchThroughput(b, size, func() []byte {
		buf := bufpool.Get()
		h := bufpool.Headroom(buf)
		frame := buf[h-80 : h-80+size]
		copy(frame, tmpl)
		return frame
	})
}

func benchThroughput(b *testing.B, size int, next func() []byte) {
	x, y := tcpConns(b)
	sw := &countingSwitch{}
	a, r := New(x, keyB, Config{}), New(y, keyA, Config{})
	a.Start(1, &countingSwitch{})
	r.Start(1, sw)
	defer func() { a.Close(nil); r.Close(nil); <-a.Done(); <-r.Done() }()

	b.SetBytes(int64(size))
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		frame := next()
		for !a.Send(frame, false) {
			frame = next()
			runtime.Gosched() // queue full: the writer is behind
		}
	}
	want := int64(b.N) * int64(size)
	// A fine poll interval: the wait is inside the timed span.
	testhelp.WaitEvery(b, "every byte at the far switch", time.Minute, 100*time.Microsecond, func() bool {
		return sw.bytes.Load() >= want
	})
	el := time.Since(start)
	b.StopTimer()
	rate := float64(want) / el.Seconds()
	base := rawTCPRate(b, want)
	st := a.Stats()
	b.ReportMetric(rate/1e6, "MB/s")
	b.ReportMetric(rate/base, "ratio_to_raw_tcp")
	// The frames written are the b.N sent (every byte arrived) and any
	// keepalive of an idle moment, too few to matter here.
	b.ReportMetric(float64(b.N)/float64(max(st.Writes, 1)), "frames/write")
}

// BenchmarkSmallBehindBulk measures what the fair queue is for: a small
// frame (40-byte payload) to the bulk flow's own destination, queued behind
// 2.4 MB of bulk frames, over loopback TCP read as fast as the reader can.
// The baseline, measured in the same iteration, is a frame just over
// sparseFrame to the same destination, which shares the bulk frames'
// bucket and so waits first in, first out behind the whole backlog as
// every frame did before the fair queue. It reports the time from Start
// until that frame is read and the bytes read before it, for both, and
// the ratio of the times.
func BenchmarkSmallBehindBulk(b *testing.B) {
	bulkKey := keyB
	var fairNs, fifoNs, fairAhead, fifoAhead float64
	for range b.N {
		ns, ahead := smallBehindBulk(b, bulkKey, 40)
		fairNs, fairAhead = fairNs+ns, fairAhead+ahead
		ns, ahead = smallBehindBulk(b, bulkKey, sparseFrame)
		fifoNs, fifoAhead = fifoNs+ns, fifoAhead+ahead
	}
	n := float64(b.N)
	b.ReportMetric(fairNs/n/1e3, "small_us")
	b.ReportMetric(fifoNs/n/1e3, "fifo_us")
	b.ReportMetric(fairNs/fifoNs, "delay_ratio")
	b.ReportMetric(fairAhead/n, "small_bytes_ahead")
	b.ReportMetric(fifoAhead/n, "fifo_bytes_ahead")
}

// smallBehindBulk queues 40 bulk frames to dst and then one frame with a
// payload of payload bytes to dst on a fresh link, starts it, and returns
// how long that frame took to be read and how many bytes came before it.
func smallBehindBulk(b *testing.B, dst wire.PublicKey, payload int) (ns, ahead float64) {
	x, raw := tcpConns(b)
	c := New(x, keyB, Config{KeepaliveInterval: -1})
	for i := range 40 {
		c.Send(trafficTo(b, dst, 60000, byte(i)), false)
	}
	small := trafficTo(b, dst, payload, 0xaa)
	c.Send(small, false)
	defer func() { c.Close(nil); <-c.Done() }()
	br := bufio.NewReaderSize(raw, 64<<10)
	hdr := make([]byte, wire.HeaderSize)
	start := time.Now()
	c.Start(1, &countingSwitch{})
	read := 0
	for {
		if _, err := io.ReadFull(br, hdr); err != nil {
			b.Fatal(err)
		}
		h, err := wire.ParseHeader(hdr)
		if err != nil {
			b.Fatal(err)
		}
		if h.Length == len(small) {
			return float64(time.Since(start).Nanoseconds()), float64(read)
		}
		if _, err := br.Discard(h.Length - wire.HeaderSize); err != nil {
			b.Fatal(err)
		}
		read += h.Length
	}
}
