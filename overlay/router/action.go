package router

import (
	"fmt"

	"github.com/pineconed/pineconed/overlay/wire"
)

// NoPort means "no port": no parent, no next hop, no destination. It is
// outside the range of real ports and of LocalPort.
const NoPort Port = 0xff

// ActionKind says what an Action asks the node to do.
type ActionKind uint8

// The kinds of Action.
const (
	// ActionSend queues Frame on the link at Port.
	ActionSend ActionKind = iota + 1
	// ActionDeliver hands a Traffic payload to the application.
	ActionDeliver
	// ActionDisconnect closes the link at Port because the peer broke the
	// protocol. The Router has already forgotten the peer; the node must
	// still call PeerDown once the link is closed, and must not give the
	// port to a new link before that.
	ActionDisconnect
	// ActionEvent reports a change for logs and metrics; it needs no
	// response.
	ActionEvent
)

// Action is one thing the node must do after a call into the Router. The
// fields that matter depend on Kind. Actions must be carried out in order:
// for one port, frames are listed in the order they must go on the wire.
type Action struct {
	Kind ActionKind
	// Port is the link for ActionSend and ActionDisconnect, and the port
	// an event concerns.
	Port Port
	// Frame is a whole encoded frame (ActionSend). The receiver owns it.
	Frame []byte
	// Type is the frame type of Frame.
	Type wire.FrameType
	// Protocol is true for frames that go on the link's protocol queue,
	// which is drained before traffic.
	Protocol bool
	// Source and Destination are the keys of a delivered Traffic frame
	// (ActionDeliver). Destination is the frame's, which is not always our
	// key: SNEK hands frames for keys that do not exist to the successor,
	// and the address lookups of the VPN rely on it.
	Source, Destination wire.PublicKey
	// Payload is a copy of the delivered payload (ActionDeliver); the
	// receiver owns it.
	Payload []byte
	// Reason says why a link must close (ActionDisconnect). It is a
	// *ProtocolError.
	Reason error
	// Event describes an ActionEvent.
	Event Event
}

func (a Action) String() string {
	switch a.Kind {
	case ActionSend:
		return fmt.Sprintf("send %s (%d bytes) on %s", a.Type, len(a.Frame), a.Port)
	case ActionDeliver:
		return fmt.Sprintf("deliver %d bytes from %s to %s", len(a.Payload), a.Source, a.Destination)
	case ActionDisconnect:
		return fmt.Sprintf("disconnect %s: %v", a.Port, a.Reason)
	case ActionEvent:
		return "event " + a.Event.String()
	}
	return fmt.Sprintf("action kind %d", a.Kind)
}

// EventKind names an informational event.
type EventKind uint8

// The events a Router reports.
const (
	// EventRootChanged: the root key changed (Event.Root, Event.Coords).
	EventRootChanged EventKind = iota + 1
	// EventParentChanged: the tree parent changed (Event.Port, NoPort when
	// this node became root; Event.Coords are the new coordinates).
	EventParentChanged
	// EventPeerAnnounced: the peer at Event.Port (Event.Key) sent its first
	// tree announcement, so it is now usable for routing.
	EventPeerAnnounced
	// EventWakeupReceived: a wakeup broadcast from Event.Key was accepted
	// (the reference's BroadcastReceived); Event.Port is where it came from.
	EventWakeupReceived
	// EventRoutesChanged: this call gave the node a route it did not have:
	// a new tree parent or root, a peer's first announcement, a new SNEK
	// route or descending neighbour, or a route that now leads another
	// way. Refreshes of unchanged routes do not count. It comes at most
	// once per call, after the tree events, so that whoever waits for a
	// route (an address lookup) can try again at once instead of on a
	// timer.
	EventRoutesChanged
	// EventKeyClone: the announcements of the peer at Event.Port
	// (Event.Key) have shown for KeyCloneConfirm that another node signs
	// with our private key (a copy of our key file runs elsewhere);
	// Event.Root is the root of the announcement. It comes once per
	// peering. The Router keeps treating such announcements as loops, as
	// the reference does, and drops no peer for it.
	EventKeyClone
)

// Event is the payload of an ActionEvent.
type Event struct {
	Kind   EventKind
	Port   Port
	Key    wire.PublicKey
	Root   wire.Root
	Coords wire.Coordinates
}

func (e Event) String() string {
	switch e.Kind {
	case EventRootChanged:
		return fmt.Sprintf("root changed to %s seq %d, coords %s", e.Root.Key, e.Root.Seq, e.Coords)
	case EventParentChanged:
		if e.Port == NoPort {
			return fmt.Sprintf("no parent (root), coords %s", e.Coords)
		}
		return fmt.Sprintf("parent is now %s, coords %s", e.Port, e.Coords)
	case EventPeerAnnounced:
		return fmt.Sprintf("first announcement from %s on %s", e.Key, e.Port)
	case EventWakeupReceived:
		return fmt.Sprintf("wakeup from %s via %s", e.Key, e.Port)
	case EventRoutesChanged:
		return "routes changed"
	case EventKeyClone:
		return fmt.Sprintf("clone of our key seen in announcements from %s on %s (root %s seq %d)", e.Key, e.Port, e.Root.Key, e.Root.Seq)
	}
	return fmt.Sprintf("event kind %d", e.Kind)
}
