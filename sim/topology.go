package sim

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"sort"
	"strings"
	"time"
)

// Graph is an undirected topology: node names and links between node
// indices, each link once and no self-links.
type Graph struct {
	Names []string
	Edges [][2]int
}

// N is the number of nodes.
func (g Graph) N() int { return len(g.Names) }

func numbered(n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprint(i)
	}
	return names
}

// Line is a path of n nodes.
func Line(n int) Graph {
	g := Graph{Names: numbered(n)}
	for i := 1; i < n; i++ {
		g.Edges = append(g.Edges, [2]int{i - 1, i})
	}
	return g
}

// Ring is a cycle of n nodes (a line for n < 3).
func Ring(n int) Graph {
	g := Line(n)
	if n >= 3 {
		g.Edges = append(g.Edges, [2]int{n - 1, 0})
	}
	return g
}

// Grid is a w×h lattice; node (x, y) has index y*w+x.
func Grid(w, h int) Graph {
	g := Graph{Names: make([]string, 0, w*h)}
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			g.Names = append(g.Names, fmt.Sprintf("%d,%d", x, y))
			i := y*w + x
			if x > 0 {
				g.Edges = append(g.Edges, [2]int{i - 1, i})
			}
			if y > 0 {
				g.Edges = append(g.Edges, [2]int{i - w, i})
			}
		}
	}
	return g
}

// ScaleFree is a Barabási–Albert preferential-attachment graph: it starts
// from a clique of m+1 nodes, and each further node links to m distinct
// existing nodes chosen with probability proportional to their degree.
// The same seed gives the same graph.
func ScaleFree(n, m int, seed uint64) Graph {
	if m < 1 {
		m = 1
	}
	g := Graph{Names: numbered(n)}
	rng := rand.New(rand.NewPCG(seed, 0x5ca1ef2ee))
	// ends holds every link end once: picking from it uniformly picks a
	// node with probability proportional to its degree.
	var ends []int
	link := func(a, b int) {
		g.Edges = append(g.Edges, [2]int{a, b})
		ends = append(ends, a, b)
	}
	core := min(m+1, n)
	for i := 0; i < core; i++ {
		for j := 0; j < i; j++ {
			link(j, i)
		}
	}
	targets := make([]int, 0, m)
	for i := core; i < n; i++ {
		targets = targets[:0]
		for len(targets) < m {
			t := ends[rng.IntN(len(ends))]
			dup := false
			for _, x := range targets {
				dup = dup || x == t
			}
			if !dup {
				targets = append(targets, t)
			}
		}
		for _, t := range targets {
			link(t, i)
		}
	}
	return g
}

// ParseGraph reads the graph file format of the shared topology files: on
// each line, names separated by spaces; every two consecutive names on a
// line are a link. Self-links are skipped and each link counts once. Nodes
// are numbered in order of first appearance.
func ParseGraph(r io.Reader) (Graph, error) {
	var g Graph
	index := map[string]int{}
	seen := map[[2]int]bool{}
	id := func(name string) int {
		i, ok := index[name]
		if !ok {
			i = len(g.Names)
			index[name] = i
			g.Names = append(g.Names, name)
		}
		return i
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	for sc.Scan() {
		names := strings.Fields(sc.Text())
		prev := -1
		for _, name := range names {
			cur := id(name)
			if prev >= 0 && prev != cur {
				e := [2]int{min(prev, cur), max(prev, cur)}
				if !seen[e] {
					seen[e] = true
					g.Edges = append(g.Edges, e)
				}
			}
			prev = cur
		}
	}
	if err := sc.Err(); err != nil {
		return Graph{}, fmt.Errorf("graph: %w", err)
	}
	return g, nil
}

// LoadGraph reads a graph file (see ParseGraph).
func LoadGraph(path string) (Graph, error) {
	f, err := os.Open(path)
	if err != nil {
		return Graph{}, err
	}
	defer f.Close()
	g, err := ParseGraph(f)
	if err != nil {
		return Graph{}, fmt.Errorf("%s: %w", path, err)
	}
	return g, nil
}

// Build adds g's nodes, with keys derived from seed (NodeKey), and links
// them with the given latency (0 for the default). It returns the new
// nodes in g's order.
func (n *Network) Build(g Graph, seed uint64, latency time.Duration) ([]*Node, error) {
	nodes := make([]*Node, g.N())
	for i, name := range g.Names {
		nodes[i] = n.AddNode(name, NodeKey(seed, i))
	}
	for _, e := range g.Edges {
		if _, err := n.Connect(nodes[e[0]], nodes[e[1]], latency); err != nil {
			return nodes, err
		}
	}
	return nodes, nil
}

// CapDegree returns g with at most maxDegree links per node, as a Pinecone
// node has at most router.MaxPort peerings (docs/protocol.md §4.8), and the number
// of links it left out. Real topologies have hubs far above that (the
// skitter graph has a node with 2 070 neighbours). Links are kept in order
// of the lower degree of their two ends, then the higher, then file
// order: a hub keeps the links to the neighbours that depend on it most
// (leaves first), which keeps the largest component as large as a cap
// allows. Nodes are never dropped; some may end up cut off.
func (g Graph) CapDegree(maxDegree int) (Graph, int) {
	deg := g.Degrees()
	order := make([]int, len(g.Edges))
	for i := range order {
		order[i] = i
	}
	lo := func(e [2]int) int { return min(deg[e[0]], deg[e[1]]) }
	hi := func(e [2]int) int { return max(deg[e[0]], deg[e[1]]) }
	sort.SliceStable(order, func(i, j int) bool {
		a, b := g.Edges[order[i]], g.Edges[order[j]]
		if lo(a) != lo(b) {
			return lo(a) < lo(b)
		}
		return hi(a) < hi(b)
	})
	keep := make([]bool, len(g.Edges))
	have := make([]int, g.N())
	dropped := 0
	for _, i := range order {
		e := g.Edges[i]
		if have[e[0]] >= maxDegree || have[e[1]] >= maxDegree {
			dropped++
			continue
		}
		have[e[0]]++
		have[e[1]]++
		keep[i] = true
	}
	out := Graph{Names: g.Names, Edges: make([][2]int, 0, len(g.Edges)-dropped)}
	for i, e := range g.Edges {
		if keep[i] {
			out.Edges = append(out.Edges, e)
		}
	}
	return out, dropped
}

// Degrees returns the number of links of every node.
func (g Graph) Degrees() []int {
	deg := make([]int, g.N())
	for _, e := range g.Edges {
		deg[e[0]]++
		deg[e[1]]++
	}
	return deg
}
