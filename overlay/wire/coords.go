package wire

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
)

// Coordinates are a node's position in the spanning tree: the port numbers on
// the path from the root, root-most first. The root's coordinates are empty.
type Coordinates []uint64

// EncodedLen is the number of bytes the coordinates take on the wire,
// including their 2-byte length prefix.
func (c Coordinates) EncodedLen() int {
	n := 2
	for _, p := range c {
		n += VarintLen(p)
	}
	return n
}

// AppendCoordinates appends c as u16be(byte length) ‖ varint × n
// (docs/protocol.md §2.3). The length prefix counts bytes, not ports.
func AppendCoordinates(dst []byte, c Coordinates) ([]byte, error) {
	body := c.EncodedLen() - 2
	if body > 0xffff {
		return dst, fmt.Errorf("coordinates of %d ports need %d bytes, over the 65535 the length field holds", len(c), body)
	}
	dst = binary.BigEndian.AppendUint16(dst, uint16(body))
	for _, p := range c {
		dst = AppendVarint(dst, p)
	}
	return dst, nil
}

// ReadCoordinates decodes a coordinate list from the start of b and returns it
// with the number of bytes used. The varints must fill the declared length
// exactly.
func ReadCoordinates(b []byte) (Coordinates, int, error) {
	if len(b) < 2 {
		return nil, 0, fmt.Errorf("coordinates: %w", errShort)
	}
	n := int(binary.BigEndian.Uint16(b))
	body := b[2:]
	if len(body) < n {
		return nil, 0, fmt.Errorf("coordinates: length %d but %d bytes left: %w", n, len(body), errShort)
	}
	body = body[:n]
	var c Coordinates
	if n > 0 {
		c = make(Coordinates, 0, n)
	}
	for len(body) > 0 {
		v, used, err := ReadVarint(body)
		if err != nil {
			return nil, 0, fmt.Errorf("coordinates: %w", err)
		}
		c = append(c, v)
		body = body[used:]
	}
	return c, 2 + n, nil
}

// Equal reports whether two coordinate lists are the same path.
func (c Coordinates) Equal(o Coordinates) bool {
	if len(c) != len(o) {
		return false
	}
	for i := range c {
		if c[i] != o[i] {
			return false
		}
	}
	return true
}

// CommonPrefixLen is the number of leading ports c and o share: the depth of
// their nearest common ancestor in the tree.
func (c Coordinates) CommonPrefixLen(o Coordinates) int {
	n := min(len(c), len(o))
	for i := 0; i < n; i++ {
		if c[i] != o[i] {
			return i
		}
	}
	return n
}

// DistanceTo is the number of tree hops between c and o: up to their common
// ancestor and down again.
func (c Coordinates) DistanceTo(o Coordinates) int {
	return len(c) + len(o) - 2*c.CommonPrefixLen(o)
}

// String prints the ports as "[1 2 3]", the form the reference uses in logs.
func (c Coordinates) String() string {
	var sb strings.Builder
	sb.WriteByte('[')
	for i, p := range c {
		if i > 0 {
			sb.WriteByte(' ')
		}
		sb.WriteString(strconv.FormatUint(p, 10))
	}
	sb.WriteByte(']')
	return sb.String()
}
