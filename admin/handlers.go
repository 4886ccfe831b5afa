package admin

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"
)

type handler struct {
	run func(s *Server, ctx context.Context, args json.RawMessage) (any, error)
	// selfTimed handlers get the server's context without the request
	// timeout and bound themselves from their arguments.
	selfTimed bool
}

var handlers = map[string]handler{
	ReqGetSelf:     {run: getSelf},
	ReqGetPeers:    {run: getPeers},
	ReqGetTree:     {run: getTree},
	ReqGetSnake:    {run: getSnake},
	ReqGetSessions: {run: getSessions},
	ReqGetStats:    {run: getStats},
	ReqAddPeer:     {run: addPeer},
	ReqRemovePeer:  {run: removePeer},
	ReqLookup:      {run: lookup, selfTimed: true},
	ReqPing:        {run: ping, selfTimed: true},
	ReqGetCard:     {run: getCard},
	ReqImportCard:  {run: importCard},
	ReqListCards:   {run: listCards},
	ReqRemoveCard:  {run: removeCard},
}

var knownRequests = func() string {
	names := make([]string, 0, len(handlers))
	for n := range handlers {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}()

// ArgumentError reports a request whose arguments the server rejected
// before calling the backend.
type ArgumentError struct{ Msg string }

func (e *ArgumentError) Error() string { return "bad arguments: " + e.Msg }

func argErr(format string, a ...any) error { return &ArgumentError{Msg: fmt.Sprintf(format, a...)} }

// decodeArgs decodes a request's arguments into dst, rejecting fields dst
// does not have. Absent or null arguments decode as {}.
func decodeArgs(raw json.RawMessage, dst any) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		raw = json.RawMessage("{}")
	}
	if raw[0] != '{' {
		return argErr("arguments must be a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return argErr("%v", err)
	}
	return nil
}

func noArgs(raw json.RawMessage) error { return decodeArgs(raw, &struct{}{}) }

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func nonNilMap[V any](m map[string]V) map[string]V {
	if m == nil {
		return map[string]V{}
	}
	return m
}

func getSelf(s *Server, ctx context.Context, args json.RawMessage) (any, error) {
	if err := noArgs(args); err != nil {
		return nil, err
	}
	r, err := s.cfg.Backend.Self(ctx)
	if err != nil {
		return nil, err
	}
	r.Coords = nonNil(r.Coords)
	return r, nil
}

func getPeers(s *Server, ctx context.Context, args json.RawMessage) (any, error) {
	if err := noArgs(args); err != nil {
		return nil, err
	}
	peers, err := s.cfg.Backend.Peers(ctx)
	if err != nil {
		return nil, err
	}
	peers = nonNil(peers)
	for i := range peers {
		peers[i].Coords = nonNil(peers[i].Coords)
		peers[i].Drops = nonNilMap(peers[i].Drops)
	}
	statics, err := s.cfg.Backend.StaticPeers(ctx)
	if err != nil {
		return nil, err
	}
	down := []StaticPeer{}
	for _, sp := range statics {
		if sp.State != StaticStateConnected {
			down = append(down, sp)
		}
	}
	return PeersResponse{Peers: peers, StaticDown: down}, nil
}

func getTree(s *Server, ctx context.Context, args json.RawMessage) (any, error) {
	if err := noArgs(args); err != nil {
		return nil, err
	}
	t, err := s.cfg.Backend.Tree(ctx)
	if err != nil {
		return nil, err
	}
	t.Coords = nonNil(t.Coords)
	t.Ancestors = nonNil(t.Ancestors)
	t.Children = nonNil(t.Children)
	t.Announcements = nonNil(t.Announcements)
	for i := range t.Announcements {
		t.Announcements[i].Coords = nonNil(t.Announcements[i].Coords)
	}
	return t, nil
}

func getSnake(s *Server, ctx context.Context, args json.RawMessage) (any, error) {
	if err := noArgs(args); err != nil {
		return nil, err
	}
	sn, err := s.cfg.Backend.Snake(ctx)
	if err != nil {
		return nil, err
	}
	sn.Entries = nonNil(sn.Entries)
	return sn, nil
}

func getSessions(s *Server, ctx context.Context, args json.RawMessage) (any, error) {
	if err := noArgs(args); err != nil {
		return nil, err
	}
	ss, err := s.cfg.Backend.Sessions(ctx)
	if err != nil {
		return nil, err
	}
	return SessionsResponse{Sessions: nonNil(ss)}, nil
}

func getStats(s *Server, ctx context.Context, args json.RawMessage) (any, error) {
	if err := noArgs(args); err != nil {
		return nil, err
	}
	st, err := s.cfg.Backend.Stats(ctx)
	if err != nil {
		return nil, err
	}
	return NormalizeStats(st), nil
}

// NormalizeStats replaces nil maps with empty ones so that they encode as
// {} rather than null.
func NormalizeStats(st Stats) Stats {
	st.PeersByTransport = nonNilMap(st.PeersByTransport)
	st.Frames = nonNilMap(st.Frames)
	st.Drops = nonNilMap(st.Drops)
	st.SessionsByState = nonNilMap(st.SessionsByState)
	st.Handshakes = nonNilMap(st.Handshakes)
	st.Lookups = nonNilMap(st.Lookups)
	st.StaticPeers = nonNilMap(st.StaticPeers)
	return st
}

func uriArg(raw json.RawMessage) (string, error) {
	var a URIArgs
	if err := decodeArgs(raw, &a); err != nil {
		return "", err
	}
	a.URI = strings.TrimSpace(a.URI)
	switch {
	case a.URI == "":
		return "", argErr(`missing "uri"`)
	case len(a.URI) > MaxURILength:
		return "", argErr("uri longer than %d bytes", MaxURILength)
	case strings.ContainsAny(a.URI, "\x00\r\n"):
		return "", argErr("uri contains control characters")
	}
	return a.URI, nil
}

func addPeer(s *Server, ctx context.Context, args json.RawMessage) (any, error) {
	uri, err := uriArg(args)
	if err != nil {
		return nil, err
	}
	if err := s.cfg.Backend.AddPeer(ctx, uri); err != nil {
		return nil, err
	}
	return Empty{}, nil
}

func removePeer(s *Server, ctx context.Context, args json.RawMessage) (any, error) {
	uri, err := uriArg(args)
	if err != nil {
		return nil, err
	}
	if err := s.cfg.Backend.RemovePeer(ctx, uri); err != nil {
		return nil, err
	}
	return Empty{}, nil
}

// ParseOverlayAddress accepts a plain IPv6 address (no zone, not an
// IPv4-mapped address) and returns its canonical form.
func ParseOverlayAddress(s string) (string, error) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return "", fmt.Errorf("%q is not an IPv6 address", s)
	}
	if !a.Is6() || a.Is4In6() || a.Zone() != "" {
		return "", fmt.Errorf("%q is not a plain IPv6 address", s)
	}
	return a.String(), nil
}

// ParseKey accepts a 64-character hex public key (either case).
func ParseKey(s string) ([32]byte, error) {
	var k [32]byte
	if len(s) != 64 {
		return k, fmt.Errorf("key %q: want 64 hex characters, got %d", s, len(s))
	}
	if _, err := hex.Decode(k[:], []byte(s)); err != nil {
		return k, fmt.Errorf("key %q is not hex", s)
	}
	return k, nil
}

func lookup(s *Server, ctx context.Context, args json.RawMessage) (any, error) {
	var a LookupArgs
	if err := decodeArgs(args, &a); err != nil {
		return nil, err
	}
	if a.Address == "" {
		return nil, argErr(`missing "address"`)
	}
	addr, err := ParseOverlayAddress(a.Address)
	if err != nil {
		return nil, argErr("%v", err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.LookupTimeout)
	defer cancel()
	start := time.Now()
	key, cached, err := s.cfg.Backend.Lookup(ctx, addr)
	if err != nil {
		return nil, err
	}
	return LookupResponse{
		Address:    addr,
		PublicKey:  hex.EncodeToString(key[:]),
		Cached:     cached,
		DurationMS: ms(time.Since(start)),
		Name:       s.cfg.Backend.KeyName(key),
	}, nil
}

// ms converts to milliseconds with microsecond resolution.
func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// validatePing fills defaults and checks bounds.
func validatePing(a *PingArgs) error {
	if a.Target == "" {
		return argErr(`missing "target"`)
	}
	if a.Count == 0 {
		a.Count = DefaultPingCount
	}
	if a.IntervalMS == 0 {
		a.IntervalMS = DefaultPingIntervalMS
	}
	if a.TimeoutMS == 0 {
		a.TimeoutMS = DefaultPingTimeoutMS
	}
	switch {
	case a.Count < 1 || a.Count > MaxPingCount:
		return argErr("count must be 1..%d", MaxPingCount)
	case a.IntervalMS < MinPingIntervalMS || a.IntervalMS > MaxPingIntervalMS:
		return argErr("interval_ms must be %d..%d", MinPingIntervalMS, MaxPingIntervalMS)
	case a.TimeoutMS < 1 || a.TimeoutMS > MaxPingTimeoutMS:
		return argErr("timeout_ms must be 1..%d", MaxPingTimeoutMS)
	case (a.Count-1)*a.IntervalMS+a.TimeoutMS > MaxPingDurationMS:
		return argErr("count, interval_ms and timeout_ms would make the ping last over %d ms", MaxPingDurationMS)
	}
	return nil
}

func ping(s *Server, ctx context.Context, args json.RawMessage) (any, error) {
	var a PingArgs
	if err := decodeArgs(args, &a); err != nil {
		return nil, err
	}
	if err := validatePing(&a); err != nil {
		return nil, err
	}
	interval := time.Duration(a.IntervalMS) * time.Millisecond
	timeout := time.Duration(a.TimeoutMS) * time.Millisecond
	// The lookup, the probes' schedule and the last probe's timeout.
	ctx, cancel := context.WithTimeout(ctx, s.cfg.LookupTimeout+time.Duration(a.Count-1)*interval+timeout)
	defer cancel()
	resp := PingResponse{Target: a.Target}
	key, kerr := ParseKey(a.Target)
	if kerr != nil {
		addr, aerr := ParseOverlayAddress(a.Target)
		if aerr != nil {
			return nil, argErr("target %q is neither an IPv6 address nor a 64-character hex key", a.Target)
		}
		lctx, cancel := context.WithTimeout(ctx, s.cfg.LookupTimeout)
		k, _, err := s.cfg.Backend.Lookup(lctx, addr)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("looking up %s: %w", addr, err)
		}
		key, resp.Address = k, addr
	}
	resp.PublicKey = hex.EncodeToString(key[:])

	probes := make([]PingProbe, a.Count)
	var wg sync.WaitGroup
	start := time.Now()
	sent := 0
	timer := time.NewTimer(0)
	defer timer.Stop()
probing:
	for i := range probes {
		if i > 0 {
			timer.Reset(time.Until(start.Add(time.Duration(i) * interval)))
			select {
			case <-timer.C:
			case <-ctx.Done():
				break probing
			}
		}
		sent++
		wg.Add(1)
		go func(p *PingProbe, seq int) {
			defer wg.Done()
			p.Seq = seq
			pctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			rtt, err := s.cfg.Backend.Ping(pctx, key)
			switch {
			case errors.Is(err, context.DeadlineExceeded):
				p.Lost, p.Error = true, "timeout"
			case err != nil:
				p.Lost, p.Error = true, err.Error()
			default:
				p.RTTMS = ms(max(rtt, 0))
			}
		}(&probes[i], i+1)
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	resp.Probes = probes[:sent]
	SummarisePing(&resp)
	return resp, nil
}

// SummarisePing fills the counts, loss and RTT statistics of resp from
// resp.Probes. pineconectl uses it for probes it sent one at a time.
func SummarisePing(resp *PingResponse) {
	resp.Sent, resp.Received = len(resp.Probes), 0
	resp.MinRTTMS, resp.AvgRTTMS, resp.MaxRTTMS = 0, 0, 0
	var sum float64
	for _, p := range resp.Probes {
		if p.Lost {
			continue
		}
		if resp.Received == 0 || p.RTTMS < resp.MinRTTMS {
			resp.MinRTTMS = p.RTTMS
		}
		resp.MaxRTTMS = max(resp.MaxRTTMS, p.RTTMS)
		sum += p.RTTMS
		resp.Received++
	}
	if resp.Sent > 0 {
		resp.LossPercent = float64(resp.Sent-resp.Received) * 100 / float64(resp.Sent)
	}
	if resp.Received > 0 {
		resp.AvgRTTMS = float64(int64(sum/float64(resp.Received)*1000)) / 1000
	}
}

// ReadRequests are the requests that only read the daemon's state and take
// no arguments, in the order the status page shows them.
var ReadRequests = []string{ReqGetSelf, ReqGetPeers, ReqGetTree, ReqGetSnake, ReqGetSessions, ReqGetStats}

// Read answers one of ReadRequests from b with exactly the response the
// socket server sends for it, so that other read-only views (the status
// page) serve the admin API's data rather than a copy of it. Any other
// request name is an error: Read never reaches a request that changes
// something.
func Read(ctx context.Context, b Backend, request string) (any, error) {
	if !slices.Contains(ReadRequests, request) {
		return nil, fmt.Errorf("%q is not a read-only request", request)
	}
	return handlers[request].run(&Server{cfg: ServerConfig{Backend: b}}, ctx, nil)
}

// textArg checks a free-text argument: at most limit bytes, valid UTF-8,
// no control characters except, where allowed, line ends and tabs.
func textArg(name, v string, limit int, multiline bool) error {
	if len(v) > limit {
		return argErr("%s longer than %d bytes", name, limit)
	}
	if !utf8.ValidString(v) {
		return argErr("%s is not UTF-8", name)
	}
	for _, r := range v {
		if unicode.IsControl(r) && !(multiline && (r == '\n' || r == '\r' || r == '\t')) {
			return argErr("%s contains control characters", name)
		}
	}
	return nil
}

func getCard(s *Server, ctx context.Context, args json.RawMessage) (any, error) {
	var a CardArgs
	if err := decodeArgs(args, &a); err != nil {
		return nil, err
	}
	if err := textArg("host", a.Host, MaxCardHostLength, false); err != nil {
		return nil, err
	}
	if strings.ContainsAny(a.Host, " /?#@[]") {
		return nil, argErr("host %q: give a host name or an address, without brackets, port or path", a.Host)
	}
	if err := textArg("name", a.Name, 64, false); err != nil {
		return nil, err
	}
	switch {
	case a.ValidSeconds == 0:
		a.ValidSeconds = DefaultCardValiditySeconds
	case a.ValidSeconds < 1 || a.ValidSeconds > MaxCardValiditySeconds:
		return nil, argErr("valid_seconds must be 1..%d", MaxCardValiditySeconds)
	}
	r, err := s.cfg.Backend.Card(ctx, a)
	if err != nil {
		return nil, err
	}
	r.URIs = nonNil(r.URIs)
	return r, nil
}

func importCard(s *Server, ctx context.Context, args json.RawMessage) (any, error) {
	var a ImportCardArgs
	if err := decodeArgs(args, &a); err != nil {
		return nil, err
	}
	if strings.TrimSpace(a.Card) == "" {
		return nil, argErr(`missing "card"`)
	}
	if err := textArg("card", a.Card, MaxCardTextLength, true); err != nil {
		return nil, err
	}
	info, replaced, err := s.cfg.Backend.ImportCard(ctx, a.Card)
	if err != nil {
		return nil, err
	}
	info.URIs = nonNil(info.URIs)
	return ImportCardResponse{CardInfo: info, Replaced: replaced}, nil
}

func listCards(s *Server, ctx context.Context, args json.RawMessage) (any, error) {
	if err := noArgs(args); err != nil {
		return nil, err
	}
	cards, err := s.cfg.Backend.Cards(ctx)
	if err != nil {
		return nil, err
	}
	cards = nonNil(cards)
	for i := range cards {
		cards[i].URIs = nonNil(cards[i].URIs)
	}
	return CardsResponse{Cards: cards}, nil
}

func removeCard(s *Server, ctx context.Context, args json.RawMessage) (any, error) {
	var a RemoveCardArgs
	if err := decodeArgs(args, &a); err != nil {
		return nil, err
	}
	a.Card = strings.TrimSpace(a.Card)
	if a.Card == "" {
		return nil, argErr(`missing "card" (a key or a name)`)
	}
	if err := textArg("card", a.Card, 128, false); err != nil {
		return nil, err
	}
	info, err := s.cfg.Backend.RemoveCard(ctx, a.Card)
	if err != nil {
		return nil, err
	}
	info.URIs = nonNil(info.URIs)
	return info, nil
}
