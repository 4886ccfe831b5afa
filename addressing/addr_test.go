package addressing

import (
	"bytes"
	"encoding/json"
	"errors"
	"go/build"
	"log/slog"
	"net/netip"
	"strings"
	"testing"

	"github.com/pineconed/pineconed/internal/testhelp"
	"github.com/pineconed/pineconed/overlay/wire"
)

func keyFromSeed(b byte) wire.PublicKey { return wire.PublicKeyOf(testhelp.SeedKey(b)) }

func keyOf(hexKey string) wire.PublicKey {
	k, err := wire.ParsePublicKey(hexKey)
	if err != nil {
		panic(err)
	}
	return k
}

func TestNodeAddrMatchesPineconeip(t *testing.T) {
	k := keyOf("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
	want := netip.MustParseAddr("fd01:2345:6789:abcd:ef01:2345:6789:abcd")
	if got := NodeAddr(k); got != want {
		t.Fatalf("NodeAddr = %s, want %s", got, want)
	}
	if got := NodeAddrPrefix(k).String(); got != "fd01:2345:6789:abcd:ef01:2345:6789:abcd/8" {
		t.Fatalf("NodeAddrPrefix = %s", got)
	}
	if got := Subnet(k).String(); got != "fc01:2345:6789:abcd::/64" {
		t.Fatalf("Subnet = %s", got)
	}
	if !NodeRange.Contains(NodeAddr(k)) || !SubnetRange.Contains(Subnet(k).Addr()) {
		t.Fatal("addresses outside their ranges")
	}
}

func TestPrefixOfAndLookupKey(t *testing.T) {
	k := keyFromSeed(7)
	p, ok := PrefixOf(NodeAddr(k))
	if !ok || p.Kind() != KindNode || p.Bits() != 120 || p != NodeKeyPrefix(k) {
		t.Fatalf("node prefix %v %v", p, ok)
	}
	lk := p.LookupKey()
	if string(lk[:15]) != string(k[:15]) || [17]byte(lk[15:]) != [17]byte{} {
		t.Fatalf("lookup key %x for %s", lk, k)
	}
	// Every key with the prefix sorts at or above the lookup key.
	if k.Less(lk) {
		t.Fatal("owner sorts below its lookup key")
	}
	if !p.Matches(k) {
		t.Fatal("prefix does not match its own key")
	}
	other := k
	other[14] ^= 1
	if p.Matches(other) {
		t.Fatal("prefix matches a key differing in byte 14")
	}
	other = k
	other[15] ^= 1 // beyond the prefix
	if !p.Matches(other) {
		t.Fatal("prefix should ignore byte 15")
	}

	inSubnet := Subnet(k).Addr().As16()
	inSubnet[15] = 0x42
	inSubnet[9] = 0x99
	sp, ok := PrefixOf(netip.AddrFrom16(inSubnet))
	if !ok || sp.Kind() != KindSubnet || sp.Bits() != 56 || sp != SubnetKeyPrefix(k) {
		t.Fatalf("subnet prefix %v %v", sp, ok)
	}
	if sp.String() != Subnet(k).String() {
		t.Fatalf("subnet prefix string %s", sp)
	}
	slk := sp.LookupKey()
	if string(slk[:7]) != string(k[:7]) || [25]byte(slk[7:]) != [25]byte{} {
		t.Fatalf("subnet lookup key %x", slk)
	}
	np, err := NewKeyPrefix(KindSubnet, k[:7])
	if err != nil || np != sp {
		t.Fatalf("NewKeyPrefix %v %v", np, err)
	}
	if _, err := NewKeyPrefix(KindSubnet, k[:15]); !errors.Is(err, ErrPrefix) {
		t.Fatalf("bad length: %v", err)
	}
	for _, s := range []string{"fe80::1", "2001:db8::1", "::ffff:10.0.0.1", "fb00::1"} {
		if _, ok := PrefixOf(netip.MustParseAddr(s)); ok || InOverlay(netip.MustParseAddr(s)) {
			t.Errorf("%s taken for an overlay address", s)
		}
	}
	if InOverlay(netip.MustParseAddr("10.0.0.1")) {
		t.Error("IPv4 taken for an overlay address")
	}
}

func packetFrom(src, dst netip.Addr) []byte {
	p := make([]byte, 48)
	p[0] = 0x60
	s, d := src.As16(), dst.As16()
	copy(p[8:24], s[:])
	copy(p[24:40], d[:])
	return p
}

func TestBelongsAndCheckSource(t *testing.T) {
	a, b := keyFromSeed(1), keyFromSeed(2)
	host := Subnet(a).Addr().As16()
	host[15] = 9
	inA := netip.AddrFrom16(host)
	cases := []struct {
		src  netip.Addr
		key  wire.PublicKey
		want bool
	}{
		{NodeAddr(a), a, true},
		{inA, a, true},
		{NodeAddr(b), a, false},
		{inA, b, false},
		{netip.MustParseAddr("fe80::1"), a, false},
	}
	for _, c := range cases {
		if got := Belongs(c.src, c.key); got != c.want {
			t.Errorf("Belongs(%s, %s) = %v", c.src, c.key, got)
		}
		err := CheckSource(packetFrom(c.src, NodeAddr(b)), c.key)
		if (err == nil) != c.want {
			t.Errorf("CheckSource(%s, %s) = %v", c.src, c.key, err)
		}
		if err != nil && !errors.Is(err, ErrSourceOwner) {
			t.Errorf("CheckSource error %v", err)
		}
	}
	// A forged node address that shares all but the last key byte of the
	// prefix must fail.
	forged := NodeAddr(a).As16()
	forged[15] ^= 1
	if CheckSource(packetFrom(netip.AddrFrom16(forged), NodeAddr(b)), a) == nil {
		t.Error("near-miss node address accepted")
	}
	if err := CheckSource([]byte{0x60, 0}, a); !errors.Is(err, ErrNotIPv6) {
		t.Errorf("short packet: %v", err)
	}
	v4 := packetFrom(NodeAddr(a), NodeAddr(b))
	v4[0] = 0x45
	if err := CheckSource(v4, a); !errors.Is(err, ErrNotIPv6) {
		t.Errorf("IPv4 packet: %v", err)
	}
	if d, ok := DestAddr(packetFrom(NodeAddr(a), NodeAddr(b))); !ok || d != NodeAddr(b) {
		t.Errorf("DestAddr %v %v", d, ok)
	}
}

func FuzzCheckSource(f *testing.F) {
	k := keyFromSeed(3)
	f.Add(packetFrom(NodeAddr(k), NodeAddr(k)), []byte(k[:]))
	f.Add([]byte{0x60}, []byte{})
	f.Fuzz(func(t *testing.T, pkt []byte, kb []byte) {
		var key wire.PublicKey
		copy(key[:], kb)
		err := CheckSource(pkt, key)
		src, ok := SourceAddr(pkt)
		if !ok {
			if !errors.Is(err, ErrNotIPv6) {
				t.Fatalf("non-IPv6 accepted: %v", err)
			}
			return
		}
		if (err == nil) != (src == NodeAddr(key) || Subnet(key).Contains(src)) {
			t.Fatalf("CheckSource disagrees with the address rules for %s", src)
		}
		if err == nil {
			p, ok := PrefixOf(src)
			if !ok || !p.Matches(key) {
				t.Fatalf("accepted source %s whose prefix does not match", src)
			}
		}
	})
}

// The kinds carry the prefix lengths the address layouts fix, and the zero
// Kind is invalid so that a prefix built from garbage is rejected.
func TestKindPrefixLen(t *testing.T) {
	if KindNode.PrefixLen() != NodePrefixBytes || KindSubnet.PrefixLen() != SubnetPrefixBytes {
		t.Fatalf("prefix lengths %d %d", KindNode.PrefixLen(), KindSubnet.PrefixLen())
	}
	if Kind(0).PrefixLen() != 0 || Kind(3).PrefixLen() != 0 {
		t.Fatal("an invalid kind has a prefix length")
	}
	if KindNode.String() != "node" || KindSubnet.String() != "subnet" || Kind(9).String() != "kind_9" {
		t.Fatalf("names %s %s %s", KindNode, KindSubnet, Kind(9))
	}
	if _, err := NewKeyPrefix(Kind(0), nil); !errors.Is(err, ErrPrefix) {
		t.Fatalf("zero kind: %v", err)
	}
}

// A prefix passed to slog as itself logs as its address form with the JSON
// handler too, which would otherwise write {} for its unexported fields.
func TestKeyPrefixLogValue(t *testing.T) {
	p := SubnetKeyPrefix(keyFromSeed(5))
	var js bytes.Buffer
	slog.New(slog.NewJSONHandler(&js, nil)).Info("m", "prefix", p)
	var rec map[string]any
	if err := json.Unmarshal(js.Bytes(), &rec); err != nil || rec["prefix"] != p.String() {
		t.Errorf("JSON handler wrote %s (%v)", js.String(), err)
	}
}

// The package stays a leaf: its non-test code imports the standard library
// only, so anything may use the address arithmetic without pulling in the
// overlay (see the import graph in CONTRIBUTING.md).
func TestStandardLibraryOnly(t *testing.T) {
	pkg, err := build.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, imp := range pkg.Imports {
		if first, _, _ := strings.Cut(imp, "/"); strings.Contains(first, ".") {
			t.Errorf("addressing imports %s, outside the standard library", imp)
		}
	}
}
