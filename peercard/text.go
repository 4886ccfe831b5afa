package peercard

import (
	"bytes"
	"encoding/base32"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"strconv"
	"strings"
)

// Header is the first line of every card's text, followed by " v" and the
// version.
const Header = "pineconed peer card"

// endWord starts the last line of a card, which carries the CRC-32.
const endWord = "end"

// Layout of the text: each body line has SymbolsPerLine base32 symbols
// (GroupSize at a time, separated by spaces) and one check symbol.
const (
	SymbolsPerLine = 32
	GroupSize      = 4
)

// MaxTextSize bounds the text Parse reads: a card of MaxBinarySize bytes
// with generous room for blank lines, comments before the header and
// line endings.
const MaxTextSize = 16 << 10

// alphabet is Crockford's base32: digits and letters without I, L, O, U.
const alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// checkAlphabet adds Crockford's five extra check symbols for values 32..36.
const checkAlphabet = alphabet + "*~$=U"

var encoding = base32.NewEncoding(alphabet).WithPadding(base32.NoPadding)

// symbolValue maps an input byte to its value under Crockford's decoding
// rules (either case; O is 0; I and L are 1), or -1. Hyphens and spaces are
// skipped before this is consulted.
var symbolValue = func() (t [256]int8) {
	for i := range t {
		t[i] = -1
	}
	for i, c := range checkAlphabet {
		t[c] = int8(i)
		if c >= 'A' && c <= 'Z' {
			t[c+'a'-'A'] = int8(i)
		}
	}
	for _, c := range "Oo" {
		t[c] = 0
	}
	for _, c := range "IiLl" {
		t[c] = 1
	}
	return t
}()

// lineCheck is the check symbol of body line n (from 1): Crockford's mod-37
// check with the symbol's position as weight, plus the line number. 37 is
// prime and the weights 1..32 are distinct and non-zero, so one wrong
// symbol, or two neighbours swapped, always changes the check.
func lineCheck(n int, values []byte) byte {
	sum := n
	for i, v := range values {
		sum += (i + 1) * int(v)
	}
	return checkAlphabet[sum%37]
}

// Encode writes the card's text: the header, the body lines and the end
// line. The card must be signed (see Sign); Encode of a card that Marshal
// refuses returns the error.
func (c Card) Encode() (string, error) {
	bin, err := c.Marshal()
	if err != nil {
		return "", err
	}
	syms := encoding.EncodeToString(bin)
	var b strings.Builder
	fmt.Fprintf(&b, "%s v%d\n", Header, Version)
	values := make([]byte, 0, SymbolsPerLine)
	for n := 1; len(syms) > 0; n++ {
		line := syms[:min(SymbolsPerLine, len(syms))]
		syms = syms[len(line):]
		values = values[:0]
		for i := 0; i < len(line); i++ {
			if i > 0 && i%GroupSize == 0 {
				b.WriteByte(' ')
			}
			b.WriteByte(line[i])
			values = append(values, byte(symbolValue[line[i]]))
		}
		b.WriteByte(' ')
		b.WriteByte(lineCheck(n, values))
		b.WriteByte('\n')
	}
	var crc [4]byte
	binary.BigEndian.PutUint32(crc[:], crc32.ChecksumIEEE(bin))
	fmt.Fprintf(&b, "%s %s\n", endWord, encoding.EncodeToString(crc[:]))
	return b.String(), nil
}

// Parse reads a card's text: it skips anything before the header line,
// checks every line's check symbol and the card's CRC, and decodes the
// binary form. It does not check the signature or the expiry (Verify does).
func Parse(text []byte) (Card, error) {
	if len(text) > MaxTextSize {
		return Card{}, fmt.Errorf("%w: %d bytes of text, a card is at most %d", ErrMalformed, len(text), MaxTextSize)
	}
	lines := strings.Split(strings.ReplaceAll(string(text), "\r\n", "\n"), "\n")
	start := -1
	for i, l := range lines {
		if l = strings.TrimSpace(l); len(l) >= len(Header) && strings.EqualFold(l[:len(Header)], Header) {
			start = i
			break
		}
	}
	if start < 0 {
		return Card{}, fmt.Errorf("%w: no %q header line", ErrMalformed, Header)
	}
	if err := checkHeader(strings.TrimSpace(lines[start])); err != nil {
		return Card{}, err
	}
	var syms bytes.Buffer
	var crcLine string
	n := 0
	for i := start + 1; i < len(lines); i++ {
		l := strings.TrimSpace(lines[i])
		// A body line cannot start with the group "END": only the last
		// line has fewer than 4 symbols, and its last symbol leaves unused
		// bits zero, which D (13) never does.
		if word, rest, _ := strings.Cut(l, " "); strings.EqualFold(word, endWord) {
			crcLine = strings.TrimSpace(rest)
			break
		}
		if l == "" {
			break
		}
		n++
		if err := bodyLine(&syms, n, i+1, l); err != nil {
			return Card{}, err
		}
	}
	if crcLine == "" {
		return Card{}, fmt.Errorf("%w: no %q line after %d body lines", ErrTruncated, endWord, n)
	}
	bin, err := decodeSymbols(syms.Bytes(), "the body")
	if err != nil {
		return Card{}, err
	}
	crcSyms, err := normalise(crcLine, 0)
	if err != nil {
		return Card{}, fmt.Errorf("the %s line: %w", endWord, err)
	}
	crc, err := decodeSymbols(crcSyms, "the CRC")
	if err != nil || len(crc) != 4 {
		return Card{}, fmt.Errorf("%w: the %s line %q is not a CRC-32", ErrMalformed, endWord, crcLine)
	}
	if binary.BigEndian.Uint32(crc) != crc32.ChecksumIEEE(bin) {
		return Card{}, fmt.Errorf("%w: the card's CRC does not match its lines (lines missing, or more than one symbol wrong)", ErrChecksum)
	}
	return Unmarshal(bin)
}

// checkHeader accepts "pineconed peer card v1" in any case.
func checkHeader(l string) error {
	rest := strings.TrimSpace(l[len(Header):])
	if len(rest) < 2 || (rest[0] != 'v' && rest[0] != 'V') {
		return fmt.Errorf("%w: header %q does not name a version (want %q)", ErrMalformed, l, fmt.Sprintf("%s v%d", Header, Version))
	}
	v, err := strconv.Atoi(rest[1:])
	if err != nil {
		return fmt.Errorf("%w: header %q does not name a version (want %q)", ErrMalformed, l, fmt.Sprintf("%s v%d", Header, Version))
	}
	if v != Version {
		return fmt.Errorf("%w %d (this pineconed reads version %d)", ErrVersion, v, Version)
	}
	return nil
}

// normalise drops spaces and hyphens and maps every symbol to its canonical
// upper-case form. lineNo (from 1, 0 for none) names the text line in errors.
func normalise(l string, lineNo int) ([]byte, error) {
	out := make([]byte, 0, len(l))
	for i := 0; i < len(l); i++ {
		c := l[i]
		if c == ' ' || c == '\t' || c == '-' {
			continue
		}
		v := symbolValue[c]
		if v < 0 {
			where := ""
			if lineNo > 0 {
				where = fmt.Sprintf("line %d, column %d: ", lineNo, i+1)
			}
			return nil, fmt.Errorf("%w: %s%q is not a Crockford base32 symbol", ErrMalformed, where, string(rune(c)))
		}
		out = append(out, checkAlphabet[v])
	}
	return out, nil
}

// bodyLine checks body line n (text line lineNo) and appends its symbols.
func bodyLine(dst *bytes.Buffer, n, lineNo int, l string) error {
	syms, err := normalise(l, lineNo)
	if err != nil {
		return err
	}
	if len(syms) < 2 || len(syms) > SymbolsPerLine+1 {
		return fmt.Errorf("%w: line %d has %d symbols, want 2..%d", ErrMalformed, lineNo, len(syms), SymbolsPerLine+1)
	}
	data, check := syms[:len(syms)-1], syms[len(syms)-1]
	values := make([]byte, len(data))
	for i, c := range data {
		if symbolValue[c] >= 32 {
			return fmt.Errorf("%w: line %d: %q is only a check symbol", ErrMalformed, lineNo, string(rune(c)))
		}
		values[i] = byte(symbolValue[c])
	}
	if lineCheck(n, values) != check {
		return fmt.Errorf("%w on line %d: a symbol on it is wrong", ErrChecksum, lineNo)
	}
	dst.Write(data)
	return nil
}

// decodeSymbols decodes base32 symbols, refusing a non-canonical tail (a
// length no encoding produces, or non-zero unused bits), so that every card
// has exactly one text.
func decodeSymbols(syms []byte, what string) ([]byte, error) {
	out := make([]byte, encoding.DecodedLen(len(syms)))
	n, err := encoding.Decode(out, syms)
	if err != nil {
		return nil, fmt.Errorf("%w: %s does not decode (%d symbols): lines missing or cut short", ErrTruncated, what, len(syms))
	}
	out = out[:n]
	if encoding.EncodeToString(out) != string(syms) {
		return nil, fmt.Errorf("%w: %s has non-zero unused bits in its last symbol", ErrMalformed, what)
	}
	return out, nil
}
