package main

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/pineconed/pineconed/admin"
)

// view holds the presentation options shared by every table.
type view struct {
	fullKeys bool
	// wide shows what the default tables leave out to fit 100 columns:
	// full keys and URIs, and the peers table's ORIGIN, IFACE and COORDS.
	wide bool
}

// shortKeyLen is how many hex digits of a key tables show without
// --full-keys: 64 bits, plenty to tell the nodes of one network apart.
const shortKeyLen = 16

// target shortens a ping target only if it is a key, never an address.
func (v view) target(s string) string {
	if _, err := admin.ParseKey(s); err == nil {
		return v.key(s)
	}
	return s
}

func (v view) key(k string) string {
	if k == "" {
		return "-"
	}
	if v.fullKeys || v.wide || len(k) <= shortKeyLen {
		return k
	}
	return k[:shortKeyLen] + "…"
}

// named is a key followed by the name on its peer card, if it has one.
func (v view) named(k, name string) string {
	if name == "" {
		return v.key(k)
	}
	return v.key(k) + " " + strconv.Quote(name)
}

// peerLabel is the KEY cell of the peers table. In the default view a
// named peer shows its name alone, clipped to the width of a short key, so
// that the table keeps to 100 columns; --wide and --full-keys show the key
// and the name.
func (v view) peerLabel(k, name string) string {
	if name == "" || v.fullKeys || v.wide {
		return v.named(k, name)
	}
	return v.clip(strconv.Quote(name), shortKeyLen+1)
}

// bytesIEC formats a byte count with binary prefixes: 512 B, 1.2 MiB.
func bytesIEC(n uint64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatUint(n, 10) + " B"
	}
	f := float64(n)
	i := -1
	for f >= unit && i < 5 {
		f /= unit
		i++
	}
	return fmt.Sprintf("%.1f %ciB", f, "KMGTPE"[i])
}

// duration formats a span with its two largest units: 850ms, 45s, 3m05s,
// 2h03m, 4d02h.
func duration(d time.Duration) string {
	if d < 0 {
		return "-"
	}
	if d < time.Second {
		return strconv.FormatInt(d.Milliseconds(), 10) + "ms"
	}
	s := int64(d / time.Second)
	days, h, m, sec := s/86400, s%86400/3600, s%3600/60, s%60
	switch {
	case days > 0:
		return fmt.Sprintf("%dd%02dh", days, h)
	case h > 0:
		return fmt.Sprintf("%dh%02dm", h, m)
	case m > 0:
		return fmt.Sprintf("%dm%02ds", m, sec)
	}
	return fmt.Sprintf("%ds", sec)
}

func seconds(s int64) string { return duration(time.Duration(s) * time.Second) }

// shortSeconds formats short fractional spans such as expiry times: 8.5s.
func shortSeconds(s float64) string {
	if math.IsNaN(s) || s < 0 {
		return "-"
	}
	if s < 60 {
		return strconv.FormatFloat(s, 'f', 1, 64) + "s"
	}
	return duration(time.Duration(s * float64(time.Second)))
}

func coords(c []uint64) string {
	parts := make([]string, len(c))
	for i, p := range c {
		parts[i] = strconv.FormatUint(p, 10)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func port(p uint64) string {
	if p == 0 {
		return "-"
	}
	return strconv.FormatUint(p, 10)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func newTable(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0) }

func row(tw io.Writer, cells ...string) { fmt.Fprintln(tw, strings.Join(cells, "\t")) }

// countsByKey renders {"tcp":1,"ws":2} as "1 tcp, 2 ws" in key order.
func countsByKey(m map[string]uint64) string {
	keys := make([]string, 0, len(m))
	for k, n := range m {
		if n > 0 {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%d %s", m[k], k)
	}
	return strings.Join(parts, ", ")
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func parentText(v view, p uint64, key string) string {
	if p == 0 && key == "" {
		return "none (this node is the root)"
	}
	return fmt.Sprintf("port %d, %s", p, v.key(key))
}

func writeStatus(w io.Writer, v view, self admin.Self, st admin.Stats) error {
	tw := newTable(w)
	row(tw, "Public key", self.PublicKey)
	row(tw, "Address", self.Address)
	row(tw, "Subnet", self.Subnet)
	row(tw, "Version", self.Version)
	row(tw, "Uptime", seconds(self.UptimeSeconds))
	row(tw, "Root", fmt.Sprintf("%s (sequence %d)", v.key(self.RootKey), self.RootSequence))
	row(tw, "Coordinates", coords(self.Coords))
	row(tw, "Parent", parentText(v, self.ParentPort, self.ParentKey))
	peers := strconv.Itoa(self.PeerCount)
	if s := countsByKey(st.PeersByTransport); s != "" {
		peers += " (" + s + ")"
	}
	row(tw, "Peers", peers)
	sessions := countsByKey(st.SessionsByState)
	row(tw, "Sessions", orDash(sessions))
	row(tw, "SNEK entries", strconv.FormatUint(st.SnakeEntries, 10))
	if self.TunName != "" {
		row(tw, "TUN", fmt.Sprintf("%s, MTU %d", self.TunName, self.TunMTU))
	} else {
		row(tw, "TUN", "none")
	}
	var f admin.FrameCounters
	for _, c := range st.Frames {
		f.FramesIn += c.FramesIn
		f.FramesOut += c.FramesOut
		f.BytesIn += c.BytesIn
		f.BytesOut += c.BytesOut
	}
	row(tw, "Overlay in", fmt.Sprintf("%s in %d frames", bytesIEC(f.BytesIn), f.FramesIn))
	row(tw, "Overlay out", fmt.Sprintf("%s in %d frames", bytesIEC(f.BytesOut), f.FramesOut))
	row(tw, "TUN read", fmt.Sprintf("%s in %d packets", bytesIEC(st.Tun.BytesRead), st.Tun.PacketsRead))
	row(tw, "TUN written", fmt.Sprintf("%s in %d packets", bytesIEC(st.Tun.BytesWritten), st.Tun.PacketsWritten))
	var drops uint64
	for _, n := range st.Drops {
		drops += n
	}
	row(tw, "Drops", fmt.Sprintf("%d", drops))
	return tw.Flush()
}

// Widths of the cells the default tables shorten, so that a table of
// typical rows fits 100 columns; --wide shows them in full.
const (
	remoteWidth    = 19
	staticURIWidth = 34
	lastErrorWidth = 34
)

// clip shortens s to width runes, marking the cut with "…", unless the
// view is wide or asks for full keys (which means full URIs as well).
func (v view) clip(s string, width int) string {
	r := []rune(s)
	if v.wide || v.fullKeys || len(r) <= width {
		return s
	}
	return string(r[:width-1]) + "…"
}

// remote is a peering's remote end for the table: in the default view the
// URI without the scheme (the TRANSPORT column gives it), clipped; the
// whole URI with --wide or --full-keys.
func (v view) remote(uri string) string {
	if v.wide || v.fullKeys {
		return uri
	}
	if _, rest, ok := strings.Cut(uri, "://"); ok {
		uri = rest
	}
	return v.clip(uri, remoteWidth)
}

// writePeers prints the peerings and then the configured static peers
// that have none, with why. The columns are a list so that one more (a
// peer's name, say) is one entry more.
func writePeers(w io.Writer, v view, r admin.PeersResponse) error {
	tw := newTable(w)
	head := []string{"PORT", "KEY", "TRANSPORT", "DIR", "REMOTE", "UP", "RX", "TX", "DROPS", "FLAGS"}
	if v.wide {
		head = append(head, "ORIGIN", "IFACE", "COORDS")
	}
	row(tw, head...)
	for _, p := range r.Peers {
		dir := "out"
		if p.Inbound {
			dir = "in"
		}
		var drops uint64
		for _, n := range p.Drops {
			drops += n
		}
		var flags []string
		if p.IsParent {
			flags = append(flags, "parent")
		}
		if p.Duplicate {
			flags = append(flags, "dup")
		}
		cells := []string{port(p.Port), v.peerLabel(p.PublicKey, p.Name), p.Transport, dir, orDash(v.remote(p.URI)),
			seconds(p.UptimeSeconds), bytesIEC(p.BytesIn), bytesIEC(p.BytesOut),
			strconv.FormatUint(drops, 10), orDash(strings.Join(flags, ","))}
		if v.wide {
			cells = append(cells, orDash(p.Origin), orDash(p.Interface), coords(p.Coords))
		}
		row(tw, cells...)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(r.StaticDown) == 0 {
		return nil
	}
	fmt.Fprintln(w)
	tw = newTable(w)
	row(tw, "STATIC", "STATE", "FOR", "NEXT", "FAILS", "ERROR")
	for _, sp := range r.StaticDown {
		next := "now"
		if sp.State == admin.StaticStateWaiting {
			next = "in " + seconds(sp.NextAttemptSeconds)
		}
		row(tw, v.clip(sp.URI, staticURIWidth), sp.State, seconds(sp.StateSeconds), next,
			strconv.Itoa(sp.Failures), orDash(v.clip(sp.LastError, lastErrorWidth)))
	}
	return tw.Flush()
}

func writeTree(w io.Writer, v view, t admin.Tree) error {
	tw := newTable(w)
	row(tw, "Root", fmt.Sprintf("%s (sequence %d)", v.key(t.RootKey), t.RootSequence))
	row(tw, "Coordinates", coords(t.Coords))
	row(tw, "Parent", parentText(v, t.ParentPort, t.ParentKey))
	ancestors := make([]string, len(t.Ancestors))
	for i, k := range t.Ancestors {
		ancestors[i] = v.key(k)
	}
	row(tw, "Ancestors", orNone(strings.Join(ancestors, " → ")))
	children := make([]string, len(t.Children))
	for i, c := range t.Children {
		children[i] = fmt.Sprintf("port %d, %s", c.Port, v.key(c.PublicKey))
	}
	row(tw, "Children", orNone(strings.Join(children, "; ")))
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	tw = newTable(w)
	row(tw, "PORT", "KEY", "ROOT", "SEQ", "COORDS", "RECEIVED")
	for _, a := range t.Announcements {
		row(tw, port(a.Port), v.key(a.PublicKey), v.key(a.RootKey), strconv.FormatUint(a.RootSequence, 10),
			coords(a.Coords), shortSeconds(a.ReceivedAgoSeconds)+" ago")
	}
	return tw.Flush()
}

func neighbourText(v view, n *admin.SnakeNeighbour) string {
	if n == nil {
		return "none known"
	}
	if n.ExpiresInSeconds == nil {
		// No route entry, so no expiry to show (not "in 0.0s").
		return fmt.Sprintf("%s via port %d, expires -", v.key(n.PublicKey), n.Port)
	}
	return fmt.Sprintf("%s via port %d, expires in %s", v.key(n.PublicKey), n.Port, shortSeconds(*n.ExpiresInSeconds))
}

func writeSnake(w io.Writer, v view, s admin.Snake) error {
	tw := newTable(w)
	row(tw, "Ascending", neighbourText(v, s.Ascending))
	row(tw, "Descending", neighbourText(v, s.Descending))
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	tw = newTable(w)
	row(tw, "ORIGIN", "SRC", "DST", "SEQ", "ROOT", "EXPIRES")
	for _, e := range s.Entries {
		row(tw, v.key(e.OriginKey), port(e.SourcePort), port(e.DestinationPort),
			strconv.FormatUint(e.WatermarkSequence, 10),
			fmt.Sprintf("%s/%d", v.key(e.RootKey), e.RootSequence), shortSeconds(e.ExpiresInSeconds))
	}
	return tw.Flush()
}

func writeSessions(w io.Writer, v view, ss []admin.Session) error {
	tw := newTable(w)
	row(tw, "KEY", "ADDRESS", "STATE", "AGE", "RX", "TX", "REKEYED", "MTU")
	for _, s := range ss {
		rekey := "never"
		if s.LastRekeySeconds >= 0 {
			rekey = seconds(s.LastRekeySeconds) + " ago"
		}
		mtu := "-"
		if s.PeerMTU > 0 {
			mtu = strconv.Itoa(s.PeerMTU)
		}
		row(tw, v.named(s.RemoteKey, s.Name), s.RemoteAddress, s.State, seconds(s.AgeSeconds),
			bytesIEC(s.BytesIn), bytesIEC(s.BytesOut), rekey, mtu)
	}
	return tw.Flush()
}

func writeLookup(w io.Writer, r admin.LookupResponse) error {
	how := "asked the network"
	if r.Cached {
		how = "from cache"
	}
	_, err := fmt.Fprintf(w, "%s is %s (%s, %s ms)\n", r.Address, view{fullKeys: true}.named(r.PublicKey, r.Name), how, strconv.FormatFloat(r.DurationMS, 'f', 2, 64))
	return err
}

// Ping output, in the manner of ping6.

func writePingHeader(w io.Writer, v view, target, key string, count int, interval time.Duration) {
	if key != "" && key != target {
		fmt.Fprintf(w, "PING %s (%s): %d probes, interval %s\n", target, v.key(key), count, interval)
		return
	}
	fmt.Fprintf(w, "PING %s: %d probes, interval %s\n", v.target(target), count, interval)
}

func writePingProbe(w io.Writer, v view, target string, p admin.PingProbe) {
	if p.Lost {
		fmt.Fprintf(w, "no reply from %s: seq=%d (%s)\n", v.target(target), p.Seq, orDash(p.Error))
		return
	}
	fmt.Fprintf(w, "reply from %s: seq=%d time=%.2f ms\n", v.target(target), p.Seq, p.RTTMS)
}

func writePingSummary(w io.Writer, v view, r admin.PingResponse) {
	fmt.Fprintf(w, "\n--- %s ping statistics ---\n", v.target(r.Target))
	fmt.Fprintf(w, "%d probes sent, %d received, %s%% loss\n", r.Sent, r.Received, strconv.FormatFloat(r.LossPercent, 'f', -1, 64))
	if r.Received > 0 {
		fmt.Fprintf(w, "rtt min/avg/max = %.2f/%.2f/%.2f ms\n", r.MinRTTMS, r.AvgRTTMS, r.MaxRTTMS)
	}
}
