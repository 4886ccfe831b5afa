// Package router is the Pinecone routing state machine: the spanning tree,
// the SNEK virtual snake and hybrid traffic forwarding of the protocol
// specification (docs/protocol.md §4–§7).
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
//     belong to the caller), then publish Publish(now) with an atomic
//     pointer swap (the call returns the same pointer while nothing
//     changed, after a route refresh, which the published snapshot sees
//     in place, and while route changes beyond Publish's rebuild budget
//     are held back; so a hub's rebuild cost does not grow with the
//     bootstraps it relays).
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
//
// Where the timing differs from the reference's. Stock nodes cannot tell
// any of these from a slow or busy peer: every frame is one the reference
// could send, only when it is sent differs. Options.ReferenceTimers turns
// all of them off (the capture replay test runs so and reproduces a stock
// node's frames byte for byte), and the routing simulator measures both
// (docs/simulation/README.md):
//
//   - Periodic wakeup flood: once per DefaultWakeupRefresh (12 h) on
//     average, each period drawn from [½, 1½) of it and the first from
//     [0, 12 h), instead of every WakeupInterval (60 s) on the start grid.
//     The periodic flood was ~95 % of all control frames and nothing in the
//     protocol needs it; the wakeup on a peer's first announcement stays.
//   - Bootstrap interval: FastBootstrapInterval (1 s) for
//     DefaultFastBootstrapWindow (10 s) after a change of our parent, root
//     or descending neighbour, else BootstrapInterval (5 s) as the
//     reference. The snake settles one link per round, so fast rounds while
//     it moves cut cold-start convergence by a factor of three to four.
//   - Bootstrap handoff: when a route to a key we did not know arrives, and
//     the bootstrap of the route just below it in key order came through
//     within DefaultBootstrapHandoffAge (400 ms) and went on towards a key
//     above it, or ended here within DefaultTerminalHandoffAge (5 s), we
//     pass that bootstrap on again towards the new key, the same signed
//     frame, as a stock node that had received the two bootstraps in the
//     other order would have; the reference leaves that step to the
//     originator's next bootstrap, a round later.
//     Chains of not yet settled predecessors then settle within a burst of
//     bootstraps instead of one link per round (Router.handOff has the
//     bound's reason).
//   - Reparent wait: a parent that re-signs the same root update with a new
//     path (it moved in the tree) is followed at once; the reference
//     becomes root for ReparentWait (1 s), which is bad news for its whole
//     subtree in turn. Nor is the parent's identical answer to an
//     announcement of ours with a weaker root that crossed its own (within
//     ReparentWait of it) taken as bad news: at a cold start nearly every
//     node got one, and the tree took three ReparentWait rounds to form.
//     And when the
//     parent's new path comes back through us (it took an older
//     announcement of ours), another peer's loop-free copy of the same root
//     is taken at once. With both, no node waits at a cold start in the
//     simulator and the tree forms within 50 ms instead of 3 s. Other
//     identical repeats, a weaker root, or a loop with no other peer to
//     turn to still wait as in the reference.
//
// All other timers (announcement refresh and timeout, route expiry, the
// coordinate cache, the wakeup repeat guard and seen expiry) are the
// reference's. Unlike the reference's, the wakeup seen set is bounded
// (MaxWakeupSeen) and evicts its oldest record when full.
//
// Convergence, as specified: the tree settles within a few announcement
// hops, but SNEK needs many bootstrap rounds. A first packet (no cached
// coordinates) ends at the first node that knows no key between the
// destination and its own, and a bootstrap ends by the same rule, so the
// snake only settles as each node's bootstrap learns to reach its true
// key-order successor over routes laid by earlier bootstraps, one link of
// each chain per 5 s round. Until then traffic by key is delivered to the
// wrong node (a Deliver verdict for a key not ours), not dropped. In the
// routing simulator that takes about 20 rounds from a cold start (fc00, 598
// nodes: 120 s; with 1 s rounds: 24 s); docs/simulation/README.md has the
// measurements. Whoever receives what SNEK delivers must check the
// destination key (the daemon's address lookups count such replies as
// unsolicited).
package router
