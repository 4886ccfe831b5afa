package sim

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	"github.com/pineconed/pineconed/overlay/router"
	"github.com/pineconed/pineconed/overlay/wire"
)

// Loss tracing follows every probe frame hop by hop, so that a probe that
// did not reach its node can be given a cause. It is off by default (it
// costs a Router.Stats copy per probe hop) and turned on by TraceLosses.

// probeID names one probe frame: its round, its pair and its direction.
type probeID struct {
	round, pair uint64
	reply       bool
}

// probeFate is what became of a probe frame as far as the tracer saw it.
type probeFate struct {
	// at is the last node that handled the frame, hops the links it had
	// crossed to get there.
	at   *Node
	hops uint16
	// prev is the node at handed it on, nil for its source.
	prev *Node
	// dropped is set when at dropped it, with the Router's reason.
	dropped bool
	reason  string
	// delivered is set when at handed it to its application.
	delivered bool
	// byTree is set when the frame reached at with destination
	// coordinates (routed on the tree up to there).
	byTree bool
	// fellBack is set when some hop found the tree a dead end and carried
	// the frame on by key.
	fellBack bool
}

// TraceLosses turns the loss tracer on or off. While on, Probe attributes
// every lost request and reply to a cause (ProbeResult.Losses).
func (n *Network) TraceLosses(on bool) {
	if on {
		n.fates = map[probeID]*probeFate{}
	} else {
		n.fates = nil
	}
}

// parseProbe returns the probe a payload belongs to.
func parseProbe(p []byte) (probeID, bool) {
	if len(p) != len(probeMagic)+17 || !bytes.HasPrefix(p, probeMagic) {
		return probeID{}, false
	}
	return probeID{round: binary.BigEndian.Uint64(p[len(probeMagic):]),
		pair: binary.BigEndian.Uint64(p[len(probeMagic)+8:]), reply: p[len(p)-1] == 1}, true
}

// traceTraffic records what node did with Traffic frame f (which reached
// it after hops links; hops 0 means it originates f): call is the Router
// call that handles it, returning its actions. It is called only while
// the tracer is on.
func (n *Network) traceTraffic(node *Node, f *wire.Traffic, hops uint16, call func() []router.Action) []router.Action {
	id, ok := parseProbe(f.Payload)
	if !ok {
		return call()
	}
	byTree := len(f.DestinationCoords) > 0
	before := node.Router.Stats().Drops
	acts := call()
	fate := n.fates[id]
	if fate == nil {
		fate = &probeFate{}
		n.fates[id] = fate
	}
	fate.prev = nil
	if hops > 0 {
		fate.prev = fate.at
	}
	fate.at, fate.hops, fate.byTree = node, hops, byTree
	fate.dropped, fate.delivered, fate.reason = true, false, ""
	for i := range acts {
		switch a := &acts[i]; a.Kind {
		case router.ActionDeliver:
			fate.dropped, fate.delivered = false, true
		case router.ActionSend:
			if a.Type != wire.TypeTraffic {
				continue
			}
			fate.dropped = false
			if byTree {
				if m, err := wire.Decode(a.Frame); err == nil {
					if t, ok := m.(*wire.Traffic); ok && len(t.DestinationCoords) == 0 {
						fate.fellBack = true
					}
				}
			}
		}
	}
	if fate.dropped {
		for k, v := range node.Router.Stats().Drops {
			if v > before[k] {
				fate.reason = k
			}
		}
	}
	return acts
}

// Loss causes, the keys of ProbeResult.Losses. A drop by a Router is
// "drop:" and its DropReason name (watermark: the next hop's route was
// older than the frame's watermark, a loop or a stale path; ingress: the
// next hop is where it came from; hop_limit; traffic_no_route: the
// originator knew no peer closer to the key).
const (
	// LossDeadEndSuccessor: the frame reached the destination's successor
	// (the smallest key above it, where SNEK traffic for it ends up),
	// which had no usable route to it: the destination's bootstrap route
	// was missing there.
	LossDeadEndSuccessor = "dead_end:successor_no_route"
	// LossDeadEndSuccessorStale: the same, but the successor held a route
	// to the destination that was expired or older than the frame's
	// watermark.
	LossDeadEndSuccessorStale = "dead_end:successor_stale_route"
	// LossDeadEndElsewhere: the frame was delivered at a node that is not
	// the destination's successor: greedy key routing found no peer,
	// ancestor or route closer to the key there (a local minimum).
	LossDeadEndElsewhere = "dead_end:elsewhere"
	// LossInFlight: no node was seen to drop or deliver the frame: it was
	// still on a link at the end of the window (late), or the link or the
	// queue bound lost it.
	LossInFlight = "in_flight_or_late"
)

// lossCause classifies the fate of a probe bound for to. succ is the
// sorted list of the keys of every node still in the network.
func (n *Network) lossCause(fate *probeFate, to *Node, keys []wire.PublicKey) string {
	var c string
	switch {
	case fate == nil || (!fate.dropped && !fate.delivered):
		return LossInFlight
	case fate.dropped:
		c = "drop:" + fate.reason
		if fate.reason == router.DropIngress.String() && fate.prev != nil {
			c += n.bounceRoute(fate.at, fate.prev, to)
		}
	default:
		i, found := slices.BinarySearchFunc(keys, to.Key, func(a, b wire.PublicKey) int { return a.Compare(b) })
		if found {
			i++
		}
		if i < len(keys) && keys[i] == fate.at.Key {
			c = LossDeadEndSuccessor
			for _, e := range fate.at.Router.SNEKEntries(time.Time{}) {
				if e.Originator == to.Key {
					c = LossDeadEndSuccessorStale
				}
			}
			c += n.bootstrapEnd(to, fate.at)
		} else {
			c = LossDeadEndElsewhere
		}
	}
	switch {
	case fate.fellBack:
		c = "tree_fallback→" + c
	case fate.byTree:
		c = "tree→" + c
	}
	return c
}

// bootstrapEnd says where the valid routes the destination's bootstraps
// laid end, seen from its successor succ: " (bootstrap ends above the
// successor)" when they all end at nodes with higher keys (the greedy
// bootstrap missed succ), " (bootstrap ends nowhere)" when no node holds
// a valid route to it, and "" otherwise.
func (n *Network) bootstrapEnd(dst, succ *Node) string {
	now, found, above := n.Now(), false, true
	for _, node := range n.nodes {
		if node.removed || node == dst {
			continue
		}
		for _, e := range node.Router.SNEKEntries(now) {
			if e.Originator != dst.Key || (e.Destination != router.LocalPort && e.Destination != router.NoPort) {
				continue
			}
			found = true
			if !succ.Key.Less(node.Key) {
				above = false
			}
		}
	}
	switch {
	case !found:
		return " (bootstrap ends nowhere)"
	case above:
		return " (bootstrap ends above the successor)"
	}
	return ""
}

// bounceRoute says, for a frame to dst that at would send straight back
// to prev, whether at's choice was one of its routes leading through prev
// (the closest valid route at or above dst's key, found among its SNEK
// entries), and whether prev holds a route to that originator too. ""
// when it was not a route (a peer's key or ancestry).
func (n *Network) bounceRoute(at, prev, dst *Node) string {
	now := n.Now()
	var best *router.SNEKEntryView
	entries := at.Router.SNEKEntries(now)
	for i := range entries {
		e := &entries[i]
		if e.Originator.Less(dst.Key) || (best != nil && !e.Originator.Less(best.Originator)) {
			continue
		}
		best = e
	}
	if best == nil || at.LinkOn(best.Source) == nil {
		return " (no route: by a peer's key or ancestry)"
	}
	if far, _ := at.LinkOn(best.Source).Far(at); far != prev {
		return " (closest route not via the previous hop)"
	}
	for _, e := range prev.Router.SNEKEntries(now) {
		if e.Originator != best.Originator {
			continue
		}
		if l := prev.LinkOn(e.Source); l != nil {
			if far, _ := l.Far(prev); far == at {
				return " (route via the previous hop, whose route leads back here: a route loop)"
			}
		}
		return " (route via the previous hop, which has one too)"
	}
	return " (route via the previous hop, which has none)"
}

// liveKeys is the sorted keys of the nodes still in the network.
func (n *Network) liveKeys() []wire.PublicKey {
	keys := make([]wire.PublicKey, 0, len(n.nodes))
	for _, node := range n.nodes {
		if !node.removed {
			keys = append(keys, node.Key)
		}
	}
	slices.SortFunc(keys, func(a, b wire.PublicKey) int { return a.Compare(b) })
	return keys
}

// Losses counts lost probes by direction and cause.
type Losses map[string]int

// Add counts one loss of a request (reply false) or a reply.
func (l Losses) Add(reply bool, cause string) {
	dir := "request"
	if reply {
		dir = "reply"
	}
	l[fmt.Sprintf("%s %s", dir, cause)]++
}

// Merge adds o's counts to l.
func (l Losses) Merge(o Losses) {
	for k, v := range o {
		l[k] += v
	}
}

// attributeLosses gives every lost probe of a round its cause and forgets
// the round's records, so the tracer holds one round at a time.
func (n *Network) attributeLosses(round uint64, pairs []Pair, requests, replies []bool) Losses {
	losses := Losses{}
	var keys []wire.PublicKey
	for i, p := range pairs {
		if requests[i] && replies[i] {
			continue
		}
		if keys == nil {
			keys = n.liveKeys()
		}
		reply, to := requests[i], p.To
		if reply {
			to = p.From
		}
		losses.Add(reply, n.lossCause(n.fates[probeID{round, uint64(i), reply}], to, keys))
	}
	clear(n.fates)
	return losses
}
