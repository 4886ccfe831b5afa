package config

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/pineconed/pineconed/overlay/wire"
)

// The private key file holds one line of hex: either the 32-byte ed25519
// seed (64 hex characters, the form we write) or the 64-byte private key as
// Go's crypto/ed25519 stores it, seed then public key (128 hex characters,
// accepted so a key exported by other ed25519 tools can be used). Upper or
// lower case hex, surrounding white space and one trailing newline are
// fine; anything else is refused rather than replaced.

// ParseKey decodes the contents of a private key file.
func ParseKey(data []byte) (ed25519.PrivateKey, error) {
	s := bytes.TrimSpace(data)
	if len(s) == 0 {
		return nil, errors.New("empty key file")
	}
	if bytes.ContainsAny(s, " \t\r\n") {
		return nil, errors.New("more than one line or word; want a single line of hex")
	}
	raw := make([]byte, hex.DecodedLen(len(s)))
	if _, err := hex.Decode(raw, s); err != nil {
		return nil, fmt.Errorf("not hex: %w", err)
	}
	switch len(raw) {
	case ed25519.SeedSize:
		return ed25519.NewKeyFromSeed(raw), nil
	case ed25519.PrivateKeySize:
		priv := ed25519.NewKeyFromSeed(raw[:ed25519.SeedSize])
		if !bytes.Equal(priv[ed25519.SeedSize:], raw[ed25519.SeedSize:]) {
			return nil, errors.New("the public half of the 128-character key does not match its seed")
		}
		return priv, nil
	}
	return nil, fmt.Errorf("want %d hex characters (seed) or %d (private key), got %d",
		2*ed25519.SeedSize, 2*ed25519.PrivateKeySize, len(s))
}

// EncodeKey is the file form of a private key: its seed in hex and a newline.
func EncodeKey(priv ed25519.PrivateKey) []byte {
	return []byte(hex.EncodeToString(priv.Seed()) + "\n")
}

// LoadKey reads an existing private key file. It refuses a file that group
// or others may read or write, telling the user to chmod 600 it: a leaked
// key lets anyone take over the node's address.
func LoadKey(path string) (ed25519.PrivateKey, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("private key: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("private key: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("private key %s: not a regular file", path)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("private key %s has mode %04o, open to group or others; run: chmod 600 %s", path, perm, path)
	}
	const limit = 1024 // far more than a valid file
	data, err := io.ReadAll(io.LimitReader(f, limit))
	if err != nil {
		return nil, fmt.Errorf("private key %s: %w", path, err)
	}
	if len(data) == limit {
		return nil, fmt.Errorf("private key %s: file too large to be a key (refusing to replace it; fix or move the file away)", path)
	}
	priv, err := ParseKey(data)
	if err != nil {
		return nil, fmt.Errorf("private key %s: %w (refusing to replace it; fix or move the file away)", path, err)
	}
	return priv, nil
}

// LoadOrCreateKey loads the private key at path, or creates a new identity
// there if the file does not exist: the parent directory with mode 0700
// when missing, the file with mode 0600 and O_EXCL, so two daemons racing
// cannot both write one. Creation is logged at Warn level with the new
// public key, because a new key means a new address: nobody should get one
// by surprise. A file that exists but is unreadable, malformed or open to
// others is an error and is never replaced.
func LoadOrCreateKey(path string, logger *slog.Logger) (priv ed25519.PrivateKey, created bool, err error) {
	priv, err = LoadKey(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return priv, false, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, false, fmt.Errorf("private key: %w", err)
	}
	_, priv, err = ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, false, fmt.Errorf("private key: generating: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		// Someone created it between our read and now; theirs wins.
		priv, err = LoadKey(path)
		return priv, false, err
	}
	if err != nil {
		return nil, false, fmt.Errorf("private key: %w", err)
	}
	if _, err = f.Write(EncodeKey(priv)); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		// A half-written file would be refused as malformed at the next
		// start, so remove it: nothing has used this identity yet.
		os.Remove(path)
		return nil, false, fmt.Errorf("private key %s: writing: %w", path, err)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync() // best effort: make the new name durable
		d.Close()
	}
	if logger != nil {
		logger.Warn("created a new node identity; back up this file to keep the address",
			"file", path, "key", wire.PublicKeyOf(priv))
	}
	return priv, true, nil
}
