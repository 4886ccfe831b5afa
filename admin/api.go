package admin

import (
	"context"
	"encoding/json"
	"time"
)

// Request names understood by the server. They are part of the stable API.
const (
	ReqGetSelf     = "getSelf"
	ReqGetPeers    = "getPeers"
	ReqGetTree     = "getTree"
	ReqGetSnake    = "getSnake"
	ReqGetSessions = "getSessions"
	ReqGetStats    = "getStats"
	ReqAddPeer     = "addPeer"
	ReqRemovePeer  = "removePeer"
	ReqLookup      = "lookup"
	ReqPing        = "ping"
	ReqGetCard     = "getCard"
	ReqImportCard  = "importCard"
	ReqListCards   = "listCards"
	ReqRemoveCard  = "removeCard"
)

// Reply status values.
const (
	StatusSuccess = "success"
	StatusError   = "error"
)

// Request is one line sent by a client.
type Request struct {
	Request   string          `json:"request"`
	Arguments json.RawMessage `json:"arguments,omitempty"`
}

// Reply is one line sent back by the server. Exactly one of Response (on
// success) and Error (on error) is set.
type Reply struct {
	Status   string          `json:"status"`
	Response json.RawMessage `json:"response,omitempty"`
	Error    string          `json:"error,omitempty"`
}

// Backend is what the daemon implements to answer admin requests. The
// server validates every argument before calling it, so a Backend sees
// well-formed values only. Every method must return promptly once ctx is
// done: Server.Close waits for calls in flight.
//
// Keys are passed as raw 32-byte ed25519 public keys (wire.PublicKey
// converts to and from [32]byte directly); in responses they are
// 64-character lowercase hex strings.
type Backend interface {
	// Self describes this node.
	Self(ctx context.Context) (Self, error)
	// Peers lists the current peerings, one entry per port.
	Peers(ctx context.Context) ([]Peer, error)
	// StaticPeers lists the configured static peers, connected or not,
	// with their state (the StaticState* constants).
	StaticPeers(ctx context.Context) ([]StaticPeer, error)
	// Tree describes our position in the spanning tree.
	Tree(ctx context.Context) (Tree, error)
	// Snake describes the SNEK neighbours and routing table.
	Snake(ctx context.Context) (Snake, error)
	// Sessions lists the end-to-end sessions.
	Sessions(ctx context.Context) ([]Session, error)
	// Stats returns the counters that the metrics also expose. It has the
	// signature of StatsSource, so the daemon can hand it to the metrics
	// collector as well.
	Stats(ctx context.Context) (Stats, error)
	// AddPeer starts a static peering to uri at run time (e.g.
	// "tcp://[fd00::1]:65432", "wss://host/path"). uri is non-empty and
	// no longer than MaxURILength; the backend checks the scheme.
	AddPeer(ctx context.Context, uri string) error
	// RemovePeer stops the static peering to uri and drops its links.
	RemovePeer(ctx context.Context, uri string) error
	// Lookup resolves an overlay IPv6 address (node address or an address
	// inside a node's subnet) to the owner's key. cached reports that the
	// answer came from the resolver cache without network traffic.
	Lookup(ctx context.Context, addr string) (key [32]byte, cached bool, err error)
	// Ping sends one echo request to key over the overlay and waits for the
	// matching reply, returning the round-trip time. When ctx ends first it
	// returns ctx's error, which the server reports as a lost probe. Replies
	// must be matched by an identifier the backend picks, so that a late
	// reply to an earlier probe is never counted for a later one.
	Ping(ctx context.Context, key [32]byte) (rtt time.Duration, err error)
	// Card signs this node's peer card (see package peercard) for the
	// validated args: its text and what it says.
	Card(ctx context.Context, args CardArgs) (CardResponse, error)
	// ImportCard verifies a peer card's text and starts peering with its
	// URIs pinned to its key; replaced reports that it took the place of
	// an older card for the same key. A refused card changes nothing.
	ImportCard(ctx context.Context, text string) (info CardInfo, replaced bool, err error)
	// Cards lists the peer cards held.
	Cards(ctx context.Context) ([]CardInfo, error)
	// RemoveCard forgets the card whose key (64 hex) or name is id and
	// stops its peers, returning what it was.
	RemoveCard(ctx context.Context, id string) (CardInfo, error)
	// KeyName is the name on key's peer card, "" when there is none. Peers
	// and Sessions fill their Name fields themselves; lookup uses this.
	KeyName(key [32]byte) string
}

// Limits on request arguments.
const (
	// MaxURILength bounds the uri argument of addPeer and removePeer.
	MaxURILength = 2048
	// MaxPingCount bounds the count argument of ping.
	MaxPingCount = 100
	// MinPingIntervalMS and MaxPingIntervalMS bound interval_ms.
	MinPingIntervalMS = 10
	MaxPingIntervalMS = 60_000
	// MaxPingTimeoutMS bounds timeout_ms.
	MaxPingTimeoutMS = 60_000
	// MaxPingDurationMS bounds (count-1)*interval_ms + timeout_ms, the
	// longest a ping request can keep a connection busy.
	MaxPingDurationMS = 300_000
	// MaxCardTextLength bounds the card argument of importCard (the
	// largest text package peercard reads).
	MaxCardTextLength = 16 << 10
	// MaxCardHostLength bounds getCard's host.
	MaxCardHostLength = 255
	// MaxCardValiditySeconds bounds getCard's valid_seconds (ten years).
	MaxCardValiditySeconds = 10 * 366 * 24 * 3600
	// DefaultCardValiditySeconds is getCard's validity when omitted.
	DefaultCardValiditySeconds = 30 * 24 * 3600
	// Defaults for omitted ping arguments.
	DefaultPingCount      = 4
	DefaultPingIntervalMS = 1000
	DefaultPingTimeoutMS  = 2000
)

// Self is the response to getSelf.
type Self struct {
	PublicKey     string   `json:"public_key"`
	Address       string   `json:"address"`
	Subnet        string   `json:"subnet"`
	Coords        []uint64 `json:"coords"`
	RootKey       string   `json:"root_key"`
	RootSequence  uint64   `json:"root_sequence"`
	ParentPort    uint64   `json:"parent_port"` // 0 when we have no parent (we are root)
	ParentKey     string   `json:"parent_key"`  // "" when we have no parent
	UptimeSeconds int64    `json:"uptime_seconds"`
	Version       string   `json:"version"`
	TunName       string   `json:"tun_name"` // "" when running without a TUN device
	TunMTU        int      `json:"tun_mtu"`
	PeerCount     int      `json:"peer_count"`
}

// Transport values of Peer.Transport.
const (
	TransportTCP       = "tcp"
	TransportWS        = "ws"
	TransportWSS       = "wss"
	TransportMulticast = "multicast"
)

// Peer is one entry of the getPeers response.
type Peer struct {
	Port      uint64 `json:"port"`
	PublicKey string `json:"public_key"`
	Address   string `json:"address"`
	URI       string `json:"uri"`
	Transport string `json:"transport"`
	Inbound   bool   `json:"inbound"`
	// Origin is what made the peering: "static", "listener", "lan",
	// "admin" or "card".
	Origin string `json:"origin"`
	// Interface is the local network interface a link-local or LAN
	// peering runs over; "" when the kernel's routing chooses.
	Interface     string            `json:"interface"`
	UptimeSeconds int64             `json:"uptime_seconds"`
	FramesIn      uint64            `json:"frames_in"`
	FramesOut     uint64            `json:"frames_out"`
	BytesIn       uint64            `json:"bytes_in"`
	BytesOut      uint64            `json:"bytes_out"`
	Drops         map[string]uint64 `json:"drops"`
	Coords        []uint64          `json:"coords"`
	IsParent      bool              `json:"is_parent"`
	Duplicate     bool              `json:"duplicate"` // another link to the same key exists
	Name          string            `json:"name"`      // from the key's peer card; "" when none
}

// PeersResponse is the response to getPeers.
type PeersResponse struct {
	Peers []Peer `json:"peers"`
	// StaticDown are the configured static peers with no peering up, and
	// why: what an operator looks for when a peer is missing from Peers.
	StaticDown []StaticPeer `json:"static_down"`
}

// States of a configured static peer.
const (
	StaticStateConnected = "connected" // a peering is up
	StaticStateDialling  = "dialling"  // dialling or handshaking now
	StaticStateWaiting   = "waiting"   // backing off until the next attempt
)

// StaticPeer is one configured static peer and where its dialling stands.
type StaticPeer struct {
	URI   string `json:"uri"`
	State string `json:"state"`
	// StateSeconds is how long it has been in State.
	StateSeconds int64 `json:"state_seconds"`
	// LastError is why the last attempt failed or the last peering ended;
	// "" before the first failure.
	LastError string `json:"last_error"`
	// NextAttemptSeconds is the time until the next dial while waiting,
	// 0 otherwise.
	NextAttemptSeconds int64 `json:"next_attempt_seconds"`
	// Failures counts attempts since the last peering that stayed up long
	// enough to reset the back-off.
	Failures int `json:"failures"`
}

// Tree is the response to getTree.
type Tree struct {
	RootKey      string   `json:"root_key"`
	RootSequence uint64   `json:"root_sequence"`
	Coords       []uint64 `json:"coords"`
	ParentPort   uint64   `json:"parent_port"`
	ParentKey    string   `json:"parent_key"`
	// Ancestors are the keys from the root down to our parent, as signed
	// into the parent's announcement; empty at the root.
	Ancestors []string `json:"ancestors"`
	// Children are the peers whose last announcement places them directly
	// below us in our tree.
	Children      []TreeChild        `json:"children"`
	Announcements []TreeAnnouncement `json:"announcements"`
}

// TreeChild is a peer that has us as its parent.
type TreeChild struct {
	Port      uint64 `json:"port"`
	PublicKey string `json:"public_key"`
}

// TreeAnnouncement summarises the last announcement accepted from a peer.
type TreeAnnouncement struct {
	Port               uint64   `json:"port"`
	PublicKey          string   `json:"public_key"`
	RootKey            string   `json:"root_key"`
	RootSequence       uint64   `json:"root_sequence"`
	Coords             []uint64 `json:"coords"`
	ReceivedAgoSeconds float64  `json:"received_ago_seconds"`
}

// Snake is the response to getSnake.
type Snake struct {
	Ascending  *SnakeNeighbour `json:"ascending"`  // null when unknown
	Descending *SnakeNeighbour `json:"descending"` // null when unknown
	Entries    []SnakeEntry    `json:"entries"`
}

// SnakeNeighbour is our nearest known key above or below us on the snake.
type SnakeNeighbour struct {
	PublicKey string `json:"public_key"`
	Port      uint64 `json:"port"`
	// ExpiresInSeconds is nil (null) when no expiry is known: the
	// ascending neighbour has none unless it also bootstrapped through us.
	ExpiresInSeconds *float64 `json:"expires_in_seconds"`
}

// SnakeEntry is one SNEK routing table entry, keyed by originator.
type SnakeEntry struct {
	OriginKey         string  `json:"origin_key"`
	SourcePort        uint64  `json:"source_port"`
	DestinationPort   uint64  `json:"destination_port"` // 0 when the bootstrap ended here
	WatermarkSequence uint64  `json:"watermark_sequence"`
	RootKey           string  `json:"root_key"`
	RootSequence      uint64  `json:"root_sequence"`
	ExpiresInSeconds  float64 `json:"expires_in_seconds"`
}

// Session states reported in Session.State and Stats.SessionsByState.
const (
	SessionHandshaking = "handshaking"
	SessionEstablished = "established"
	SessionRekeying    = "rekeying"
	SessionExpired     = "expired"
)

// Session is one entry of the getSessions response.
type Session struct {
	RemoteKey        string `json:"remote_key"`
	RemoteAddress    string `json:"remote_address"`
	State            string `json:"state"`
	AgeSeconds       int64  `json:"age_seconds"`
	BytesIn          uint64 `json:"bytes_in"`
	BytesOut         uint64 `json:"bytes_out"`
	LastRekeySeconds int64  `json:"last_rekey_seconds"` // -1 when never rekeyed
	PeerMTU          int    `json:"peer_mtu"`
	Name             string `json:"name"` // from the key's peer card; "" when none
}

// SessionsResponse is the response to getSessions.
type SessionsResponse struct {
	Sessions []Session `json:"sessions"`
}

// URIArgs are the arguments of addPeer and removePeer.
type URIArgs struct {
	URI string `json:"uri"`
}

// Empty is the response to requests that return nothing (addPeer,
// removePeer): an empty JSON object.
type Empty struct{}

// LookupArgs are the arguments of lookup.
type LookupArgs struct {
	Address string `json:"address"`
}

// LookupResponse is the response to lookup.
type LookupResponse struct {
	Address    string  `json:"address"`
	PublicKey  string  `json:"public_key"`
	Cached     bool    `json:"cached"`
	DurationMS float64 `json:"duration_ms"`
	Name       string  `json:"name"` // from the key's peer card; "" when none
}

// PingArgs are the arguments of ping. Zero values take the defaults.
type PingArgs struct {
	Target     string `json:"target"` // overlay IPv6 address or 64-char hex key
	Count      int    `json:"count,omitempty"`
	IntervalMS int    `json:"interval_ms,omitempty"`
	TimeoutMS  int    `json:"timeout_ms,omitempty"`
}

// PingProbe is the result of one echo request.
type PingProbe struct {
	Seq   int     `json:"seq"` // from 1
	Lost  bool    `json:"lost"`
	RTTMS float64 `json:"rtt_ms"` // 0 when lost
	Error string  `json:"error"`  // why it was lost, "" when it was not
}

// PingResponse is the response to ping.
type PingResponse struct {
	Target      string      `json:"target"`
	PublicKey   string      `json:"public_key"`
	Address     string      `json:"address"` // "" when the target was a key
	Probes      []PingProbe `json:"probes"`
	Sent        int         `json:"sent"`
	Received    int         `json:"received"`
	LossPercent float64     `json:"loss_percent"`
	MinRTTMS    float64     `json:"min_rtt_ms"` // min/avg/max are 0 when nothing came back
	AvgRTTMS    float64     `json:"avg_rtt_ms"`
	MaxRTTMS    float64     `json:"max_rtt_ms"`
}

// CardArgs are the arguments of getCard.
type CardArgs struct {
	// Host replaces the address of every listener on the card ("" keeps
	// it, which a listener on [::] or 0.0.0.0 cannot). Ignored when
	// [peers] advertise is configured.
	Host string `json:"host,omitempty"`
	// Name is the human name on the card, "" for none.
	Name string `json:"name,omitempty"`
	// ValidSeconds is how long the card is valid; 0 means
	// DefaultCardValiditySeconds.
	ValidSeconds int64 `json:"valid_seconds,omitempty"`
}

// CardResponse is the response to getCard: the card's text and its fields.
type CardResponse struct {
	Card string `json:"card"`
	CardInfo
}

// CardInfo describes a peer card. Times are RFC 3339 in UTC.
type CardInfo struct {
	PublicKey        string   `json:"public_key"`
	Name             string   `json:"name"`
	URIs             []string `json:"uris"`
	Created          string   `json:"created"`
	Expires          string   `json:"expires"`
	ExpiresInSeconds int64    `json:"expires_in_seconds"`
	// Source is "import" for a card imported over the admin socket (and
	// kept in the daemon's state directory), else the *.card file it was
	// read from. Empty in getCard responses.
	Source string `json:"source"`
}

// CardSourceImport is CardInfo.Source for a card imported over the admin
// socket.
const CardSourceImport = "import"

// ImportCardArgs are the arguments of importCard.
type ImportCardArgs struct {
	Card string `json:"card"`
}

// ImportCardResponse is the response to importCard.
type ImportCardResponse struct {
	CardInfo
	Replaced bool `json:"replaced"`
}

// CardsResponse is the response to listCards.
type CardsResponse struct {
	Cards []CardInfo `json:"cards"`
}

// RemoveCardArgs are the arguments of removeCard.
type RemoveCardArgs struct {
	// Card is the card's key (64 hex) or its name.
	Card string `json:"card"`
}
