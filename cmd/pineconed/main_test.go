package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pineconed/pineconed/addressing"
	"github.com/pineconed/pineconed/config"
	"github.com/pineconed/pineconed/overlay/wire"
)

// buildBinary builds pineconed into a temporary directory.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "pineconed")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// runBinary runs bin with args and returns stdout, stderr and exit status.
func runBinary(t *testing.T, bin string, args ...string) (string, string, int) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run %s: %v", bin, err)
	}
	return stdout.String(), stderr.String(), code
}

func TestBinaryExitCodes(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()

	// A bad configuration: exit 2, every problem with file, line and key,
	// and nothing created (the key file stays absent).
	keyPath := filepath.Join(dir, "never.key")
	bad := filepath.Join(dir, "bad.toml")
	if err := os.WriteFile(bad, []byte("private_key_file = \""+keyPath+"\"\n[peers]\nmax_peers = 1000\nstatc = []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := runBinary(t, bin, "-config", bad)
	if code != 2 {
		t.Fatalf("bad config: exit %d, want 2; stderr:\n%s", code, stderr)
	}
	for _, want := range []string{bad + ":3: peers.max_peers", bad + ":4: peers.statc"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if _, err := os.Stat(keyPath); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("bad config created the key file: %v", err)
	}

	// An explicitly named file that does not exist is a configuration
	// error too.
	if _, stderr, code := runBinary(t, bin, "-config", filepath.Join(dir, "missing.toml")); code != 2 || !strings.Contains(stderr, "missing.toml") {
		t.Fatalf("missing explicit config: exit %d\n%s", code, stderr)
	}
	// So is a bad flag.
	if _, _, code := runBinary(t, bin, "-no-such-flag"); code != 2 {
		t.Fatalf("bad flag: exit %d", code)
	}

	// -genconf prints a configuration that parses back to the defaults.
	out, _, code := runBinary(t, bin, "-genconf")
	if code != 0 {
		t.Fatalf("-genconf: exit %d", code)
	}
	if _, err := config.Parse("genconf", []byte(out)); err != nil {
		t.Fatalf("-genconf output does not parse: %v", err)
	}

	// -publickey without a key file: an error, and no key is created.
	good := filepath.Join(dir, "good.toml")
	if err := os.WriteFile(good, []byte("private_key_file = \""+keyPath+"\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, stderr, code := runBinary(t, bin, "-config", good, "-publickey"); code != 1 || !strings.Contains(stderr, "no private key") {
		t.Fatalf("-publickey without a key: exit %d\n%s", code, stderr)
	}
	if _, err := os.Stat(keyPath); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("-publickey created a key")
	}

	// With a key, the identity flags print what the addressing package
	// derives from it.
	priv, _, err := config.LoadOrCreateKey(keyPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	k := wire.PublicKeyOf(priv)
	for flag, want := range map[string]string{
		"-publickey": k.String(),
		"-address":   addressing.NodeAddr(k).String(),
		"-subnet":    addressing.Subnet(k).String(),
	} {
		out, stderr, code := runBinary(t, bin, "-config", good, flag)
		if code != 0 || strings.TrimSpace(out) != want {
			t.Errorf("%s: exit %d, %q, want %q\n%s", flag, code, out, want, stderr)
		}
	}

	if out, _, code := runBinary(t, bin, "-version"); code != 0 || !strings.HasPrefix(out, "pineconed ") {
		t.Fatalf("-version: exit %d, %q", code, out)
	}
}

// Whatever the configuration decides and can be checked without side
// effects fails with exit 2 and "FILE: option: problem" before the TUN is
// created or a key is made.
func TestBinaryPreflightExit2(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	busy := held.Addr().String()
	badKey := filepath.Join(dir, "open.key")
	if _, _, err := config.LoadOrCreateKey(badKey, nil); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(badKey, 0o644); err != nil {
		t.Fatal(err)
	}
	tunName := fmt.Sprintf("pcpf%d", os.Getpid()%100000)
	for _, c := range []struct {
		name, text, option string
	}{
		{"metrics address in use", "[metrics]\nlisten = \"" + busy + "\"\n", "metrics.listen"},
		{"listener address in use", "[peers]\nlisten = [\"tcp://" + busy + "\"]\n", "peers.listen[0]"},
		{"admin group missing", "[admin]\nsocket = \"" + filepath.Join(dir, "a.sock") + "\"\ngroup = \"pineconed-no-such-group\"\n", "admin.group"},
		{"TLS files missing", "[peers.tls]\ncert_file = \"" + filepath.Join(dir, "no.crt") + "\"\nkey_file = \"" + filepath.Join(dir, "no.key") + "\"\n", "peers.tls"},
		{"key file open to others", "private_key_file = \"" + badKey + "\"\n", "private_key_file"},
	} {
		t.Run(c.name, func(t *testing.T) {
			keyPath := filepath.Join(t.TempDir(), "never.key")
			text := "private_key_file = \"" + keyPath + "\"\n"
			if strings.HasPrefix(c.text, "private_key_file") {
				text = ""
			}
			text += c.text
			if !strings.Contains(text, "[metrics]") {
				text += "[metrics]\nlisten = \"\"\n"
			}
			if !strings.Contains(text, "[admin]") {
				text += "[admin]\nsocket = \"\"\n"
			}
			text += "[multicast]\nenable = false\n[tun]\nname = \"" + tunName + "\"\n"
			path := filepath.Join(t.TempDir(), "p.toml")
			if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
				t.Fatal(err)
			}
			_, stderr, code := runBinary(t, bin, "-config", path)
			if code != 2 {
				t.Fatalf("exit %d, want 2; stderr:\n%s", code, stderr)
			}
			if want := path + ": " + c.option + ": "; !strings.Contains(stderr, want) {
				t.Fatalf("stderr lacks %q:\n%s", want, stderr)
			}
			if strings.Contains(stderr, "TUN up") {
				t.Fatalf("the TUN was created before the check:\n%s", stderr)
			}
			if _, err := os.Stat(keyPath); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("a key file was created: %v", err)
			}
		})
	}
}
