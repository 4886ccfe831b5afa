package config

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pineconed/pineconed/overlay/wire"
)

func TestLoadOrCreateKeyCreates(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state", "pineconed")
	path := filepath.Join(dir, "private.key")
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))

	priv, created, err := LoadOrCreateKey(path, logger)
	if err != nil {
		t.Fatal(err)
	}
	if !created || len(priv) != ed25519.PrivateKeySize {
		t.Fatalf("created=%v len=%d", created, len(priv))
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %04o, want 0600", st.Mode().Perm())
	}
	dst, _ := os.Stat(dir)
	if dst.Mode().Perm() != 0o700 {
		t.Errorf("key directory mode %04o, want 0700", dst.Mode().Perm())
	}
	data, _ := os.ReadFile(path)
	if want := hex.EncodeToString(priv.Seed()) + "\n"; string(data) != want {
		t.Errorf("file holds %q, want the seed %q", data, want)
	}
	pub := wire.PublicKeyOf(priv).String()
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "key="+pub) ||
		!strings.Contains(logs.String(), "file="+path) {
		t.Errorf("creation not logged loudly with the public key: %s", logs.String())
	}

	// The second start loads the same identity and logs nothing.
	logs.Reset()
	again, created, err := LoadOrCreateKey(path, logger)
	if err != nil || created || !again.Equal(priv) {
		t.Fatalf("reload: created=%v err=%v same=%v", created, err, again.Equal(priv))
	}
	if logs.Len() != 0 {
		t.Errorf("loading an existing key logged: %s", logs.String())
	}
}

func TestLoadKeyForms(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(nil)
	dir := t.TempDir()
	for name, content := range map[string]string{
		"seed":           hex.EncodeToString(priv.Seed()),
		"seed newline":   hex.EncodeToString(priv.Seed()) + "\n",
		"seed upper":     strings.ToUpper(hex.EncodeToString(priv.Seed())) + "\r\n",
		"full key":       hex.EncodeToString(priv),
		"full key space": "  " + hex.EncodeToString(priv) + "\n\n",
	} {
		p := filepath.Join(dir, strings.ReplaceAll(name, " ", "_"))
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		got, created, err := LoadOrCreateKey(p, nil)
		if err != nil || created || !got.Equal(priv) {
			t.Errorf("%s: created=%v err=%v equal=%v", name, created, err, got.Equal(priv))
		}
	}
	if !bytes.Equal(EncodeKey(priv), []byte(hex.EncodeToString(priv.Seed())+"\n")) {
		t.Errorf("EncodeKey = %q", EncodeKey(priv))
	}
}

// A bad key file is an error and stays exactly as it was: a silent new
// identity would change the node's address.
func TestLoadOrCreateKeyRefusesBadFiles(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(nil)
	_, other, _ := ed25519.GenerateKey(nil)
	mismatched := hex.EncodeToString(priv.Seed()) + hex.EncodeToString(other.Public().(ed25519.PublicKey))
	tests := []struct {
		name, content string
		mode          os.FileMode
		want          string
	}{
		{"world readable", hex.EncodeToString(priv.Seed()), 0o644, "has mode 0644, open to group or others; run: chmod 600 "},
		{"group readable", hex.EncodeToString(priv.Seed()), 0o640, "has mode 0640, open to group or others; run: chmod 600 "},
		{"group writable", hex.EncodeToString(priv.Seed()), 0o620, "has mode 0620"},
		{"empty", "", 0o600, "empty key file (refusing to replace it; fix or move the file away)"},
		{"blank", " \n", 0o600, "empty key file"},
		{"not hex", strings.Repeat("x", 64), 0o600, "not hex"},
		{"odd length", strings.Repeat("a", 63), 0o600, "not hex"},
		{"wrong length", strings.Repeat("ab", 16), 0o600, "want 64 hex characters (seed) or 128 (private key), got 32"},
		{"two lines", hex.EncodeToString(priv.Seed()) + "\n" + hex.EncodeToString(priv.Seed()), 0o600, "more than one line or word"},
		{"mismatched halves", mismatched, 0o600, "the public half of the 128-character key does not match its seed"},
		{"huge", strings.Repeat("a", 4096), 0o600, "file too large to be a key"},
	}
	dir := t.TempDir()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_"))
			if err := os.WriteFile(p, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(p, tc.mode); err != nil {
				t.Fatal(err)
			}
			var logs bytes.Buffer
			_, created, err := LoadOrCreateKey(p, slog.New(slog.NewTextHandler(&logs, nil)))
			if err == nil || created {
				t.Fatalf("accepted (created=%v)", created)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), p) {
				t.Fatalf("error %q does not name the file and say %q", err, tc.want)
			}
			after, _ := os.ReadFile(p)
			if string(after) != tc.content {
				t.Fatalf("file was changed")
			}
			if logs.Len() != 0 {
				t.Fatalf("logged a new identity: %s", logs.String())
			}
		})
	}
}

func TestLoadOrCreateKeyOtherErrors(t *testing.T) {
	dir := t.TempDir()
	// A directory where the key should be: not a regular file.
	p := filepath.Join(dir, "keydir")
	if err := os.Mkdir(p, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadOrCreateKey(p, nil); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("directory as key: %v", err)
	}
	// The parent is a file, so the directory cannot be created.
	f := filepath.Join(dir, "file")
	if err := os.WriteFile(f, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, created, err := LoadOrCreateKey(filepath.Join(f, "private.key"), nil); err == nil || created {
		t.Fatalf("key under a file: created=%v err=%v", created, err)
	}
	// LoadKey alone never creates.
	missing := filepath.Join(dir, "missing.key")
	if _, err := LoadKey(missing); err == nil {
		t.Fatal("LoadKey of a missing file succeeded")
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Fatal("LoadKey created the file")
	}
}

func TestParseKey(t *testing.T) {
	// RFC 8032 test 1: seed and public key.
	seed := "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
	pub := "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
	priv, err := ParseKey([]byte(seed + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := wire.PublicKeyOf(priv).String(); got != pub {
		t.Fatalf("public key %s, want %s", got, pub)
	}
	full, err := ParseKey([]byte(seed + pub))
	if err != nil || !full.Equal(priv) {
		t.Fatalf("128-character form: %v", err)
	}
}
