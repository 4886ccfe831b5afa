// Package peercard is the peer card: a signed, offline-first description of
// how to peer with a node (its ed25519 key, the URIs to dial, an optional
// name, when it was made and when it expires), written as a few lines of
// Crockford base32 that survive a printout, a USB stick, a chat message or
// being read aloud and retyped. docs/peer-cards.md specifies the format
// byte by byte.
//
// Its place in the data path is before any peering exists: the daemon signs
// its own card (it holds the key), pineconectl prints it, and another node
// verifies it with Verify and turns its URIs into static peers pinned to
// the card's key. Everything here is pure: no I/O, no clock (time is passed
// in) and no dependency beyond the standard library, so other
// implementations can be checked against it.
package peercard
