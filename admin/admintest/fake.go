// Package admintest provides a fake admin.Backend with fixed, plausible
// contents, for testing the admin server, its clients and pineconectl
// without a running node.
package admintest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pineconed/pineconed/admin"
	"github.com/pineconed/pineconed/peercard"
)

// Keys used by the fake. Each is 64 lowercase hex characters.
var (
	SelfKey   = strings.Repeat("1a", 32)
	RootKey   = strings.Repeat("fe", 32)
	ParentKey = strings.Repeat("c3", 32)
	PeerKey2  = strings.Repeat("7b", 32)
	// UnreachableKey never answers pings.
	UnreachableKey = strings.Repeat("0d", 32)
)

// Addresses the fake resolves with Lookup.
const (
	ParentAddress      = "fdc3:c3c3:c3c3:c3c3:c3c3:c3c3:c3c3:c3c3"
	UnreachableAddress = "fd0d:d0d:d0d:d0d:d0d:d0d:d0d:d0d"
	UnknownAddress     = "fd99::1"
)

// ErrNoSuchPeer is what RemovePeer returns for a URI it does not have.
var ErrNoSuchPeer = errors.New("no static peer with that URI")

// Backend is a fake admin.Backend. Its zero value is ready to use. It is
// safe for concurrent use.
type Backend struct {
	mu    sync.Mutex
	stats admin.Stats
	uris  []string
	cards []admin.CardInfo
	// PingRTT is the round-trip time Ping reports (default 1.5 ms).
	PingRTT time.Duration
	// FailSelf makes Self fail with this error.
	FailSelf error
	// Block makes every getter wait for ctx to end, for timeout tests.
	Block bool

	blocked      atomic.Int64
	pings        atomic.Int64 // Ping calls
	pingsWaiting atomic.Int64 // pings of UnreachableKey not yet ended
}

func mustKey(s string) [32]byte {
	k, err := admin.ParseKey(s)
	if err != nil {
		panic(err)
	}
	return k
}

func (b *Backend) block(ctx context.Context) error {
	b.mu.Lock()
	blk := b.Block
	b.mu.Unlock()
	if blk {
		b.blocked.Add(1)
		defer b.blocked.Add(-1)
		<-ctx.Done()
		return ctx.Err()
	}
	return nil
}

// Blocked is how many requests are waiting in a blocked getter now.
func (b *Backend) Blocked() int { return int(b.blocked.Load()) }

// Pings is how many probes Ping has been asked for so far.
func (b *Backend) Pings() int { return int(b.pings.Load()) }

// PingsWaiting is how many pings of UnreachableKey are waiting for their
// context to end now.
func (b *Backend) PingsWaiting() int { return int(b.pingsWaiting.Load()) }

// SetBlock sets Block under the lock.
func (b *Backend) SetBlock(v bool) {
	b.mu.Lock()
	b.Block = v
	b.mu.Unlock()
}

// Self implements admin.Backend.
func (b *Backend) Self(ctx context.Context) (admin.Self, error) {
	if err := b.block(ctx); err != nil {
		return admin.Self{}, err
	}
	if b.FailSelf != nil {
		return admin.Self{}, b.FailSelf
	}
	return admin.Self{
		PublicKey:     SelfKey,
		Address:       "fd1a:1a1a:1a1a:1a1a:1a1a:1a1a:1a1a:1a1a",
		Subnet:        "fc1a:1a1a:1a1a:1a1a::/64",
		Coords:        []uint64{2, 5},
		RootKey:       RootKey,
		RootSequence:  42,
		ParentPort:    1,
		ParentKey:     ParentKey,
		UptimeSeconds: 3723,
		Version:       "v0.1.0-test",
		TunName:       "pcn0",
		TunMTU:        1420,
		PeerCount:     2,
	}, nil
}

// Peers implements admin.Backend.
func (b *Backend) Peers(ctx context.Context) ([]admin.Peer, error) {
	if err := b.block(ctx); err != nil {
		return nil, err
	}
	return []admin.Peer{
		{
			Port: 1, PublicKey: ParentKey, Address: ParentAddress,
			URI: "tcp://[fd00::2]:65432", Transport: admin.TransportTCP, Origin: "static",
			UptimeSeconds: 185, FramesIn: 1000, FramesOut: 900,
			BytesIn: 1258291, BytesOut: 2048, Drops: map[string]uint64{"queue_full": 3},
			Coords: []uint64{2}, IsParent: true, Name: ParentName,
		},
		{
			Port: 2, PublicKey: PeerKey2, Address: "fd7b:7b7b:7b7b:7b7b:7b7b:7b7b:7b7b:7b7b",
			URI: "[fe80::7b%eth0]:41234", Transport: admin.TransportMulticast, Inbound: true, Origin: "lan", Interface: "eth0",
			UptimeSeconds: 59, FramesIn: 10, FramesOut: 12, BytesIn: 512, BytesOut: 700,
			Coords: []uint64{2, 5, 1}, Duplicate: true,
		},
	}, nil
}

// StaticPeers implements admin.Backend: one connected static peer (the
// parent) and one waiting after a refused dial.
func (b *Backend) StaticPeers(ctx context.Context) ([]admin.StaticPeer, error) {
	if err := b.block(ctx); err != nil {
		return nil, err
	}
	return []admin.StaticPeer{
		{URI: "tcp://[fd00::2]:65432", State: admin.StaticStateConnected, StateSeconds: 185},
		{URI: "wss://pinecone.example.org:443/a-rather-long-path/for-the-table", State: admin.StaticStateWaiting, StateSeconds: 12,
			LastError: "dial tcp [2001:db8::5]:443: connect: connection refused", NextAttemptSeconds: 17, Failures: 3},
	}, nil
}

// Tree implements admin.Backend.
func (b *Backend) Tree(ctx context.Context) (admin.Tree, error) {
	if err := b.block(ctx); err != nil {
		return admin.Tree{}, err
	}
	return admin.Tree{
		RootKey: RootKey, RootSequence: 42, Coords: []uint64{2, 5},
		ParentPort: 1, ParentKey: ParentKey,
		Ancestors: []string{RootKey, ParentKey},
		Children:  []admin.TreeChild{{Port: 2, PublicKey: PeerKey2}},
		Announcements: []admin.TreeAnnouncement{
			{Port: 1, PublicKey: ParentKey, RootKey: RootKey, RootSequence: 42, Coords: []uint64{2}, ReceivedAgoSeconds: 1.25},
			{Port: 2, PublicKey: PeerKey2, RootKey: RootKey, RootSequence: 41, Coords: []uint64{2, 5, 1}, ReceivedAgoSeconds: 30.5},
		},
	}, nil
}

// descendingExpiry is the fake descending neighbour's expires_in_seconds.
var descendingExpiry = 8.5

// Snake implements admin.Backend.
func (b *Backend) Snake(ctx context.Context) (admin.Snake, error) {
	if err := b.block(ctx); err != nil {
		return admin.Snake{}, err
	}
	return admin.Snake{
		// The ascending neighbour has no route entry here, so no expiry;
		// the descending one has.
		Ascending:  &admin.SnakeNeighbour{PublicKey: PeerKey2, Port: 2},
		Descending: &admin.SnakeNeighbour{PublicKey: ParentKey, Port: 1, ExpiresInSeconds: &descendingExpiry},
		Entries: []admin.SnakeEntry{
			{OriginKey: PeerKey2, SourcePort: 2, DestinationPort: 1, WatermarkSequence: 17, RootKey: RootKey, RootSequence: 42, ExpiresInSeconds: 8.5},
			{OriginKey: ParentKey, SourcePort: 1, DestinationPort: 0, WatermarkSequence: 3, RootKey: RootKey, RootSequence: 42, ExpiresInSeconds: 2},
		},
	}, nil
}

// Sessions implements admin.Backend.
func (b *Backend) Sessions(ctx context.Context) ([]admin.Session, error) {
	if err := b.block(ctx); err != nil {
		return nil, err
	}
	return []admin.Session{
		{RemoteKey: ParentKey, RemoteAddress: ParentAddress, State: admin.SessionEstablished,
			AgeSeconds: 305, BytesIn: 3 << 20, BytesOut: 1536, LastRekeySeconds: 65, PeerMTU: 1420, Name: ParentName},
		{RemoteKey: PeerKey2, RemoteAddress: "fd7b:7b7b:7b7b:7b7b:7b7b:7b7b:7b7b:7b7b", State: admin.SessionHandshaking,
			AgeSeconds: 1, LastRekeySeconds: -1},
	}, nil
}

// SetStats replaces the snapshot Stats returns.
func (b *Backend) SetStats(s admin.Stats) {
	b.mu.Lock()
	b.stats = s
	b.mu.Unlock()
}

// Stats implements admin.Backend and admin.StatsSource.
func (b *Backend) Stats(ctx context.Context) (admin.Stats, error) {
	if err := b.block(ctx); err != nil {
		return admin.Stats{}, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.stats, nil
}

// URIs returns the static peer URIs added so far.
func (b *Backend) URIs() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.uris...)
}

// AddPeer implements admin.Backend. It rejects URIs without a known scheme,
// like the daemon would.
func (b *Backend) AddPeer(ctx context.Context, uri string) error {
	if !strings.HasPrefix(uri, "tcp://") && !strings.HasPrefix(uri, "ws://") && !strings.HasPrefix(uri, "wss://") {
		return fmt.Errorf("unsupported peer URI %q: want tcp://, ws:// or wss://", uri)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, u := range b.uris {
		if u == uri {
			return fmt.Errorf("already peering with %s", uri)
		}
	}
	b.uris = append(b.uris, uri)
	return nil
}

// RemovePeer implements admin.Backend.
func (b *Backend) RemovePeer(ctx context.Context, uri string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, u := range b.uris {
		if u == uri {
			b.uris = append(b.uris[:i], b.uris[i+1:]...)
			return nil
		}
	}
	return fmt.Errorf("%s: %w", uri, ErrNoSuchPeer)
}

// Lookup implements admin.Backend: the parent's and the unreachable node's
// addresses resolve, anything else is not found.
func (b *Backend) Lookup(ctx context.Context, addr string) ([32]byte, bool, error) {
	if err := b.block(ctx); err != nil {
		return [32]byte{}, false, err
	}
	switch addr {
	case ParentAddress:
		return mustKey(ParentKey), true, nil
	case UnreachableAddress:
		return mustKey(UnreachableKey), false, nil
	}
	return [32]byte{}, false, fmt.Errorf("no node owns %s", addr)
}

// Ping implements admin.Backend: UnreachableKey never answers, other keys
// answer after PingRTT without actually waiting.
func (b *Backend) Ping(ctx context.Context, key [32]byte) (time.Duration, error) {
	b.pings.Add(1)
	if key == mustKey(UnreachableKey) {
		b.pingsWaiting.Add(1)
		defer b.pingsWaiting.Add(-1)
		<-ctx.Done()
		return 0, ctx.Err()
	}
	if b.PingRTT > 0 {
		return b.PingRTT, nil
	}
	return 1500 * time.Microsecond, nil
}

// CardNow is the fake's clock for peer cards: Card signs cards made at this
// time and ImportCard verifies them at it, so that outputs are the same on
// every run.
var CardNow = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

// CardSeed is the seed of the key the fake signs its own card with.
var CardSeed = bytes.Repeat([]byte{0x1a}, ed25519.SeedSize)

// ParentName is the name the fake's parent has on its peer card.
const ParentName = "relay-1"

// Card implements admin.Backend: a real card, signed with CardSeed's key at
// CardNow, for the listener tcp://HOST:65432 (HOST "fd00::1" by default).
func (b *Backend) Card(ctx context.Context, a admin.CardArgs) (admin.CardResponse, error) {
	host := a.Host
	if host == "" {
		host = "fd00::1"
	}
	c, err := peercard.Sign(peercard.Card{
		Name:    a.Name,
		URIs:    []string{"tcp://" + net.JoinHostPort(host, "65432")},
		Created: CardNow,
		Expires: CardNow.Add(time.Duration(a.ValidSeconds) * time.Second),
	}, ed25519.NewKeyFromSeed(CardSeed))
	if err != nil {
		return admin.CardResponse{}, err
	}
	text, err := c.Encode()
	if err != nil {
		return admin.CardResponse{}, err
	}
	return admin.CardResponse{Card: text, CardInfo: fakeCardInfo(c, "")}, nil
}

func fakeCardInfo(c peercard.Card, source string) admin.CardInfo {
	return admin.CardInfo{
		PublicKey:        hex.EncodeToString(c.Key[:]),
		Name:             c.Name,
		URIs:             c.URIs,
		Created:          c.Created.Format(time.RFC3339),
		Expires:          c.Expires.Format(time.RFC3339),
		ExpiresInSeconds: int64(c.Expires.Sub(CardNow).Seconds()),
		Source:           source,
	}
}

// ImportCard implements admin.Backend: it verifies the card at CardNow and
// holds it, replacing one with the same key.
func (b *Backend) ImportCard(ctx context.Context, text string) (admin.CardInfo, bool, error) {
	c, err := peercard.Verify([]byte(text), CardNow)
	if err != nil {
		return admin.CardInfo{}, false, fmt.Errorf("peer card refused: %w", err)
	}
	info := fakeCardInfo(c, "import")
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, h := range b.cards {
		if h.PublicKey == info.PublicKey {
			b.cards[i] = info
			return info, true, nil
		}
	}
	b.cards = append(b.cards, info)
	return info, false, nil
}

// Cards implements admin.Backend.
func (b *Backend) Cards(ctx context.Context) ([]admin.CardInfo, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]admin.CardInfo(nil), b.cards...), nil
}

// RemoveCard implements admin.Backend.
func (b *Backend) RemoveCard(ctx context.Context, id string) (admin.CardInfo, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, h := range b.cards {
		if h.PublicKey == id || h.Name == id {
			b.cards = append(b.cards[:i], b.cards[i+1:]...)
			return h, nil
		}
	}
	return admin.CardInfo{}, fmt.Errorf("no peer card with key or name %q", id)
}

// KeyName implements admin.Backend: the parent is ParentName.
func (b *Backend) KeyName(key [32]byte) string {
	if key == mustKey(ParentKey) {
		return ParentName
	}
	return ""
}
