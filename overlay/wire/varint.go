package wire

import "errors"

// MaxVarintLen is the longest minimal encoding of a 64-bit value.
const MaxVarintLen = 10

// Varint errors. The reference decoder accepts all of these inputs and then
// misbehaves; we refuse them.
var (
	ErrVarintTruncated = errors.New("varint truncated")
	ErrVarintOverlong  = errors.New("varint not in minimal form")
	ErrVarintOverflow  = errors.New("varint overflows 64 bits")
)

// AppendVarint appends v in Pinecone's varint form: base-128, most
// significant group first, continuation bit 0x80 on every byte but the last
// (docs/protocol.md §2.1). This is not LEB128, whose groups run the other way.
func AppendVarint(dst []byte, v uint64) []byte {
	n := VarintLen(v)
	for i := n - 1; i >= 0; i-- {
		b := byte(v>>(7*uint(i))) & 0x7f
		if i > 0 {
			b |= 0x80
		}
		dst = append(dst, b)
	}
	return dst
}

// VarintLen is the number of bytes AppendVarint writes for v.
func VarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// ReadVarint decodes one varint from the start of b and returns the value
// and the number of bytes used. Only the minimal form is accepted.
func ReadVarint(b []byte) (uint64, int, error) {
	var v uint64
	for i, c := range b {
		if i == 0 && c == 0x80 {
			// A leading group of zero bits only pads the value.
			return 0, 0, ErrVarintOverlong
		}
		if i == MaxVarintLen-1 && v > (1<<57)-1 {
			return 0, 0, ErrVarintOverflow
		}
		if i >= MaxVarintLen {
			return 0, 0, ErrVarintOverflow
		}
		v = v<<7 | uint64(c&0x7f)
		if c&0x80 == 0 {
			return v, i + 1, nil
		}
	}
	return 0, 0, ErrVarintTruncated
}
