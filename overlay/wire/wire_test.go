package wire

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/pineconed/pineconed/internal/testhelp"
)

// Keys of docs/protocol.md §12: ed25519 seeds of one repeated byte.
var (
	privA, privB, privC = testhelp.SeedKey(1), testhelp.SeedKey(2), testhelp.SeedKey(3)
	keyA, keyB, keyC    = PublicKeyOf(privA), PublicKeyOf(privB), PublicKeyOf(privC)
)

const (
	hexA   = "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c"
	hexB   = "8139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b394"
	hexC   = "ed4928c628d1c2c6eae90338905995612959273a5c63f93636c14614ac8737d1"
	sigE3  = "ff89960dbc4fe6149da0411d5e62ea0decbdec6f5bce6e85e15fec10c3458c6580c6d5bc7e5060e7895cc538ec6a4164ceb56f105bc89730dd4173f5051c010b"
	sigE4  = "06d17394993ce0dfef90118896f539fd45e11cbfa6acdf1950a9eea05170b6f5c678fe3003c22854ed813ee21a66a714c6bade6dc01282c6fc7cc8c17563c908"
	sigE6  = "498781d03d4a8ac351005e6031f0be6db2988c5786287d6019d364b9843b0054ba30b371e0f10c6f3cd68e640e293b6c854d21ac14f59a5f04dd35c81c170706"
	seqE6  = 1700000000000
	helloA = "01 000000 0000003b" + hexA + "3888c1c321b4c4ff5d1ff4cd028726811e36b907215f6054b068af993ad5342f550fc7650169dbbeb6dbe16ccb71a450e114b6656e5219798c918604c6452001"
)

// golden pairs each §12 example with the message our encoder must turn into
// exactly those bytes.
func golden(t testing.TB) []struct {
	name string
	msg  Message
	want []byte
} {
	e3 := (&TreeAnnouncement{Root: Root{Key: keyA, Seq: 1}}).Signed(privA, 1)
	e4 := e3.Signed(privB, 1)
	e6payload := NewSignedRoot(privB, seqE6, Root{Key: keyA, Seq: 1})
	return []struct {
		name string
		msg  Message
		want []byte
	}{
		{"E1 keepalive", &Keepalive{}, testhelp.Unhex(t, "70696e65 | 00 | 00 | 00 | 00 | 000a")},
		{"E3 announcement A", e3, testhelp.Unhex(t, "70696e65 00 01 00 00 008e 0082"+hexA+"01 01"+hexA+sigE3)},
		{"E4 announcement A via B", e4, testhelp.Unhex(t, "70696e650001000000ef00e3"+hexA+"0101"+hexA+sigE3+"01"+hexB+sigE4)},
		{"E5 traffic by SNEK", &Traffic{HopLimit: 10, Destination: keyB, Source: keyA, Watermark: Watermark{Key: keyB}, Payload: []byte("hello")},
			testhelp.Unhex(t, "70696e65 00 03 00 0a 0076 0005 0000 0000"+hexB+hexA+hexB+"00 68656c6c6f")},
		{"E5 variant source coords", &Traffic{HopLimit: 10, SourceCoords: Coordinates{1}, Destination: keyB, Source: keyA, Watermark: Watermark{Key: keyB}, Payload: []byte("hello")},
			testhelp.Unhex(t, "70696e650003000a0077 0005 0000 000101"+hexB+hexA+hexB+"00 68656c6c6f")},
		{"E6 bootstrap", &Bootstrap{Originator: keyB, Watermark: Watermark{Key: keyA}, Payload: e6payload.Append(nil)},
			testhelp.Unhex(t, "70696e65 00 02 00 00 00b4 0067"+hexB+hexA+"00 b1bcff95d000"+hexA+"01"+sigE6)},
		{"E7 traffic by tree", &Traffic{HopLimit: 10, DestinationCoords: Coordinates{1}, Destination: keyB, Source: keyA, Payload: []byte("hello")},
			testhelp.Unhex(t, "70696e650003000a0056000500010100008139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b3948a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c68656c6c6f")},
		{"E7 variant long coords", &Traffic{HopLimit: 10, DestinationCoords: Coordinates{1, 200}, SourceCoords: Coordinates{3}, Destination: keyA, Source: keyB, Payload: []byte("hello")},
			testhelp.Unhex(t, "70696e650003000a0059 0005 0003018148 000103"+hexA+hexB+"68656c6c6f")},
		{"E8 wakeup", &WakeupBroadcast{HopLimit: 5, Source: keyB, Payload: e6payload.Append(nil)},
			testhelp.Unhex(t, "70696e65 00 04 00 05 0093 0067"+hexB+"b1bcff95d000"+hexA+"01"+sigE6)},
		{"live pong C to B by tree", &Traffic{HopLimit: 10, DestinationCoords: Coordinates{1, 2}, Destination: keyB, Source: keyC, Payload: []byte("pong")},
			testhelp.Unhex(t, "70696e650003000a0056 0004 0002 0102 0000"+hexB+hexC+"706f6e67")},
	}
}

func TestGoldenFramesEncode(t *testing.T) {
	for _, g := range golden(t) {
		got, err := g.msg.Append(nil)
		if err != nil {
			t.Fatalf("%s: encode: %v", g.name, err)
		}
		if !bytes.Equal(got, g.want) {
			t.Errorf("%s:\n got %x\nwant %x", g.name, got, g.want)
		}
	}
}

func TestGoldenFramesDecode(t *testing.T) {
	for _, g := range golden(t) {
		m, err := Decode(g.want)
		if err != nil {
			t.Fatalf("%s: decode: %v", g.name, err)
		}
		if m.Type() != g.msg.Type() {
			t.Fatalf("%s: decoded type %s, want %s", g.name, m.Type(), g.msg.Type())
		}
		again, err := m.Append(nil)
		if err != nil || !bytes.Equal(again, g.want) {
			t.Errorf("%s: decode→encode changed the frame (err %v):\n got %x\nwant %x", g.name, err, again, g.want)
		}
	}
}

func TestGoldenSignaturesVerify(t *testing.T) {
	for _, g := range golden(t) {
		switch m := g.msg.(type) {
		case *TreeAnnouncement:
			if err := m.VerifySignatures(); err != nil {
				t.Errorf("%s: %v", g.name, err)
			}
		case *Bootstrap:
			p, err := ParseSignedRoot(m.Payload)
			if err != nil || !p.Verify(m.Originator) {
				t.Errorf("%s: payload %+v err %v does not verify", g.name, p, err)
			}
		}
	}
	// The E4 hops decode to coordinates [1 1]: B's position under root A.
	e4 := golden(t)[2].msg.(*TreeAnnouncement)
	if got := e4.Coordinates(); !got.Equal(Coordinates{1, 1}) {
		t.Errorf("E4 coordinates %v, want [1 1]", got)
	}
	if got := e4.SenderCoordinates(); !got.Equal(Coordinates{1}) {
		t.Errorf("E4 sender coordinates %v, want [1]", got)
	}
}

func TestAnnouncementTamperingIsDetected(t *testing.T) {
	a := (&TreeAnnouncement{Root: Root{Key: keyA, Seq: 1}}).Signed(privA, 1).Signed(privB, 7)
	cases := map[string]func(*TreeAnnouncement){
		"root seq":       func(a *TreeAnnouncement) { a.Root.Seq++ },
		"earlier port":   func(a *TreeAnnouncement) { a.Hops[0].Port = 2 },
		"signature byte": func(a *TreeAnnouncement) { a.Hops[1].Signature[5] ^= 1 },
		"hop key":        func(a *TreeAnnouncement) { a.Hops[1].Key = keyC },
	}
	for name, tamper := range cases {
		c := &TreeAnnouncement{Root: a.Root, Hops: append([]AnnouncementHop(nil), a.Hops...)}
		tamper(c)
		if err := c.VerifySignatures(); !errors.Is(err, ErrBadSignature) {
			t.Errorf("%s: tampered announcement verified (err %v)", name, err)
		}
	}
	// The last hop's own port is not covered by any signature (§4.2).
	c := &TreeAnnouncement{Root: a.Root, Hops: append([]AnnouncementHop(nil), a.Hops...)}
	c.Hops[1].Port = 9
	if err := c.VerifySignatures(); err != nil {
		t.Errorf("changing the signer's own port must not break its signature: %v", err)
	}
}

func TestHello(t *testing.T) {
	h := NewHello(privA)
	if want := testhelp.Unhex(t, helloA); !bytes.Equal(h[:], want) {
		t.Fatalf("hello A:\n got %x\nwant %x", h, want)
	}
	k, err := ParseHello(h[:])
	if err != nil || k != keyA {
		t.Fatalf("ParseHello: %v %v", k, err)
	}
	bad := func(mod func(b []byte)) error {
		b := NewHello(privB)
		mod(b[:])
		_, err := ParseHello(b[:])
		return err
	}
	if err := bad(func(b []byte) { b[0] = 2 }); !errors.Is(err, ErrHelloVersion) {
		t.Errorf("version 2: %v", err)
	}
	if err := bad(func(b []byte) { b[7] = 0x3f }); !errors.Is(err, ErrHelloCapabilities) {
		t.Errorf("caps superset 0x3f: %v", err)
	}
	if err := bad(func(b []byte) { b[2] = 1 }); !errors.Is(err, ErrHelloSignature) {
		t.Errorf("unused byte changed, signature must fail: %v", err)
	}
	if err := bad(func(b []byte) { b[100] ^= 0x80 }); !errors.Is(err, ErrHelloSignature) {
		t.Errorf("signature bit flipped: %v", err)
	}
	if _, err := ParseHello(h[:50]); err == nil {
		t.Error("short hello accepted")
	}
}

func TestBeacon(t *testing.T) {
	b := AppendBeacon(nil, keyA, 65432)
	if want := testhelp.Unhex(t, hexA+"ff98"); !bytes.Equal(b, want) {
		t.Fatalf("E9 beacon: got %x want %x", b, want)
	}
	k, port, err := ParseBeacon(b)
	if err != nil || k != keyA || port != 65432 {
		t.Fatalf("ParseBeacon: %v %d %v", k, port, err)
	}
	for _, bad := range [][]byte{nil, b[:33], append(b[:34:34], 0), AppendBeacon(nil, keyA, 0)} {
		if _, _, err := ParseBeacon(bad); err == nil {
			t.Errorf("beacon %x accepted", bad)
		}
	}
}

func TestVarintTable(t *testing.T) {
	table := []struct {
		v   uint64
		hex string
	}{
		{0, "00"}, {1, "01"}, {127, "7f"}, {128, "8100"}, {200, "8148"}, {253, "817d"},
		{1234, "8952"}, {16383, "ff7f"}, {16384, "818000"}, {1700000000000, "b1bcff95d000"},
		{^uint64(0), "81ffffffffffffffff7f"},
	}
	for _, c := range table {
		got := AppendVarint(nil, c.v)
		if hex.EncodeToString(got) != c.hex {
			t.Errorf("AppendVarint(%d) = %x, want %s", c.v, got, c.hex)
		}
		v, n, err := ReadVarint(append(got, 0xaa))
		if err != nil || v != c.v || n != len(got) {
			t.Errorf("ReadVarint(%s) = %d, %d, %v", c.hex, v, n, err)
		}
	}
	bad := map[string]error{
		"":                       ErrVarintTruncated,
		"81":                     ErrVarintTruncated,
		"8000":                   ErrVarintOverlong,
		"8081":                   ErrVarintOverlong,
		"82ffffffffffffffff7f":   ErrVarintOverflow,
		"8180808080808080808000": ErrVarintOverflow,
	}
	for h, want := range bad {
		if _, _, err := ReadVarint(testhelp.Unhex(t, h)); !errors.Is(err, want) {
			t.Errorf("ReadVarint(%q) err %v, want %v", h, err, want)
		}
	}
}

func TestCoordinates(t *testing.T) {
	c := Coordinates{1, 2, 3, 4000}
	b, err := AppendCoordinates(nil, c)
	if err != nil || hex.EncodeToString(b) != "00050102039f20" {
		t.Fatalf("encode %v: %x %v", c, b, err)
	}
	got, n, err := ReadCoordinates(b)
	if err != nil || n != len(b) || !got.Equal(c) {
		t.Fatalf("decode: %v %d %v", got, n, err)
	}
	if d := (Coordinates{1, 2}).DistanceTo(Coordinates{1, 3, 4}); d != 3 {
		t.Errorf("distance [1 2]→[1 3 4] = %d, want 3", d)
	}
	if d := (Coordinates{}).DistanceTo(Coordinates{1, 2}); d != 2 {
		t.Errorf("distance root→[1 2] = %d, want 2", d)
	}
	for _, h := range []string{"0005010203", "00028000", "0001", "00", "000181"} {
		if _, _, err := ReadCoordinates(testhelp.Unhex(t, h)); err == nil {
			t.Errorf("coordinates %s accepted", h)
		}
	}
}

func TestWatermarkOrder(t *testing.T) {
	lo, hi := Watermark{Key: keyB}, Watermark{Key: keyA}
	if !hi.WorseThan(lo) || lo.WorseThan(hi) {
		t.Error("higher key must be worse")
	}
	old, fresh := Watermark{Key: keyA, Seq: 5}, Watermark{Key: keyA, Seq: 9}
	if !old.WorseThan(fresh) || fresh.WorseThan(old) {
		t.Error("older sequence of the same key must be worse")
	}
	if (Watermark{Key: keyA}).WorseThan(fresh) {
		t.Error("sequence 0 must never be worse")
	}
	if StartWatermark.WorseThan(StartWatermark) {
		t.Error("a watermark is not worse than itself")
	}
}

// TestCrashingInputsAreErrors feeds the frames that crash a stock node
// (docs/protocol.md §3.8) and other malformations; each must be an error.
func TestCrashingInputsAreErrors(t *testing.T) {
	e5 := golden(t)[3].want
	cases := map[string][]byte{
		"declared length 5":          testhelp.Unhex(t, "70696e65 00 00 00 00 0005"),
		"announcement of 10 bytes":   testhelp.Unhex(t, "70696e65 00 01 00 00 000a"),
		"announcement of 11 bytes":   testhelp.Unhex(t, "70696e65 00 01 00 00 000b 00"),
		"traffic of 10 bytes":        testhelp.Unhex(t, "70696e65 00 03 00 0a 000a"),
		"traffic of 11 bytes":        testhelp.Unhex(t, "70696e65 00 03 00 0a 000b 00"),
		"bootstrap of 11 bytes":      testhelp.Unhex(t, "70696e65 00 02 00 00 000b 00"),
		"wakeup of 10 bytes":         testhelp.Unhex(t, "70696e65 00 04 00 05 000a"),
		"bad magic":                  testhelp.Unhex(t, "70696e66 00 00 00 00 000a"),
		"length beyond buffer":       testhelp.Unhex(t, "70696e65 00 00 00 00 0014"),
		"keepalive trailing garbage": testhelp.Unhex(t, "70696e65 00 00 00 00 000b 00"),
		"traffic trailing garbage":   fixLen(append(append([]byte(nil), e5...), 0xee)),
		"traffic short payload":      fixLen(e5[:len(e5)-1]),
		"overlong varint in coords":  testhelp.Unhex(t, "70696e650003000a0057 0005 00028001 0000"+hexB+hexA+"68656c6c6f"),
		"announcement short tail":    fixLen(testhelp.Unhex(t, "70696e65 00 01 00 00 0000 0023"+hexA+"01 01 02")),
	}
	for name, b := range cases {
		if m, err := Decode(b); err == nil {
			t.Errorf("%s: decoded to %#v", name, m)
		}
	}
	if m, err := Decode(testhelp.Unhex(t, "70696e65 00 09 00 00 000c 0102")); err != nil || m.Type() != 9 {
		t.Errorf("unknown type must decode as Unknown: %v %v", m, err)
	}
}

// fixLen rewrites the header length (and, for types 1–4, the payload length
// is left alone) so that only the inner inconsistency remains.
func fixLen(b []byte) []byte {
	b[8], b[9] = byte(len(b)>>8), byte(len(b))
	return b
}

func TestEncodersRefuseOversizeFrames(t *testing.T) {
	f := &Traffic{HopLimit: 10, Destination: keyB, Source: keyA, Watermark: StartWatermark}
	f.Payload = make([]byte, MaxFrameSize-f.Overhead())
	b, err := f.Append(nil)
	if err != nil || len(b) != MaxFrameSize {
		t.Fatalf("largest traffic frame: %d bytes, %v", len(b), err)
	}
	f.Payload = make([]byte, MaxFrameSize-f.Overhead()+1)
	if b, err := f.Append([]byte("keep")); err == nil || string(b) != "keep" {
		t.Errorf("oversize traffic frame encoded (%d bytes, %v) or dst changed", len(b), err)
	}
	a := &TreeAnnouncement{Root: Root{Key: keyA, Seq: 1}}
	for i := 0; i < 700; i++ {
		a.Hops = append(a.Hops, AnnouncementHop{Port: 1, Key: keyA})
	}
	if _, err := a.Append(nil); err == nil {
		t.Error("announcement over 65535 bytes encoded")
	}
}

// TestTrafficAppendHeader checks that the header followed by the payload is
// exactly the frame Append builds, for tree and SNEK routed frames.
func TestTrafficAppendHeader(t *testing.T) {
	for _, coords := range []Coordinates{nil, {1, 2, 300}} {
		f := Traffic{HopLimit: 7, DestinationCoords: coords, SourceCoords: Coordinates{4}, Watermark: Watermark{Seq: 1 << 20}, Payload: []byte("payload bytes")}
		f.Destination[0], f.Source[0] = 1, 2
		whole, err := f.Append(nil)
		if err != nil {
			t.Fatal(err)
		}
		hdr, err := f.AppendHeader(nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(hdr) != f.Overhead() || !bytes.Equal(append(hdr, f.Payload...), whole) {
			t.Errorf("coords %v: header %x + payload differs from frame %x", coords, hdr, whole)
		}
	}
}

// TestBootstrapOriginator reads the originator from the golden bootstrap
// (E6: B's, with A's key as the watermark right after it) and refuses
// frames of other types and cut-off ones.
func TestBootstrapOriginator(t *testing.T) {
	var e6, e8 []byte
	for _, g := range golden(t) {
		switch g.name {
		case "E6 bootstrap":
			e6 = g.want
		case "E8 wakeup":
			e8 = g.want
		}
	}
	if k, ok := BootstrapOriginator(e6); !ok || k != keyB {
		t.Errorf("E6: %v %v, want B's key", k, ok)
	}
	for name, b := range map[string][]byte{
		"wakeup":        e8,
		"header only":   e6[:HeaderSize],
		"key cut short": e6[:HeaderSize+payloadLenSize+KeySize-1],
		"bad magic":     append([]byte("pinf"), e6[4:]...),
		"nothing":       nil,
	} {
		if k, ok := BootstrapOriginator(b); ok {
			t.Errorf("%s: originator %v accepted", name, k)
		}
	}
	if k, ok := BootstrapOriginator(e6[:HeaderSize+payloadLenSize+KeySize]); !ok || k != keyB {
		t.Errorf("frame cut after the key: %v %v", k, ok)
	}
}
