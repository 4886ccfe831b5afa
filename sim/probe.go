package sim

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/pineconed/pineconed/overlay/router"
)

// Components returns the connected components of the nodes still in the
// network, over links that are up, each in ID order.
func (n *Network) Components() [][]*Node {
	seen := make([]bool, len(n.nodes))
	var out [][]*Node
	for _, start := range n.nodes {
		if start.removed || seen[start.ID] {
			continue
		}
		comp := []*Node{start}
		seen[start.ID] = true
		for i := 0; i < len(comp); i++ {
			for _, l := range comp[i].ends {
				if l == nil {
					continue
				}
				if far, _ := l.Far(comp[i]); !seen[far.ID] {
					seen[far.ID] = true
					comp = append(comp, far)
				}
			}
		}
		out = append(out, comp)
	}
	return out
}

// TreeConverged returns nil when, in every connected component, every node
// follows the component's highest key as root with the same sequence, and
// every node's coordinates are its parent's plus the parent's port towards
// it (the root's are empty). Otherwise it says what is not yet right.
func (n *Network) TreeConverged() error {
	for _, comp := range n.Components() {
		top := comp[0]
		for _, node := range comp[1:] {
			if top.Key.Less(node.Key) {
				top = node
			}
		}
		want := top.Router.Root()
		if want.Key != top.Key {
			return fmt.Errorf("%s, the highest key of its component, follows root %.8s", top, want.Key)
		}
		for _, node := range comp {
			if got := node.Router.Root(); got != want {
				return fmt.Errorf("%s follows root %.8s seq %d, want %.8s seq %d", node, got.Key, got.Seq, want.Key, want.Seq)
			}
			coords := node.Router.Coords()
			if node == top {
				if len(coords) != 0 || node.Router.Parent() != router.NoPort {
					return fmt.Errorf("root %s has coordinates %v and parent %v", node, coords, node.Router.Parent())
				}
				continue
			}
			l := node.LinkOn(node.Router.Parent())
			if l == nil {
				return fmt.Errorf("%s has no link to its parent (%v)", node, node.Router.Parent())
			}
			parent, port := l.Far(node)
			if pc := parent.Router.Coords(); !coords.Equal(append(pc, uint64(port))) {
				return fmt.Errorf("%s has coordinates %v, parent %s has %v and reaches it on %v", node, coords, parent, pc, port)
			}
		}
	}
	return nil
}

// BootstrapsSettled reports whether every node still in the network that
// bootstraps (every non-root) is back at router.BootstrapInterval: no
// node's fast window after a change (router.Options.FastBootstrapWindow)
// is open.
// Until then the control traffic is the cold start's, not the steady
// state's.
func (n *Network) BootstrapsSettled() bool {
	now := n.Now()
	for _, node := range n.nodes {
		if !node.removed && !IsRoot(node) && node.Router.BootstrapInterval(now) != router.BootstrapInterval {
			return false
		}
	}
	return true
}

// Pair is a source and a destination for probes.
type Pair struct{ From, To *Node }

// ProbeResult counts a round of request/reply probes.
type ProbeResult struct {
	Pairs int
	// Requests counts requests delivered to the node they were for.
	Requests int
	// Replies counts replies delivered back to the requester.
	Replies int
	// Misdelivered counts probes handed to some other node.
	Misdelivered int
	// RequestsByTree counts requests sent with destination coordinates
	// from the requester's cache (learnt from an earlier exchange), so
	// routed on the tree; the others went by SNEK.
	RequestsByTree int
	// RepliesByTree counts replies sent with the requester's coordinates
	// from the cache, so routed on the tree; replies to a root always go
	// by SNEK (its coordinates are empty).
	RepliesByTree int
	// Failed lists the pairs whose request or reply was lost.
	Failed []Pair
	// Losses counts the lost requests and replies by cause while the loss
	// tracer is on (Network.TraceLosses); nil otherwise.
	Losses Losses
	// RequestHops and ReplyHops are, by pair, the links the request and
	// the reply crossed, or -1 when it did not reach its node.
	RequestHops, ReplyHops []int
}

// OK reports whether every request and every reply arrived.
func (r ProbeResult) OK() bool { return r.Requests == r.Pairs && r.Replies == r.Pairs }

func (r ProbeResult) String() string {
	return fmt.Sprintf("%d pairs: %d requests (%d by tree), %d replies (%d by tree), %d misdelivered",
		r.Pairs, r.Requests, r.RequestsByTree, r.Replies, r.RepliesByTree, r.Misdelivered)
}

// probeMagic starts every probe payload; other deliveries are ignored.
var probeMagic = []byte("pineconed-sim-probe")

// Probe sends a request from each pair's From to its To, runs the network
// for window, lets every To that got its request reply, and runs window
// again. A request travels by SNEK unless From has To's coordinates cached
// from an earlier exchange (ForgetCoords clears them); the reply normally
// goes by tree, because receiving the request cached From's coordinates at
// To.
func (n *Network) Probe(pairs []Pair, window time.Duration) ProbeResult {
	res := ProbeResult{Pairs: len(pairs)}
	round := n.seq
	payload := func(i int, reply bool) []byte {
		p := make([]byte, len(probeMagic)+17)
		copy(p, probeMagic)
		binary.BigEndian.PutUint64(p[len(probeMagic):], round)
		binary.BigEndian.PutUint64(p[len(probeMagic)+8:], uint64(i))
		if reply {
			p[len(p)-1] = 1
		}
		return p
	}
	// collect matches this round's deliveries to pairs and keeps the rest.
	collect := func(reply bool, hops []int) []bool {
		got := make([]bool, len(pairs))
		for i := range hops {
			hops[i] = -1
		}
		kept := n.deliveries[:0]
		for _, d := range n.deliveries {
			p := d.Payload
			if len(p) != len(probeMagic)+17 || !bytes.HasPrefix(p, probeMagic) ||
				binary.BigEndian.Uint64(p[len(probeMagic):]) != round || (p[len(p)-1] == 1) != reply {
				kept = append(kept, d)
				continue
			}
			i := int(binary.BigEndian.Uint64(p[len(probeMagic)+8:]))
			if i >= len(pairs) {
				continue
			}
			want := pairs[i].To
			if reply {
				want = pairs[i].From
			}
			if d.Node == want {
				got[i] = true
				hops[i] = d.Hops
			} else {
				res.Misdelivered++
			}
		}
		n.deliveries = kept
		return got
	}
	for i, p := range pairs {
		if _, ok := p.From.Router.CoordCache().Get(p.To.Key, n.Now()); ok {
			res.RequestsByTree++
		}
		n.Send(p.From, p.To.Key, payload(i, false))
	}
	n.RunFor(window)
	res.RequestHops = make([]int, len(pairs))
	requests := collect(false, res.RequestHops)
	for i, p := range pairs {
		if !requests[i] {
			continue
		}
		res.Requests++
		if _, ok := p.To.Router.CoordCache().Get(p.From.Key, n.Now()); ok {
			res.RepliesByTree++
		}
		n.Send(p.To, p.From.Key, payload(i, true))
	}
	n.RunFor(window)
	res.ReplyHops = make([]int, len(pairs))
	replies := collect(true, res.ReplyHops)
	for i, p := range pairs {
		if replies[i] {
			res.Replies++
		} else {
			res.Failed = append(res.Failed, p)
		}
	}
	if n.fates != nil {
		res.Losses = n.attributeLosses(round, pairs, requests, replies)
	}
	return res
}

// ForgetCoords clears every node's coordinate cache, so that the next
// traffic between any two nodes starts by SNEK.
func (n *Network) ForgetCoords() {
	for _, node := range n.nodes {
		node.Router.CoordCache().Clear()
	}
}

// AllPairs lists every ordered pair of distinct nodes still in the network.
func (n *Network) AllPairs() []Pair {
	var out []Pair
	for _, a := range n.nodes {
		for _, b := range n.nodes {
			if a != b && !a.removed && !b.removed {
				out = append(out, Pair{a, b})
			}
		}
	}
	return out
}

// IsRoot reports whether the node is currently the root of its tree.
func IsRoot(node *Node) bool { return node.Router.Root().Key == node.Key }
