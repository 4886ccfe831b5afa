// Package config is the daemon's TOML configuration: the option types and
// their built-in defaults, strict parsing that names file, line and option
// for every problem, the commented file that `pineconed -genconf` prints,
// the comparison a SIGHUP reload acts on, and the private key file.
//
// Parsing is deliberately unforgiving. An unknown option, a value of the
// wrong type or one out of range is an error, never silently ignored: a typo
// such as `statc = [...]` would otherwise leave a node without its peers and
// nobody would know why. Every problem in a file is reported at once, one per
// line, so a user fixes the file in one go rather than one error per restart.
//
// The decoder is BurntSushi/toml for the syntax, then our own walk over the
// decoded tree against the Config struct (by toml tags). The library stops at
// the first type mismatch and does not expose where a key was defined, so we
// do the type checks ourselves and find key lines with a small scanner of our
// own (lines.go).
package config

import (
	"fmt"
	"log/slog"
	"regexp"
	"time"

	"github.com/pineconed/pineconed/internal/limits"
	"github.com/pineconed/pineconed/internal/mtu"
	"github.com/pineconed/pineconed/overlay/peers/peeruri"
	"github.com/pineconed/pineconed/overlay/wire"
)

// DefaultPath is where the daemon looks for its configuration when no
// -config flag is given. A missing file there means built-in defaults.
const DefaultPath = "/etc/pineconed/pineconed.toml"

// MaxPeers is the most peerings a node can hold (internal/limits says why).
const MaxPeers = limits.MaxPeers

// MinPeerTimeout and MaxPeerTimeout bound peers.peer_timeout
// (internal/limits says why).
const (
	MinPeerTimeout = limits.MinPeerTimeout
	MaxPeerTimeout = limits.MaxPeerTimeout
)

// MinMTU is the smallest TUN MTU we accept: the IPv6 minimum link MTU.
const MinMTU = mtu.Min

// MaxMTU is the largest TUN MTU we accept: the largest IPv6 packet that fits
// one Pinecone Traffic frame (16-bit length) with the frame's header, keys
// and watermark and the session layer's encryption (65 378 bytes; see
// package internal/mtu, which the daemon uses too).
func MaxMTU() int { return mtu.Max() }

// PeerURI is a peering endpoint as the [peers] options hold it: the peers
// package's own type (overlay/peers/peeruri), parsed once here, with the
// file and line of any error, and handed to the peers package as it is.
type PeerURI = peeruri.URI

// Config is the whole daemon configuration. The zero value is not useful;
// start from Default. Every field carries the toml tag of its option, and
// the config tests check that each one is documented in Generate's output.
type Config struct {
	// PrivateKeyFile holds the node's ed25519 identity (see LoadOrCreateKey).
	PrivateKeyFile string `toml:"private_key_file"`
	// LogLevel is the minimum slog level logged: debug, info, warn or error.
	LogLevel slog.Level `toml:"log_level"`
	// LogFormat is "text" or "json" (slog's TextHandler or JSONHandler).
	LogFormat string `toml:"log_format"`

	TUN       TUNConfig       `toml:"tun"`
	Peers     PeersConfig     `toml:"peers"`
	Multicast MulticastConfig `toml:"multicast"`
	Admin     AdminConfig     `toml:"admin"`
	Metrics   MetricsConfig   `toml:"metrics"`
}

// TUNConfig is the [tun] table: the virtual interface carrying IPv6 traffic.
type TUNConfig struct {
	// Enable false makes a relay-only node: it routes for others but has no
	// interface of its own and needs no CAP_NET_ADMIN.
	Enable bool `toml:"enable"`
	// Name is the interface name, at most 15 bytes (IFNAMSIZ - 1).
	Name string `toml:"name"`
	// MTU 0 means automatic: the largest MTU whose packets fit one Pinecone
	// frame after our framing and encryption. Otherwise MinMTU..MaxMTU().
	MTU int `toml:"mtu"`
}

// PeersConfig is the [peers] table: how this node finds and accepts peerings.
type PeersConfig struct {
	// Listen are the local endpoints accepting inbound peerings (tcp, ws, wss).
	// They never carry a pinned key.
	Listen []PeerURI `toml:"listen"`
	// Static are peers dialled and re-dialled with back-off for as long as
	// the daemon runs; each may pin the remote key.
	Static []PeerURI `toml:"static"`
	// AllowedKeys, when not empty, is the only set of keys accepted on
	// inbound peerings. Outbound static peers are not filtered by it.
	AllowedKeys []wire.PublicKey `toml:"allowed_keys"`
	// MaxPeers caps concurrent peerings of every kind, 1..MaxPeers.
	MaxPeers int `toml:"max_peers"`
	// PeerTimeout is how long data sent to a peer may stay unacknowledged
	// before the peering is dropped (TCP_USER_TIMEOUT), MinPeerTimeout..
	// MaxPeerTimeout; a reload applies it to peerings made afterwards.
	PeerTimeout time.Duration `toml:"peer_timeout"`
	// Advertise are the URIs this node's peer card tells others to dial
	// (pineconectl card); empty means the listeners, with the host given
	// on pineconectl's command line. They never carry a pinned key: the
	// card's key is the pin.
	Advertise []PeerURI `toml:"advertise"`
	// CardDirs are directories whose *.card files are imported as peer
	// cards at start and on every reload: a bundle of cards is just a
	// directory (a USB stick mounted at a known path, a shared folder).
	CardDirs []string `toml:"card_dirs"`
	// TLS is used by wss:// listeners and when dialling wss:// peers.
	TLS TLSConfig `toml:"tls"`
}

// TLSConfig is the [peers.tls] table.
type TLSConfig struct {
	// CertFile and KeyFile are a PEM certificate chain and its key, required
	// when any listener is wss://.
	CertFile string `toml:"cert_file"`
	KeyFile  string `toml:"key_file"`
	// CAFile is an extra PEM bundle trusted for wss:// peers, on top of the
	// system roots.
	CAFile string `toml:"ca_file"`
}

// MulticastConfig is the [multicast] table: LAN discovery with beacons a
// stock Pinecone node understands (UDP port 60606).
type MulticastConfig struct {
	Enable bool `toml:"enable"`
	// Interfaces are regular expressions matched against the whole interface
	// name. Loopback, point-to-point and our own TUN never match.
	Interfaces []string `toml:"interfaces"`
	// ListenPort is the TCP port advertised in beacons and listened on for
	// the peerings they lead to; 0 picks a free port at start-up.
	ListenPort int `toml:"listen_port"`
}

// AdminConfig is the [admin] table: the Unix socket pineconectl talks to.
type AdminConfig struct {
	// Socket is the socket path; "" runs no admin socket at all.
	Socket string `toml:"socket"`
	// Group owns the socket (mode 0660); "" keeps the daemon's primary group.
	Group string `toml:"group"`
}

// MetricsConfig is the [metrics] table.
type MetricsConfig struct {
	// Listen is the host:port serving Prometheus /metrics; "" turns it off.
	Listen string `toml:"listen"`
}

// Default returns the built-in configuration the daemon runs on when there
// is no configuration file. Every call returns fresh slices.
func Default() Config {
	return Config{
		PrivateKeyFile: "/var/lib/pineconed/private.key",
		LogLevel:       slog.LevelInfo,
		LogFormat:      "text",
		TUN: TUNConfig{
			Enable: true,
			Name:   "pinecone0",
			MTU:    0,
		},
		Peers: PeersConfig{
			Listen:      []PeerURI{},
			Static:      []PeerURI{},
			AllowedKeys: []wire.PublicKey{},
			MaxPeers:    limits.DefaultMaxPeers,
			PeerTimeout: limits.DefaultPeerTimeout,
			Advertise:   []PeerURI{},
			CardDirs:    []string{},
		},
		Multicast: MulticastConfig{
			Enable:     true,
			Interfaces: []string{".*"},
			ListenPort: 0,
		},
		Admin: AdminConfig{
			Socket: "/run/pineconed/admin.sock",
			Group:  "",
		},
		Metrics: MetricsConfig{
			Listen: "127.0.0.1:9977",
		},
	}
}

// InterfacePatterns compiles Interfaces, each anchored to match a whole
// interface name ("eth" matches only "eth", "eth.*" matches "eth0"). The
// multicast package uses this so every user of the option agrees. A parsed
// or validated Config never returns an error here.
func (m MulticastConfig) InterfacePatterns() ([]*regexp.Regexp, error) {
	out := make([]*regexp.Regexp, 0, len(m.Interfaces))
	for _, expr := range m.Interfaces {
		re, err := regexp.Compile(`^(?:` + expr + `)$`)
		if err != nil {
			return nil, fmt.Errorf("multicast interface pattern %q: %w", expr, err)
		}
		out = append(out, re)
	}
	return out, nil
}
