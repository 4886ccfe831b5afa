// Package router is the Pinecone routing state machine: the spanning tree,
// the SNEK virtual snake and hybrid traffic forwarding of the protocol
// specification (docs/pinecone-protocol.md §4–§7).
//
// Place in the data path: a link reader decodes each frame with overlay/wire
// and hands it to the concurrent node (package overlay). The node feeds
// control frames to a Router under its control mutex and forwards Traffic
// frames itself, on many goroutines, by asking an immutable Snapshot for the
// next hop. Whatever the Router decides comes back as Actions: encoded frames
// for a port's link writer, payloads for the application, links to close.
//
// The Router does no I/O and has no goroutines, locks for its logic or wall
// clock: every call takes the current time. This makes the same code run in
// unit tests with a fake clock, in the in-memory network of package sim with
// thousands of nodes, and in the daemon. A Router is not safe for concurrent
// use; the node serialises calls. Snapshot, CoordCache and the counters
// behind Stats are safe to use from any goroutine.
//
// Using it from the node:
//
//   - PeerUp when a link is authenticated, PeerDown when it is gone,
//     HandleFrame for every decoded frame, Tick whenever NextTick passes.
//   - After each such call, act on the returned Actions in order (the
//     slice is reused by the next call; the frames and payloads in it
//     belong to the caller), then publish Snapshot() with an atomic pointer
//     swap (the call returns the same pointer while nothing changed).
//   - Forward received Traffic with Snapshot.Route and originate with
//     Snapshot.NewTraffic followed by Route, without holding the control
//     mutex. Router.HandleFrame and Router.SendTraffic run exactly the same
//     code for the in-memory tests.
//
// Wire compatibility with stock Pinecone nodes is the point of this package,
// so the algorithms follow the reference implementation's behaviour as the
// specification describes it, including its quirks. Where this package
// chooses differently (tie-breaks, bounds, order of cheap checks before
// signature checks) the choice has no effect on the wire and is said where
// it is made.
package router
