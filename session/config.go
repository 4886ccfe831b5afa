package session

import (
	"crypto/rand"
	"io"
	"time"

	"github.com/pineconed/pineconed/envelope"
	"github.com/pineconed/pineconed/internal/defaults"
	"github.com/pineconed/pineconed/overlay/wire"
)

// The Manager's configuration and the Transport it talks to.

// Transport is the one interface a Manager talks to: it sends through it
// and reports to it what the layers above need to know. The packet-path
// package (datapath) implements it over the overlay and the TUN. Its
// methods are called without Manager locks held, from whichever goroutine
// called into the Manager, and must not block on the network.
type Transport interface {
	// Send hands the message at buf[off:] to the overlay for dst; best
	// effort. When off > 0, buf is from internal/bufpool and the off bytes
	// in front of the message are free for the overlay's frame header
	// (overlay.Node.SendBuffer); handshake messages come with off 0 in a
	// plain slice. The callee owns buf.
	Send(dst wire.PublicKey, buf []byte, off int)
	// Deliver receives a decrypted IPv6 packet from src whose source
	// address has been checked. packet aliases the buffer given to
	// HandlePayload and is valid only during the call.
	Deliver(src wire.PublicKey, packet []byte)
	// EchoReply receives the answer to SendEcho. data is valid only during
	// the call.
	EchoReply(src wire.PublicKey, id uint64, data []byte)
	// Established is called when a keypair with remote becomes current;
	// latency is the time since the handshake began (zero for the
	// responder). The resolver should learn remote from it.
	Established(remote wire.PublicKey, initiator bool, latency time.Duration)
	// Unreachable receives the IPv6 packets queued for a peer whose
	// handshake was given up. The callee owns them.
	Unreachable(dst wire.PublicKey, packets [][]byte)
}

// MaxPlaintext is the largest inner message (type byte included) whose
// transport message fits a Traffic frame's 16-bit payload length.
const MaxPlaintext = 65535 - envelope.TransportHeaderSize - envelope.TagSize

// MaxPacket is the largest IPv6 packet Send accepts.
const MaxPacket = MaxPlaintext - 1

// Config tunes a Manager. Zero durations and counts take the defaults shown.
type Config struct {
	// MTU is our TUN MTU, announced to peers in handshakes. Default 1280.
	MTU int
	// RekeyAfterTime: default 120 s.
	RekeyAfterTime time.Duration
	// RejectAfterTime: a keypair is unusable after this. Default 180 s.
	RejectAfterTime time.Duration
	// RekeyAfterMessages: default 2^60.
	RekeyAfterMessages uint64
	// RejectAfterMessages: default 2^64 - 2^13 - 1 (WireGuard's).
	RejectAfterMessages uint64
	// RekeyTimeout is the handshake retry interval. Default 5 s.
	RekeyTimeout time.Duration
	// HandshakeGiveUp: default 90 s.
	HandshakeGiveUp time.Duration
	// KeepaliveTimeout: default 10 s.
	KeepaliveTimeout time.Duration
	// IdleTimeout: a peer silent for this long is forgotten. Default 180 s.
	IdleTimeout time.Duration
	// MaxQueue bounds packets waiting for a handshake per peer. Default 64.
	MaxQueue int
	// MaxPeers bounds the number of peers with state. Default 4096.
	MaxPeers int
	// MaxHalfOpen bounds the peers created by an initiation whose keypair
	// the initiator has not yet confirmed; the oldest is evicted beyond
	// it (see the load defence in defence.go). Default MaxPeers/4.
	MaxHalfOpen int
	// InitiationRate and InitiationBurst bound the initiations from all
	// sources that get Diffie-Hellman, per second and at once; below half
	// the burst the Manager asks for cookies. Default 200/s, 50: a
	// response costs four X25519 operations, so this caps handshakes at a
	// few per cent of a core, while 4 096 peers rekeying every
	// RekeyAfterTime need about 35/s.
	InitiationRate  float64
	InitiationBurst int
	// PerSourceRate and PerSourceBurst bound them per source key.
	// Default 5/s, 10 (an honest node retries every RekeyTimeout).
	PerSourceRate  float64
	PerSourceBurst int
	// Rand is the entropy for ephemeral keys. Default crypto/rand.
	Rand io.Reader
}

func (c Config) withDefaults() Config {
	if c.MTU <= 0 {
		c.MTU = 1280
	}
	if c.MTU > 65535 {
		c.MTU = 65535
	}
	defaults.IfNotPositive(&c.RekeyAfterTime, 120*time.Second)
	defaults.IfNotPositive(&c.RejectAfterTime, 180*time.Second)
	defaults.IfNotPositive(&c.RekeyTimeout, 5*time.Second)
	defaults.IfNotPositive(&c.HandshakeGiveUp, 90*time.Second)
	defaults.IfNotPositive(&c.KeepaliveTimeout, 10*time.Second)
	defaults.IfNotPositive(&c.IdleTimeout, 180*time.Second)
	defaults.IfZero(&c.RekeyAfterMessages, 1<<60)
	defaults.IfZero(&c.RejectAfterMessages, ^uint64(0)-(1<<13))
	defaults.IfNotPositive(&c.MaxQueue, 64)
	defaults.IfNotPositive(&c.MaxPeers, 4096)
	if c.MaxHalfOpen <= 0 || c.MaxHalfOpen > c.MaxPeers {
		c.MaxHalfOpen = max(1, c.MaxPeers/4)
	}
	defaults.IfNotPositive(&c.InitiationRate, 200)
	defaults.IfNotPositive(&c.InitiationBurst, 50)
	defaults.IfNotPositive(&c.PerSourceRate, 5)
	defaults.IfNotPositive(&c.PerSourceBurst, 10)
	defaults.IfZero(&c.Rand, rand.Reader)
	return c
}
