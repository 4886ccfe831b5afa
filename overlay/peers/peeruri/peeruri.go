// Package peeruri is the peering endpoint URI of overlay/peers: its one
// parser and its canonical form. It is parsed once, where it enters (the
// configuration file, an admin request, a peer card), and travels as a URI
// value from there to the dialler and the listener; it is printed only for
// people (logs, the admin API, -genconf). It is a leaf (the standard
// library and the wire codec's key type), so that config can hold URIs
// without importing the overlay runtime.
package peeruri

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"github.com/pineconed/pineconed/overlay/wire"
)

// Peering transports, as written in URI schemes.
const (
	SchemeTCP = "tcp"
	SchemeWS  = "ws"
	SchemeWSS = "wss"
)

// URI is a parsed peering endpoint: a static peer to dial or a local
// listener. The config, the peers package and the admin addPeer request all
// parse URIs with ParsePeer or ParseListen so they agree on the syntax:
//
//	tcp://host:port          TCP; the port is required
//	host:port                the same as tcp://host:port
//	ws://host[:port]/path    WebSocket; port 80 when omitted, path "/" when empty
//	wss://host[:port]/path   WebSocket over TLS; port 443 when omitted
//
// A static peer may end with ?key=<64 hex characters>, the remote node's
// ed25519 public key: the peering is refused unless the remote presents that
// key in its handshake. IPv6 literals go in brackets: tcp://[2001:db8::1]:65432.
type URI struct {
	// Scheme is SchemeTCP, SchemeWS or SchemeWSS.
	Scheme string
	// Host is host:port, always with a port (defaults filled in), suitable
	// for net.Dial or net.Listen.
	Host string
	// Path is the HTTP path for ws and wss, at least "/"; empty for tcp.
	Path string
	// Key is the pinned remote key; the zero key means not pinned.
	Key wire.PublicKey
}

// Pinned reports whether the URI carries a ?key= the remote must present.
func (u URI) Pinned() bool { return !u.Key.IsZero() }

// Hostname is the host part of Host without the port or IPv6 brackets; it
// is the TLS server name when dialling wss.
func (u URI) Hostname() string {
	h, _, err := net.SplitHostPort(u.Host)
	if err != nil {
		return u.Host
	}
	return h
}

// URL is the ws:// or wss:// address to dial, without the ?key= pin (which
// is ours, not the remote web server's). For tcp it is "tcp://host:port".
// An IPv6 zone's '%' is escaped as URLs require.
func (u URI) URL() string {
	return u.Scheme + "://" + strings.ReplaceAll(u.Host, "%", "%25") + u.Path
}

// String is the canonical form: ParsePeer(u.String()) == u. It is also
// how URIs appear in logs, the admin API and Generate's output.
func (u URI) String() string {
	s := u.URL()
	if u.Pinned() {
		s += "?key=" + u.Key.String()
	}
	return s
}

// MarshalText writes the canonical form.
func (u URI) MarshalText() ([]byte, error) { return []byte(u.String()), nil }

// UnmarshalText parses like ParsePeer.
func (u *URI) UnmarshalText(b []byte) error {
	p, err := ParsePeer(string(b))
	if err != nil {
		return err
	}
	*u = p
	return nil
}

// ParsePeer parses a static peer URI (see URI). The host and a
// non-zero port are required.
func ParsePeer(s string) (URI, error) {
	return parseFor(s, "peer", CheckStatic)
}

// ParseListen parses a listener URI. Unlike a static peer, the host may
// be empty (all addresses, as in tcp://:65432), port 0 asks the kernel for a
// free port, and a ?key= pin is refused: it would mean nothing here.
func ParseListen(s string) (URI, error) {
	return parseFor(s, "listen", CheckListen)
}

// parseFor parses s and checks it against one use's rule, naming the use
// and s in the error.
func parseFor(s, use string, check func(URI) error) (URI, error) {
	u, err := Parse(s)
	if err == nil {
		err = check(u)
	}
	if err != nil {
		return URI{}, fmt.Errorf("%s URI %q: %w", use, s, err)
	}
	return u, nil
}

// Parse checks only the syntax of s; whether a key pin or an empty host
// is allowed depends on the use (CheckStatic, CheckListen). The config
// parser uses it and reports the use's rule against the option's line.
func Parse(s string) (URI, error) {
	if s == "" {
		return URI{}, errors.New("empty")
	}
	if strings.TrimSpace(s) != s {
		return URI{}, errors.New("leading or trailing spaces")
	}
	if !strings.Contains(s, "://") {
		scheme, _, _ := strings.Cut(s, ":")
		switch strings.ToLower(scheme) {
		case SchemeTCP, SchemeWS, SchemeWSS:
			return URI{}, errors.New("missing // after the scheme")
		}
		// Bare host:port means TCP, the way stock Pinecone takes peers.
		// There is no URL escaping in that form, so an IPv6 zone's '%'
		// is taken literally.
		hostport, query, hasQuery := strings.Cut(s, "?")
		s = SchemeTCP + "://" + strings.ReplaceAll(hostport, "%", "%25")
		if hasQuery {
			s += "?" + query
		}
	}
	// Before url.Parse, whose errors for these ("invalid port") would
	// not say what to write instead.
	if scheme, rest, ok := strings.Cut(s, "://"); ok {
		authority := rest
		if i := strings.IndexAny(rest, "/?#"); i >= 0 {
			authority = rest[:i]
		}
		if _, hostport, userinfo := strings.Cut(authority, "@"); userinfo {
			authority = hostport
		}
		if err := checkBareIPv6(strings.ToLower(scheme), authority); err != nil {
			return URI{}, err
		}
	}
	pu, err := url.Parse(s)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return URI{}, err
	}
	u := URI{Scheme: pu.Scheme}
	switch pu.Scheme {
	case SchemeTCP, SchemeWS, SchemeWSS:
	default:
		return URI{}, fmt.Errorf("unsupported scheme %q (want tcp, ws or wss)", pu.Scheme)
	}
	if pu.User != nil {
		return URI{}, errors.New("user information is not supported")
	}
	if pu.Fragment != "" || strings.HasSuffix(s, "#") {
		return URI{}, errors.New("a #fragment is not allowed")
	}

	host, port := pu.Hostname(), pu.Port()
	if port == "" {
		if strings.HasSuffix(pu.Host, ":") {
			return URI{}, errors.New("empty port")
		}
		switch pu.Scheme {
		case SchemeTCP:
			return URI{}, errors.New("missing port (tcp needs host:port)")
		case SchemeWS:
			port = "80"
		case SchemeWSS:
			port = "443"
		}
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return URI{}, fmt.Errorf("bad port %q", port)
	}
	u.Host = net.JoinHostPort(host, strconv.FormatUint(n, 10))

	switch pu.Scheme {
	case SchemeTCP:
		if pu.Path != "" && pu.Path != "/" {
			return URI{}, fmt.Errorf("tcp takes no path (got %q)", pu.Path)
		}
	default:
		u.Path = pu.EscapedPath()
		if u.Path == "" {
			u.Path = "/"
		}
	}

	q, err := url.ParseQuery(pu.RawQuery)
	if err != nil {
		return URI{}, fmt.Errorf("bad query: %w", err)
	}
	for name, vals := range q {
		if name != "key" {
			return URI{}, fmt.Errorf("unknown query parameter %q (only key= is understood)", name)
		}
		if len(vals) != 1 {
			return URI{}, errors.New("key= given more than once")
		}
		if len(vals[0]) != 2*wire.KeySize {
			return URI{}, fmt.Errorf("key= must be %d hex characters, got %d", 2*wire.KeySize, len(vals[0]))
		}
		k, err := wire.ParsePublicKey(vals[0])
		if err != nil {
			return URI{}, fmt.Errorf("key= is not hex: %q", vals[0])
		}
		if k.IsZero() {
			return URI{}, errors.New("key= is the all-zero key")
		}
		u.Key = k
	}
	if strings.HasSuffix(s, "?") && pu.RawQuery == "" {
		return URI{}, errors.New("empty query after ?")
	}
	return u, nil
}

// CheckStatic is what a static peer needs beyond URI syntax: somewhere to
// dial.
func CheckStatic(u URI) error {
	if u.Hostname() == "" {
		return errors.New("missing host")
	}
	if _, port, _ := net.SplitHostPort(u.Host); port == "0" {
		return errors.New("port 0 cannot be dialled")
	}
	return nil
}

// CheckListen refuses a key pin on a listener: it would pin nothing.
func CheckListen(u URI) error {
	if u.Pinned() {
		return errors.New("?key= pins a remote key and only applies to static peers")
	}
	return nil
}

// checkBareIPv6 refuses an IPv6 literal without brackets. Its last group
// would be read as the port: fd99:1::5:7 would dial [fd99:1::5]:7, and
// fd99:1::5 the host "fd99:1:" on port 5, looked up in DNS forever.
func checkBareIPv6(scheme, host string) error {
	if strings.HasPrefix(host, "[") || strings.Count(host, ":") < 2 {
		return nil
	}
	msg := fmt.Sprintf("an IPv6 address must be in brackets with the port after them: write %s://[ADDRESS]:PORT", scheme)
	addr, _, _ := strings.Cut(host, "%25")
	if a, err := netip.ParseAddr(addr); err == nil && a.Is6() {
		msg = fmt.Sprintf("%s, e.g. %s://[%s]:PORT", msg, scheme, a)
	}
	if i := strings.LastIndexByte(host, ':'); i > 0 {
		if a, err := netip.ParseAddr(host[:i]); err == nil && a.Is6() {
			msg = fmt.Sprintf("%s (or %s://[%s]:%s if %s was meant as the port)", msg, scheme, a, host[i+1:], host[i+1:])
		}
	}
	return errors.New(msg)
}
