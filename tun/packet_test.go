package tun

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv6"
)

var (
	ourAddr  = netip.MustParseAddr("fd12:3456:789a:bcde:f012:3456:789a:bc01")
	peerAddr = netip.MustParseAddr("fd99:8877:6655:4433:2211:0:0:1")
)

// mkPacket builds an IPv6 packet with the given next header and payload.
func mkPacket(src, dst netip.Addr, next uint8, payload []byte) []byte {
	p := make([]byte, IPv6HeaderLen+len(payload))
	p[0] = 0x60
	binary.BigEndian.PutUint16(p[4:], uint16(len(payload)))
	p[6] = next
	p[7] = 64
	s, d := src.As16(), dst.As16()
	copy(p[8:], s[:])
	copy(p[24:], d[:])
	copy(p[40:], payload)
	return p
}

// mkEchoRequest builds a valid ICMPv6 echo request with data bytes of payload.
func mkEchoRequest(src, dst netip.Addr, id, seq uint16, data int) []byte {
	m := make([]byte, 8+data)
	m[0] = ICMPv6EchoRequest
	binary.BigEndian.PutUint16(m[4:], id)
	binary.BigEndian.PutUint16(m[6:], seq)
	for i := range data {
		m[8+i] = byte(i)
	}
	binary.BigEndian.PutUint16(m[2:], naiveChecksum(src, dst, protoICMPv6, m))
	return mkPacket(src, dst, protoICMPv6, m)
}

// naiveChecksum is an independent implementation of the RFC 8200 §8.1
// transport checksum: it materialises the pseudo-header and folds after every
// 16-bit word.
func naiveChecksum(src, dst netip.Addr, proto uint8, msg []byte) uint16 {
	var ph []byte
	s, d := src.As16(), dst.As16()
	ph = append(ph, s[:]...)
	ph = append(ph, d[:]...)
	ph = binary.BigEndian.AppendUint32(ph, uint32(len(msg)))
	ph = append(ph, 0, 0, 0, proto)
	all := append(ph, msg...)
	if len(all)%2 == 1 {
		all = append(all, 0)
	}
	var sum uint32
	for i := 0; i < len(all); i += 2 {
		sum += uint32(all[i])<<8 | uint32(all[i+1])
		if sum > 0xffff {
			sum = sum&0xffff + 1
		}
	}
	return ^uint16(sum)
}

func TestParseIPv6(t *testing.T) {
	good := mkPacket(ourAddr, peerAddr, protoUDP, make([]byte, 12))
	h, err := ParseIPv6(good)
	if err != nil {
		t.Fatal(err)
	}
	if h.Src != ourAddr || h.Dst != peerAddr || h.NextHeader != protoUDP || h.PayloadLen != 12 || h.HopLimit != 64 {
		t.Fatalf("header = %+v", h)
	}

	lying := bytes.Clone(good)
	binary.BigEndian.PutUint16(lying[4:], 13)
	short := bytes.Clone(good)
	binary.BigEndian.PutUint16(short[4:], 11)
	jumbo := bytes.Clone(good)
	binary.BigEndian.PutUint16(jumbo[4:], 0)
	v4 := bytes.Clone(good)
	v4[0] = 0x45
	cases := []struct {
		name string
		pkt  []byte
		want error
	}{
		{"empty", nil, ErrTruncated},
		{"one byte v6", []byte{0x60}, ErrTruncated},
		{"39 bytes", good[:39], ErrTruncated},
		{"header only", good[:40], ErrPayloadLength},
		{"ipv4", v4, ErrNotIPv6},
		{"ipv4 truncated", []byte{0x45, 0}, ErrNotIPv6},
		{"payload length too big", lying, ErrPayloadLength},
		{"payload length too small", short, ErrPayloadLength},
		{"jumbogram", jumbo, ErrPayloadLength},
		{"trailing byte", append(bytes.Clone(good), 0), ErrPayloadLength},
		{"cut short", good[:len(good)-1], ErrPayloadLength},
	}
	for _, c := range cases {
		if _, err := ParseIPv6(c.pkt); err != c.want {
			t.Errorf("%s: err = %v, want %v", c.name, err, c.want)
		}
	}
}

func TestClassify(t *testing.T) {
	subnet := netip.MustParsePrefix("fc12:3456:789a:bcd::/64")
	f := Filter{Destinations: OverlayPrefixes}
	strict := Filter{
		Destinations: OverlayPrefixes,
		Sources:      []netip.Prefix{netip.PrefixFrom(ourAddr, 128), subnet},
	}
	pl := make([]byte, 8)
	v4 := bytes.Clone(mkPacket(ourAddr, peerAddr, protoUDP, pl))
	v4[0] = 0x45
	cases := []struct {
		name string
		f    *Filter
		pkt  []byte
		want Reason
	}{
		{"to node", &f, mkPacket(ourAddr, peerAddr, protoUDP, pl), Accept},
		{"to subnet", &f, mkPacket(ourAddr, netip.MustParseAddr("fc99::5"), protoUDP, pl), Accept},
		{"multicast", &f, mkPacket(ourAddr, netip.MustParseAddr("ff02::16"), protoUDP, pl), DropNotOverlay},
		{"link-local", &f, mkPacket(ourAddr, netip.MustParseAddr("fe80::1"), protoUDP, pl), DropNotOverlay},
		{"global", &f, mkPacket(ourAddr, netip.MustParseAddr("2001:db8::1"), protoUDP, pl), DropNotOverlay},
		{"ipv4", &f, v4, DropNotIPv6},
		{"truncated", &f, make([]byte, 0), DropTruncated},
		{"lying length", &f, mkPacket(ourAddr, peerAddr, protoUDP, pl)[:45], DropBadLength},
		{"strict from us", &strict, mkPacket(ourAddr, peerAddr, protoUDP, pl), Accept},
		{"strict from our lan", &strict, mkPacket(netip.MustParseAddr("fc12:3456:789a:bcd::77"), peerAddr, protoUDP, pl), Accept},
		{"strict from elsewhere", &strict, mkPacket(netip.MustParseAddr("fd00::1"), peerAddr, protoUDP, pl), DropBadSource},
		{"zero filter", &Filter{}, mkPacket(ourAddr, peerAddr, protoUDP, pl), DropNotOverlay},
	}
	for _, c := range cases {
		h, got := c.f.Classify(c.pkt)
		if got != c.want {
			t.Errorf("%s: reason %v, want %v", c.name, got, c.want)
		}
		if got == Accept && h.Dst != netip.AddrFrom16([16]byte(c.pkt[24:40])) {
			t.Errorf("%s: header dst %v", c.name, h.Dst)
		}
	}
	for r := Accept; r < numReasons; r++ {
		if r.String() == "" || r.String() == "unknown" {
			t.Errorf("reason %d has no name", r)
		}
	}
	if numReasons.String() != "unknown" {
		t.Errorf("out-of-range reason named %q", numReasons.String())
	}
}

// checkICMPError verifies msg as an ICMPv6 error built by us: IPv6 header,
// addresses, size limit, checksum by two independent computations, and the
// quoted packet.
func checkICMPError(t *testing.T, msg, offending []byte, typ, code uint8, param uint32) {
	t.Helper()
	h, err := ParseIPv6(msg)
	if err != nil {
		t.Fatalf("built message does not parse: %v", err)
	}
	if h.Src != ourAddr || h.Dst != netip.AddrFrom16([16]byte(offending[8:24])) || h.NextHeader != protoICMPv6 {
		t.Fatalf("header %+v", h)
	}
	if len(msg) > 1280 {
		t.Fatalf("message is %d bytes, more than 1280", len(msg))
	}
	wantQuote := offending
	if len(wantQuote) > 1280-48 {
		wantQuote = wantQuote[:1280-48]
	}
	if len(msg) != 48+len(wantQuote) {
		t.Fatalf("message is %d bytes, want %d", len(msg), 48+len(wantQuote))
	}
	m := msg[40:]
	if m[0] != typ || m[1] != code || binary.BigEndian.Uint32(m[4:8]) != param {
		t.Fatalf("type/code/param %d/%d/%d", m[0], m[1], binary.BigEndian.Uint32(m[4:8]))
	}
	if !bytes.Equal(m[8:], wantQuote) {
		t.Fatal("quoted packet differs from the offending packet")
	}
	// Checksum over the whole message including the field must verify.
	if c := naiveChecksum(h.Src, h.Dst, protoICMPv6, m); c != 0 {
		t.Fatalf("naive checksum over message = %#04x, want 0", c)
	}
	// x/net/icmp builds the same message from scratch, checksum included.
	var body icmp.MessageBody
	var mt icmp.Type
	switch typ {
	case ICMPv6DestUnreachable:
		mt, body = ipv6.ICMPTypeDestinationUnreachable, &icmp.DstUnreach{Data: wantQuote}
	case ICMPv6PacketTooBig:
		mt, body = ipv6.ICMPTypePacketTooBig, &icmp.PacketTooBig{MTU: int(param), Data: wantQuote}
	}
	ref, err := (&icmp.Message{Type: mt, Code: int(code), Body: body}).Marshal(
		icmp.IPv6PseudoHeader(net.IP(h.Src.AsSlice()), net.IP(h.Dst.AsSlice())))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ref, m) {
		t.Fatalf("x/net/icmp builds\n%x\nwe built\n%x", ref[:min(len(ref), 64)], m[:min(len(m), 64)])
	}
}

func TestDestinationUnreachable(t *testing.T) {
	for _, size := range []int{0, 1, 7, 100, 1232 - 40, 1232 - 40 + 1, 1500, 9000} {
		off := mkPacket(peerAddr, netip.MustParseAddr("fd00::dead"), protoUDP, bytes.Repeat([]byte{0xa5}, size+1))
		for _, code := range []uint8{CodeNoRoute, CodeAddressUnreachable} {
			prefix := []byte("keep")
			msg, err := DestinationUnreachable(bytes.Clone(prefix), ourAddr, code, off)
			if err != nil {
				t.Fatalf("size %d: %v", size, err)
			}
			if !bytes.HasPrefix(msg, prefix) {
				t.Fatal("dst prefix overwritten")
			}
			checkICMPError(t, msg[len(prefix):], off, ICMPv6DestUnreachable, code, 0)
		}
	}
}

func TestPacketTooBig(t *testing.T) {
	off := mkPacket(peerAddr, netip.MustParseAddr("fc00::1"), protoTCP, make([]byte, 1400))
	for _, mtu := range []int{1280, 1400, 65000} {
		msg, err := PacketTooBig(make([]byte, 0, 2000), ourAddr, mtu, off)
		if err != nil {
			t.Fatal(err)
		}
		checkICMPError(t, msg, off, ICMPv6PacketTooBig, 0, uint32(mtu))
	}
	if _, err := PacketTooBig(nil, ourAddr, 1279, off); err == nil {
		t.Fatal("MTU 1279 accepted")
	}
	if _, err := PacketTooBig(nil, netip.MustParseAddr("10.0.0.1"), 1280, off); err == nil {
		t.Fatal("IPv4 source accepted")
	}
}

func TestNoErrorAboutErrors(t *testing.T) {
	dst := netip.MustParseAddr("fd00::dead")
	duMsg, err := DestinationUnreachable(nil, peerAddr, 0, mkPacket(dst, peerAddr, protoUDP, make([]byte, 8)))
	if err != nil {
		t.Fatal(err)
	}
	// duMsg goes from peerAddr to fd00::dead; pretend it is being sent on.
	echo := mkEchoRequest(peerAddr, dst, 1, 1, 16)

	// ICMPv6 error behind hop-by-hop and destination options headers.
	icmpErr := duMsg[40:]
	ext := append([]byte{protoDstOpts, 0, 1, 4, 0, 0, 0, 0}, // hop-by-hop, PadN
		append([]byte{protoICMPv6, 0, 1, 4, 0, 0, 0, 0}, icmpErr...)...) // dest opts
	behindExt := mkPacket(peerAddr, dst, protoHopByHop, ext)

	// Non-first fragment whose payload happens to look like an ICMP error.
	frag := mkPacket(peerAddr, dst, protoFragment, append([]byte{protoICMPv6, 0, 0, 8, 0, 0, 0, 1}, 1, 0, 0, 0))
	// A chain cut inside a header.
	cut := mkPacket(peerAddr, dst, protoHopByHop, []byte{protoICMPv6, 5})
	// ICMPv6 with an empty body: type unknown, stay quiet.
	emptyICMP := mkPacket(peerAddr, dst, protoNone, nil)
	emptyICMP = append(emptyICMP, 0) // make payload 1 byte: No Next Header
	binary.BigEndian.PutUint16(emptyICMP[4:], 1)

	cases := []struct {
		name  string
		pkt   []byte
		allow bool
	}{
		{"plain udp", mkPacket(peerAddr, dst, protoUDP, make([]byte, 8)), true},
		{"echo request", echo, true},
		{"icmp error", duMsg, false},
		{"icmp error behind ext headers", behindExt, false},
		{"non-first fragment", frag, true},
		{"truncated ext chain", cut, true},
		{"no next header", emptyICMP, true},
		{"multicast dst", mkPacket(peerAddr, netip.MustParseAddr("ff0e::1"), protoUDP, make([]byte, 8)), false},
		{"unspecified src", mkPacket(netip.IPv6Unspecified(), dst, protoUDP, make([]byte, 8)), false},
		{"multicast src", mkPacket(netip.MustParseAddr("ff02::1"), dst, protoUDP, make([]byte, 8)), false},
		{"malformed", []byte{0x60, 0, 0}, false},
	}
	for _, c := range cases {
		err := MayReplyWithError(c.pkt)
		if (err == nil) != c.allow {
			t.Errorf("%s: MayReplyWithError = %v, want allowed=%v", c.name, err, c.allow)
		}
		msg, err := DestinationUnreachable(nil, ourAddr, CodeNoRoute, c.pkt)
		if (err == nil) != c.allow {
			t.Errorf("%s: DestinationUnreachable err = %v, want allowed=%v", c.name, err, c.allow)
		}
		if err == nil {
			checkICMPError(t, msg, c.pkt, ICMPv6DestUnreachable, CodeNoRoute, 0)
		} else if msg != nil {
			t.Errorf("%s: refused but returned %d bytes", c.name, len(msg))
		}
	}
	if err := MayReplyWithError(duMsg); !errors.Is(err, ErrNoICMPError) {
		t.Fatalf("error about an error: %v", err)
	}
	// An ICMPv6 message cut right after its header chain must not be taken
	// as an informational one.
	cutICMP := mkPacket(peerAddr, dst, protoHopByHop, []byte{protoICMPv6, 0, 1, 4, 0, 0, 0, 0})
	if err := MayReplyWithError(cutICMP); !errors.Is(err, ErrNoICMPError) {
		t.Fatalf("ICMPv6 with no type byte: %v", err)
	}
}

func TestEchoReply(t *testing.T) {
	req := mkEchoRequest(ourAddr, peerAddr, 0x1234, 7, 56)
	rep, err := EchoReply(nil, req)
	if err != nil {
		t.Fatal(err)
	}
	h, err := ParseIPv6(rep)
	if err != nil {
		t.Fatal(err)
	}
	if h.Src != peerAddr || h.Dst != ourAddr || rep[40] != ICMPv6EchoReply || rep[41] != 0 {
		t.Fatalf("reply header %+v type %d", h, rep[40])
	}
	if !bytes.Equal(rep[44:], req[44:]) {
		t.Fatal("identifier, sequence or data changed")
	}
	if c := naiveChecksum(h.Src, h.Dst, protoICMPv6, rep[40:]); c != 0 {
		t.Fatalf("checksum does not verify: %#x", c)
	}
	if _, err := EchoReply(nil, rep); err == nil {
		t.Fatal("answered an echo reply")
	}
	if _, err := EchoReply(nil, mkPacket(ourAddr, peerAddr, protoICMPv6, []byte{128, 0, 0})); err == nil {
		t.Fatal("answered a truncated echo request")
	}
}

func TestICMPv6ChecksumOddLength(t *testing.T) {
	for n := range 40 {
		msg := make([]byte, n)
		for i := range msg {
			msg[i] = byte(0xf1 * (i + 3))
		}
		if a, b := ICMPv6Checksum(ourAddr, peerAddr, msg), naiveChecksum(ourAddr, peerAddr, protoICMPv6, msg); a != b {
			t.Fatalf("len %d: %#x vs naive %#x", n, a, b)
		}
	}
}

func TestRateLimiter(t *testing.T) {
	t0 := time.Unix(1000, 0)
	r := NewRateLimiter(10, 3) // a token every 100 ms
	for i := range 3 {
		if !r.Allow(t0) {
			t.Fatalf("burst call %d refused", i)
		}
	}
	if r.Allow(t0) {
		t.Fatal("fourth call in burst allowed")
	}
	if r.Allow(t0.Add(99 * time.Millisecond)) {
		t.Fatal("token earned too early")
	}
	if !r.Allow(t0.Add(100 * time.Millisecond)) {
		t.Fatal("token not earned after 100ms")
	}
	// Steady 150 ms callers get a token each time, remainders carried.
	now := t0.Add(100 * time.Millisecond)
	allowed := 0
	for range 20 {
		now = now.Add(150 * time.Millisecond)
		if r.Allow(now) {
			allowed++
		}
	}
	if allowed != 20 {
		t.Fatalf("steady caller allowed %d of 20", allowed)
	}
	// A long pause refills only to the burst.
	now = now.Add(time.Hour)
	got := 0
	for range 10 {
		if r.Allow(now) {
			got++
		}
	}
	if got != 3 {
		t.Fatalf("after a pause allowed %d, want burst 3", got)
	}
	// Clock going backwards earns nothing and does not wedge the bucket.
	if r.Allow(now.Add(-time.Minute)) {
		t.Fatal("backwards clock earned a token")
	}
	if !r.Allow(now.Add(-time.Minute + 100*time.Millisecond)) {
		t.Fatal("bucket wedged after backwards clock")
	}
	if r.Suppressed() != 1+1+7+1 {
		t.Fatalf("suppressed = %d", r.Suppressed())
	}
	never := NewRateLimiter(0, 5)
	if never.Allow(t0) {
		t.Fatal("zero-rate limiter allowed")
	}
}

// FuzzClassify feeds arbitrary bytes to the parser, the classifier and the
// ICMPv6 builders: none may panic, and anything they build must be a valid,
// correctly checksummed IPv6 packet of at most 1280 bytes.
func FuzzClassify(f *testing.F) {
	f.Add(mkPacket(ourAddr, peerAddr, protoUDP, make([]byte, 8)))
	f.Add(mkEchoRequest(ourAddr, peerAddr, 1, 2, 3))
	f.Add(mkPacket(ourAddr, peerAddr, protoHopByHop, []byte{protoFragment, 0, 1, 4, 0, 0, 0, 0, protoICMPv6, 0, 0, 0, 0, 0, 0, 0, 1}))
	f.Add([]byte{0x60})
	f.Add([]byte{})
	filt := Filter{Destinations: OverlayPrefixes, Sources: []netip.Prefix{netip.MustParsePrefix("fd00::/8")}}
	f.Fuzz(func(t *testing.T, pkt []byte) {
		orig := bytes.Clone(pkt)
		h, reason := filt.Classify(pkt)
		if reason >= numReasons {
			t.Fatalf("reason %d out of range", reason)
		}
		_, perr := ParseIPv6(pkt)
		if (perr == nil) != (reason != DropNotIPv6 && reason != DropTruncated && reason != DropBadLength) {
			t.Fatalf("classify %v disagrees with parse %v", reason, perr)
		}
		if reason == Accept && !filt.Destinations[0].Contains(h.Dst) && !filt.Destinations[1].Contains(h.Dst) {
			t.Fatalf("accepted destination %v", h.Dst)
		}
		check := func(msg []byte, err error) {
			if err != nil {
				return
			}
			mh, perr := ParseIPv6(msg)
			if perr != nil || len(msg) > 1280 {
				t.Fatalf("built bad packet (%v, %d bytes)", perr, len(msg))
			}
			if c := naiveChecksum(mh.Src, mh.Dst, protoICMPv6, msg[40:]); c != 0 {
				t.Fatalf("built message checksum %#x", c)
			}
		}
		check(DestinationUnreachable(nil, ourAddr, CodeNoRoute, pkt))
		check(PacketTooBig(nil, ourAddr, 1400, pkt))
		check(EchoReply(nil, pkt))
		if !bytes.Equal(pkt, orig) {
			t.Fatal("input modified")
		}
	})
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }
