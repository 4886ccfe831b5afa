package tun

import "testing"

// TestReadBufSizesFitEveryGSOSplit: for every segment size a GSO
// super-packet of at most maxGSORead bytes can have, with headers up to
// gsoHeaderRoom, every segment the split writes fits the buffer it lands
// in (wireguard's gsoSplit writes segment i into buffer i and would panic
// or truncate on a short one), and the buffers of a 128-batch at the
// largest MTU hold far less than 128 full-size ones.
func TestReadBufSizesFitEveryGSOSplit(t *testing.T) {
	const n, bufLen = 128, 65250
	sizes := readBufSizes(n, bufLen)
	for _, hdr := range []int{IPv6HeaderLen + 8, IPv6HeaderLen + 20, IPv6HeaderLen + 60, gsoHeaderRoom} {
		for gso := 1; gso <= maxGSORead; gso++ {
			// gsoSplit: segments of gso payload bytes after hdr, the last
			// one shorter, until the read's end.
			for i, at := 0, hdr; at < maxGSORead && i < n; i, at = i+1, at+gso {
				seg := hdr + min(gso, maxGSORead-at)
				if seg > bufLen {
					break // the packet is larger than the MTU: not from this device
				}
				if seg > sizes[i] {
					t.Fatalf("header %d, GSO size %d: segment %d of %d bytes, buffer %d bytes", hdr, gso, i, seg, sizes[i])
				}
			}
		}
	}
	total := 0
	for _, s := range sizes {
		total += s
	}
	if total*4 > n*bufLen {
		t.Errorf("%d buffers hold %d bytes, a quarter of %d would do", n, total, n*bufLen)
	}
	t.Logf("%d read buffers at MTU %d: %d KiB (were %d KiB)", n, bufLen, total>>10, n*bufLen>>10)
	if s := readBufSizes(1, 1280); len(s) != 1 || s[0] != 1280 {
		t.Errorf("one buffer at MTU 1280: %v", s)
	}
}
