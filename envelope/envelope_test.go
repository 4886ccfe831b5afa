package envelope

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/pineconed/pineconed/overlay/wire"
)

func TestForeignPayloadsAreNotEnvelopes(t *testing.T) {
	foreign := [][]byte{
		[]byte("pineping"),
		[]byte("pinepong"),
		{0xc3, 0x00, 0x00, 0x00, 0x01},       // QUIC v1 long header (Initial)
		{0x40, 0x01, 0x02, 0x03, 0x04, 0x05}, // QUIC short header
		{},
		{0x00, 'P', 'C'},
		{0x00, 'P', 'C', 'X', 1, 1},
	}
	for _, b := range foreign {
		if IsEnvelope(b) && len(b) >= HeaderSize {
			t.Errorf("%x taken for an envelope", b)
		}
		if _, _, err := Parse(b); !errors.Is(err, ErrNotEnvelope) {
			t.Errorf("%x: err %v, want ErrNotEnvelope", b, err)
		}
	}
}

func TestHeaderVersionAndType(t *testing.T) {
	b := AppendHeader(nil, TypeTransport)
	if !bytes.Equal(b, []byte{0, 'P', 'C', 'D', 1, 5}) {
		t.Fatalf("header %x", b)
	}
	b[4] = 2
	if _, err := ParseHeader(b); !errors.Is(err, ErrVersion) {
		t.Fatalf("version 2: %v", err)
	}
	b[4] = 1
	for _, ty := range []byte{0, 8, 255} {
		b[5] = ty
		if _, err := ParseHeader(b); !errors.Is(err, ErrType) {
			t.Fatalf("type %d: %v", ty, err)
		}
	}
}

func TestRoundTrips(t *testing.T) {
	var key wire.PublicKey
	for i := range key {
		key[i] = byte(i + 1)
	}
	mustAppend := func(b []byte, err error) []byte {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	node := mustAppend(LookupRequest{Kind: LookupNode, Nonce: 0x0102030405060708, Prefix: key[:15]}.Append(nil))
	if len(node) != HeaderSize+1+8+15 {
		t.Fatalf("node request len %d", len(node))
	}
	r, err := ParseLookupRequest(node)
	if err != nil || r.Kind != LookupNode || r.Nonce != 0x0102030405060708 || !bytes.Equal(r.Prefix, key[:15]) {
		t.Fatalf("node request %+v %v", r, err)
	}
	sub := mustAppend(LookupRequest{Kind: LookupSubnet, Nonce: 9, Prefix: key[:7]}.Append(nil))
	// The kind bytes are the protocol's; other nodes parse them.
	if node[HeaderSize] != 1 || sub[HeaderSize] != 2 {
		t.Fatalf("kind bytes node %d, subnet %d, want 1 and 2", node[HeaderSize], sub[HeaderSize])
	}
	if r, err := ParseLookupRequest(sub); err != nil || r.Kind != LookupSubnet || !bytes.Equal(r.Prefix, key[:7]) {
		t.Fatalf("subnet request %+v %v", r, err)
	}
	if _, err := (LookupRequest{Kind: LookupSubnet, Prefix: key[:15]}).Append(nil); !errors.Is(err, ErrLength) {
		t.Fatalf("subnet with 15-byte prefix: %v", err)
	}
	// A node-kind request with a subnet-length prefix must not parse.
	bad := append([]byte(nil), sub...)
	bad[HeaderSize] = byte(LookupNode)
	if _, err := ParseLookupRequest(bad); !errors.Is(err, ErrLength) {
		t.Fatalf("kind/length mismatch: %v", err)
	}
	bad[HeaderSize] = 7
	if _, err := ParseLookupRequest(bad); !errors.Is(err, ErrKind) {
		t.Fatalf("unknown kind: %v", err)
	}

	resp := mustAppend(LookupResponse{Kind: LookupSubnet, Nonce: 77, Key: key}.Append(nil))
	if lr, err := ParseLookupResponse(resp); err != nil || lr.Key != key || lr.Nonce != 77 || lr.Kind != LookupSubnet {
		t.Fatalf("response %+v %v", lr, err)
	}
	if _, err := ParseLookupResponse(resp[:len(resp)-1]); !errors.Is(err, ErrLength) {
		t.Fatalf("short response: %v", err)
	}

	noise := bytes.Repeat([]byte{0xaa}, NoiseInitSize)
	hi := mustAppend(HandshakeInit{Sender: 0xdeadbeef, Noise: noise}.Append(nil))
	if m, err := ParseHandshakeInit(hi); err != nil || m.Sender != 0xdeadbeef || !bytes.Equal(m.Noise, noise) {
		t.Fatalf("init %+v %v", m, err)
	}
	if _, err := ParseHandshakeInit(append(hi, 0)); !errors.Is(err, ErrLength) {
		t.Fatalf("long init: %v", err)
	}
	rn := bytes.Repeat([]byte{0xbb}, NoiseResponseSize)
	hr := mustAppend(HandshakeResponse{Sender: 1, Receiver: 2, Noise: rn}.Append(nil))
	if m, err := ParseHandshakeResponse(hr); err != nil || m.Sender != 1 || m.Receiver != 2 || !bytes.Equal(m.Noise, rn) {
		t.Fatalf("resp %+v %v", m, err)
	}
	if _, err := ParseHandshakeInit(hr); !errors.Is(err, ErrWrongType) {
		t.Fatalf("response parsed as init: %v", err)
	}

	tr := AppendTransportHeader(nil, 5, 1<<40)
	if len(tr) != TransportHeaderSize {
		t.Fatalf("transport header %d", len(tr))
	}
	if _, err := ParseTransport(tr); !errors.Is(err, ErrLength) {
		t.Fatalf("transport without tag: %v", err)
	}
	tr = append(tr, make([]byte, TagSize)...)
	if m, err := ParseTransport(tr); err != nil || m.Receiver != 5 || m.Counter != 1<<40 || len(m.Ciphertext) != TagSize {
		t.Fatalf("transport %+v %v", m, err)
	}
}

func TestParseInner(t *testing.T) {
	if in, err := ParseInner(nil); err != nil || !in.Keepalive {
		t.Fatalf("keepalive: %+v %v", in, err)
	}
	if in, err := ParseInner([]byte{InnerIPv6, 0x60, 0}); err != nil || in.Type != InnerIPv6 || len(in.Data) != 2 {
		t.Fatalf("ipv6: %+v %v", in, err)
	}
	if _, err := ParseInner([]byte{InnerIPv6}); !errors.Is(err, ErrInner) {
		t.Fatalf("empty ipv6: %v", err)
	}
	echo := binary.BigEndian.AppendUint64([]byte{InnerEchoReply}, 42)
	echo = append(echo, "hi"...)
	if in, err := ParseInner(echo); err != nil || in.EchoID != 42 || string(in.Data) != "hi" {
		t.Fatalf("echo: %+v %v", in, err)
	}
	if _, err := ParseInner(echo[:5]); !errors.Is(err, ErrInner) {
		t.Fatalf("short echo: %v", err)
	}
	if _, err := ParseInner([]byte{9}); !errors.Is(err, ErrInner) {
		t.Fatalf("unknown inner: %v", err)
	}
}

// reencode rebuilds a payload from its parsed form, for the fuzz round trip.
func reencode(t *testing.T, ty Type, m any) []byte {
	var b []byte
	var err error
	switch ty {
	case TypeLookupRequest:
		b, err = m.(LookupRequest).Append(nil)
	case TypeLookupResponse:
		b, err = m.(LookupResponse).Append(nil)
	case TypeHandshakeInit:
		b, err = m.(HandshakeInit).Append(nil)
	case TypeHandshakeResponse:
		b, err = m.(HandshakeResponse).Append(nil)
	case TypeTransport:
		tr := m.(Transport)
		b = append(AppendTransportHeader(nil, tr.Receiver, tr.Counter), tr.Ciphertext...)
	default:
		t.Fatalf("parsed unknown type %d", ty)
	}
	if err != nil {
		t.Fatalf("re-encoding a parsed %s: %v", ty, err)
	}
	return b
}

func FuzzParse(f *testing.F) {
	var key wire.PublicKey
	add := func(b []byte, err error) {
		if err == nil {
			f.Add(b)
		}
	}
	add(LookupRequest{Kind: LookupNode, Prefix: key[:15]}.Append(nil))
	add(LookupRequest{Kind: LookupSubnet, Prefix: key[:7]}.Append(nil))
	add(LookupResponse{Kind: LookupNode, Key: key}.Append(nil))
	add(HandshakeInit{Noise: make([]byte, NoiseInitSize)}.Append(nil))
	add(HandshakeResponse{Noise: make([]byte, NoiseResponseSize)}.Append(nil))
	f.Add(append(AppendTransportHeader(nil, 1, 2), make([]byte, 20)...))
	f.Add([]byte("pineping"))
	f.Add([]byte{0xc3, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		ty, m, err := Parse(b)
		if err != nil {
			return
		}
		if !bytes.Equal(reencode(t, ty, m), b) {
			t.Fatalf("round trip of %s changed the bytes", ty)
		}
	})
}

func FuzzParseInner(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{InnerIPv6, 0x60})
	f.Add(binary.BigEndian.AppendUint64([]byte{InnerEchoRequest}, 1))
	f.Fuzz(func(t *testing.T, b []byte) {
		in, err := ParseInner(b)
		if err != nil {
			return
		}
		switch {
		case in.Keepalive:
			if len(b) != 0 {
				t.Fatal("keepalive from non-empty plaintext")
			}
		case in.Type == InnerIPv6:
			if !bytes.Equal(in.Data, b[1:]) {
				t.Fatal("ipv6 data mismatch")
			}
		default:
			re := binary.BigEndian.AppendUint64([]byte{in.Type}, in.EchoID)
			if !bytes.Equal(append(re, in.Data...), b) {
				t.Fatal("echo round trip mismatch")
			}
		}
	})
}

// TestCookieMessages: the load-defence messages round-trip, the mac of a
// HandshakeInitCookie covers exactly the plain initiation's bytes, and
// wrong lengths are refused.
func TestCookieMessages(t *testing.T) {
	noise := bytes.Repeat([]byte{7}, NoiseInitSize)
	in := HandshakeInit{Sender: 0x01020304, Noise: noise}
	plain, err := in.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	var covered []byte
	withMAC, err := in.AppendWithMAC(nil, func(msg []byte) (m [CookieSize]byte) {
		covered = append([]byte(nil), msg...)
		m[0] = 0xAA
		return m
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(withMAC) != HandshakeInitCookieSize || withMAC[5] != byte(TypeHandshakeInitCookie) {
		t.Fatalf("initiation with mac: %x", withMAC)
	}
	// The covered bytes are the plain initiation but for the type byte.
	if !bytes.Equal(covered[6:], plain[6:]) || !bytes.Equal(covered, withMAC[:len(plain)]) {
		t.Fatalf("mac covers %x", covered)
	}
	got, cov, mac, err := ParseHandshakeInitCookie(withMAC)
	if err != nil || got.Sender != in.Sender || !bytes.Equal(got.Noise, noise) || !bytes.Equal(cov, covered) || mac[0] != 0xAA || len(mac) != CookieSize {
		t.Fatalf("parsed %+v %x %x %v", got, cov, mac, err)
	}
	if _, _, _, err := ParseHandshakeInitCookie(withMAC[:len(withMAC)-1]); !errors.Is(err, ErrLength) {
		t.Fatalf("short: %v", err)
	}
	if _, _, _, err := ParseHandshakeInitCookie(plain); !errors.Is(err, ErrWrongType) {
		t.Fatalf("plain initiation as cookie initiation: %v", err)
	}

	r := CookieReply{Receiver: 9, Sealed: bytes.Repeat([]byte{3}, SealedCookieSize)}
	r.Nonce[0] = 5
	b, err := r.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	typ, m, err := Parse(b)
	if err != nil || typ != TypeCookieReply {
		t.Fatalf("parse: %v %v", typ, err)
	}
	back := m.(CookieReply)
	if back.Receiver != 9 || back.Nonce != r.Nonce || !bytes.Equal(back.Sealed, r.Sealed) {
		t.Fatalf("round trip %+v", back)
	}
	if _, err := ParseCookieReply(append(b, 0)); !errors.Is(err, ErrLength) {
		t.Fatalf("long: %v", err)
	}
	if _, err := (CookieReply{Sealed: []byte{1}}).Append(nil); !errors.Is(err, ErrLength) {
		t.Fatalf("bad sealed length: %v", err)
	}
}
