package wire

import (
	"encoding/binary"
	"fmt"
)

// BeaconSize is the size of a LAN discovery beacon: a key and a TCP port
// (docs/protocol.md §9.3). Beacons carry no signature: they only suggest where to
// dial, and the handshake then proves the key.
const BeaconSize = KeySize + 2

// AppendBeacon encodes a beacon advertising key at tcpPort.
func AppendBeacon(dst []byte, key PublicKey, tcpPort uint16) []byte {
	dst = append(dst, key[:]...)
	return binary.BigEndian.AppendUint16(dst, tcpPort)
}

// ParseBeacon decodes a beacon. Anything but exactly 34 bytes, or a port of
// 0, is refused: the caller ignores that datagram and keeps listening.
func ParseBeacon(b []byte) (PublicKey, uint16, error) {
	if len(b) != BeaconSize {
		return PublicKey{}, 0, fmt.Errorf("beacon of %d bytes, want %d", len(b), BeaconSize)
	}
	port := binary.BigEndian.Uint16(b[KeySize:])
	if port == 0 {
		return PublicKey{}, 0, fmt.Errorf("beacon advertises port 0")
	}
	return PublicKey(b[:KeySize]), port, nil
}
