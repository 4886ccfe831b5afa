// Package overlay is the concurrent Pinecone node: it runs the routing state
// machine of overlay/router for real links and real time, and gives the rest
// of the daemon a way to send a payload to a public key and to receive the
// payloads addressed to it.
//
// Where it sits in the data path: the session layer hands an encrypted
// payload to Node.SendBuffer, which wraps it in a Traffic frame and queues it on
// the link of the next hop. Links (overlay/link, over TCP or WebSocket) hand
// every frame they read to Node.Receive. Traffic is forwarded there and then,
// from the calling goroutine, using an immutable routing snapshot published
// through an atomic pointer, so forwarding never waits for the control plane.
// Every other frame type goes through the state machine under one mutex; the
// frames it emits are queued on their links before the mutex is released, so
// each link sees them in the order the router produced them. Payloads
// delivered to this node wait in a bounded queue read with Node.Deliveries
// (at most Config.DeliveryQueue payloads holding DeliveryQueueBytes of
// buffers, 1 024 and 8 MiB by default, until the receiver releases them);
// when it is full they are dropped and counted.
//
// Memory held by queued frames is bounded per node by max_peers links of
// overlay/link's Config.MaxHeldBytes each (5.26 MiB with the defaults)
// plus the delivery queue's bytes: 345 MiB at the default 64 peers, of
// which a node with slow peers holds only what their queues really fill.
// (overlay/peers, which admits every peering, enforces max_peers.)
//
// Links are attached after their handshake (Attach), detached once when they
// end (Detach), and closed by the node when the router finds a protocol
// violation. A timer goroutine calls the router's Tick.
package overlay
