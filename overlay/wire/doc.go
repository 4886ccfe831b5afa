// Package wire is the Pinecone wire codec: the 104-byte handshake hello, the
// frames of types 0–4 that travel on every peering, the big-endian varints
// and coordinate lists inside them, the signatures they carry, and the 34-byte
// LAN discovery beacon.
//
// It sits at the very edge of the data path. A link reader hands each whole
// frame it read from a peer to Decode, and the router hands every frame it
// wants to send to a message's Append method before the link writer puts the
// bytes on the stream. Nothing here does I/O, keeps state or looks at a clock.
//
// Parsing is strict where the reference implementation is lax (docs/protocol.md §3.8):
// every length and field is bounds-checked, over-long or overflowing varints
// and trailing bytes are errors, and encoders refuse to produce a frame over
// 65 535 bytes instead of silently truncating its length. A stock node crashes
// on some malformed frames, so we never emit one and we never accept one.
//
// Decode keeps slices into its input (Traffic payloads, bootstrap and wakeup
// payloads) instead of copying them: the caller must not reuse the buffer
// while the message is in use.
package wire
