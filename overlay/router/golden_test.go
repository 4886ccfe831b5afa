package router

import (
	"bytes"
	"testing"

	"github.com/pineconed/pineconed/internal/testhelp"
	"github.com/pineconed/pineconed/overlay/wire"
)

// The first frames of docs/protocol.md §12: E3 is A's first frame on its port 1,
// E4 is B's copy of it, re-signed for B's port 1, sent back once B has
// taken A as its parent.
const (
	hexA  = "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c"
	hexE3 = "70696e65 00 01 00 00 008e 0082" + hexA + "01 01" + hexA +
		"ff89960dbc4fe6149da0411d5e62ea0decbdec6f5bce6e85e15fec10c3458c6580c6d5bc7e5060e7895cc538ec6a4164ceb56f105bc89730dd4173f5051c010b"
	hexE4 = "70696e650001000000ef00e38a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c01018a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5cff89960dbc4fe6149da0411d5e62ea0decbdec6f5bce6e85e15fec10c3458c6580c6d5bc7e5060e7895cc538ec6a4164ceb56f105bc89730dd4173f5051c010b018139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b39406d17394993ce0dfef90118896f539fd45e11cbfa6acdf1950a9eea05170b6f5c678fe3003c22854ed813ee21a66a714c6bade6dc01282c6fc7cc8c17563c908"
)

func TestTwoNodesExchangeE3AndE4(t *testing.T) {
	a, b := New(privA, Options{}), New(privB, Options{})
	up := own(a.PeerUp(t0, 1, keyB, PeerRemote))
	if len(up) == 0 || up[0].Kind != ActionSend || up[0].Port != 1 {
		t.Fatalf("PeerUp: first action %v, want a send on port 1", up)
	}
	if want := testhelp.Unhex(t, hexE3); !bytes.Equal(up[0].Frame, want) {
		t.Fatalf("A's first frame:\n got %x\nwant %x", up[0].Frame, want)
	}
	if !up[0].Protocol || up[0].Type != wire.TypeTreeAnnouncement {
		t.Errorf("first frame is %s protocol=%v, want a protocol tree announcement", up[0].Type, up[0].Protocol)
	}
	bUp := own(b.PeerUp(t0, 1, keyA, PeerRemote))
	if len(sends(bUp, 1, int(wire.TypeTreeAnnouncement))) != 1 {
		t.Fatalf("B's PeerUp: %v", bUp)
	}

	acts := own(b.HandleFrame(t0, 1, decode(t, up[0].Frame)))
	mustNoDisconnect(t, acts)
	anns := sends(acts, 1, int(wire.TypeTreeAnnouncement))
	if len(anns) != 1 {
		t.Fatalf("B sent %d announcements back, want 1: %v", len(anns), acts)
	}
	if want := testhelp.Unhex(t, hexE4); !bytes.Equal(anns[0].Frame, want) {
		t.Fatalf("B's re-signed copy:\n got %x\nwant %x", anns[0].Frame, want)
	}
	if b.Parent() != 1 || b.Root() != (wire.Root{Key: keyA, Seq: 1}) || !b.Coords().Equal(wire.Coordinates{1}) {
		t.Errorf("B: parent %v root %v coords %v; want port 1, (A,1), [1]", b.Parent(), b.Root(), b.Coords())
	}
	// B also greets A with a wakeup after A's first announcement (§4.5).
	if w := sends(acts, 1, int(wire.TypeWakeupBroadcast)); len(w) != 1 {
		t.Errorf("B sent %d wakeups to A, want 1", len(w))
	}

	// A: B's first announcement (root B, weaker) changes nothing, and the
	// re-signed copy (a loop through A) neither.
	acts = own(a.HandleFrame(t0, 1, decode(t, sends(bUp, 1, -1)[0].Frame)))
	mustNoDisconnect(t, acts)
	if n := len(sends(acts, NoPort, int(wire.TypeTreeAnnouncement))); n != 0 {
		t.Errorf("A answered B's first (weaker) announcement with %d announcements, want 0", n)
	}
	acts = own(a.HandleFrame(t0, 1, decode(t, anns[0].Frame)))
	mustNoDisconnect(t, acts)
	if a.Parent() != NoPort || a.Root() != (wire.Root{Key: keyA, Seq: 1}) || len(a.Coords()) != 0 {
		t.Errorf("A: parent %v root %v coords %v; want root of its own tree", a.Parent(), a.Root(), a.Coords())
	}
	if p := a.Peers(); len(p) != 1 || !p[0].HasAnnouncement || !p[0].Coords.Equal(wire.Coordinates{1}) {
		t.Errorf("A's view of B: %+v, want coordinates [1]", p)
	}
}
