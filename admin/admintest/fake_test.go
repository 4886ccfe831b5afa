package admintest

import (
	"context"
	"encoding/hex"
	"testing"

	"github.com/pineconed/pineconed/addressing"
	"github.com/pineconed/pineconed/overlay/wire"
)

func key(t *testing.T, s string) wire.PublicKey {
	t.Helper()
	var k wire.PublicKey
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(k) {
		t.Fatalf("bad key %q", s)
	}
	copy(k[:], b)
	return k
}

// The fake's addresses are the ones its keys really have, so examples and
// golden files built from it show what a user would see.
func TestFakeAddressesMatchKeys(t *testing.T) {
	var b Backend
	self, err := b.Self(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	sk := key(t, SelfKey)
	if self.Address != addressing.NodeAddr(sk).String() {
		t.Errorf("self address %s, want %s", self.Address, addressing.NodeAddr(sk))
	}
	if self.Subnet != addressing.Subnet(sk).String() {
		t.Errorf("self subnet %s, want %s", self.Subnet, addressing.Subnet(sk))
	}
	if ParentAddress != addressing.NodeAddr(key(t, ParentKey)).String() {
		t.Errorf("ParentAddress %s is not ParentKey's", ParentAddress)
	}
	if UnreachableAddress != addressing.NodeAddr(key(t, UnreachableKey)).String() {
		t.Errorf("UnreachableAddress %s is not UnreachableKey's", UnreachableAddress)
	}
	peers, err := b.Peers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range peers {
		if p.Address != addressing.NodeAddr(key(t, p.PublicKey)).String() {
			t.Errorf("peer %s has address %s", p.PublicKey, p.Address)
		}
	}
	sessions, err := b.Sessions(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range sessions {
		if s.RemoteAddress != addressing.NodeAddr(key(t, s.RemoteKey)).String() {
			t.Errorf("session %s has address %s", s.RemoteKey, s.RemoteAddress)
		}
	}
}
