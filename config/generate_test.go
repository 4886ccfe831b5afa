package config

import (
	"bytes"
	"log/slog"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pineconed/pineconed/overlay/peers/peeruri"
	"github.com/pineconed/pineconed/overlay/wire"
)

// The example file in the repository is what -genconf prints, byte for byte.
// Regenerate it with:
//
//	PINECONED_UPDATE_EXAMPLE=1 go test ./config -run TestExampleFileIsGenerated
func TestExampleFileIsGenerated(t *testing.T) {
	const path = "../config.example.toml"
	want := Generate(Default())
	if os.Getenv("PINECONED_UPDATE_EXAMPLE") == "1" {
		if err := os.WriteFile(path, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("config.example.toml differs from Generate(Default()); regenerate it with\n"+
			"  PINECONED_UPDATE_EXAMPLE=1 go test ./config -run TestExampleFileIsGenerated\n--- file\n%s\n--- generated\n%s", got, want)
	}
}

func TestExampleFileParsesToDefault(t *testing.T) {
	cfg, err := Load("../config.example.toml")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg, Default()) {
		t.Fatalf("example parses to\n%+v\nwant Default()\n%+v", cfg, Default())
	}
}

func TestEmptyFileIsDefault(t *testing.T) {
	cfg, err := Parse("empty.toml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg, Default()) {
		t.Fatalf("empty file gives %+v", cfg)
	}
	if err := Default().Validate(); err != nil {
		t.Fatalf("Default() does not validate: %v", err)
	}
}

// leafKeys lists the dotted toml keys of every field of Config, tables
// included, by reflection: a field added to the struct shows up here
// whether or not anybody remembered to document it.
func leafKeys(t reflect.Type, prefix string) (tables, leaves []string) {
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if name == "" || name == "-" {
			continue
		}
		key := prefix + name
		if f.Type.Kind() == reflect.Struct && f.Type != peerURIType && f.Type != levelType {
			tables = append(tables, key)
			st, sl := leafKeys(f.Type, key+".")
			tables = append(tables, st...)
			leaves = append(leaves, sl...)
			continue
		}
		leaves = append(leaves, key)
	}
	return tables, leaves
}

func TestEveryFieldIsDocumented(t *testing.T) {
	// Every exported field must carry a toml tag, or the reflection below
	// (and the decoder) would never see it.
	var checkTags func(reflect.Type)
	checkTags = func(rt reflect.Type) {
		for i := range rt.NumField() {
			f := rt.Field(i)
			if f.IsExported() && f.Tag.Get("toml") == "" {
				t.Errorf("%s.%s has no toml tag", rt.Name(), f.Name)
			}
			if f.Type.Kind() == reflect.Struct && f.Type != peerURIType {
				checkTags(f.Type)
			}
		}
	}
	checkTags(reflect.TypeFor[Config]())

	text := string(Generate(Default()))
	// Split the file into sections by table header, then look for each
	// key as "name = " in its own section, preceded by a comment line.
	sections := map[string][]string{"": nil}
	cur := ""
	header := regexp.MustCompile(`^\[([a-z_.]+)\]$`)
	for _, line := range strings.Split(text, "\n") {
		if m := header.FindStringSubmatch(line); m != nil {
			cur = m[1]
			if _, dup := sections[cur]; dup {
				t.Errorf("table [%s] appears twice", cur)
			}
			sections[cur] = nil
			continue
		}
		sections[cur] = append(sections[cur], line)
	}
	tables, leaves := leafKeys(reflect.TypeFor[Config](), "")
	for _, tb := range tables {
		if _, ok := sections[tb]; !ok {
			t.Errorf("table [%s] is missing from the generated file", tb)
		}
	}
	for _, key := range leaves {
		table, name := "", key
		if i := strings.LastIndexByte(key, '.'); i >= 0 {
			table, name = key[:i], key[i+1:]
		}
		lines := sections[table]
		found := false
		for i, l := range lines {
			if strings.HasPrefix(l, name+" = ") {
				found = true
				if i == 0 || !strings.HasPrefix(lines[i-1], "# ") {
					t.Errorf("%s has no comment line above it", key)
				}
			}
		}
		if !found {
			t.Errorf("option %s is missing from the generated file", key)
		}
		if o, ok := lookupOption(key); !ok || len(o.doc) == 0 {
			t.Errorf("option %s has no documentation entry", key)
		}
	}
	// And the other way round: no documented option without a field.
	for _, o := range options {
		if _, ok := fieldByPath(reflect.ValueOf(Default()), strings.Split(o.key, ".")); !ok {
			t.Errorf("documented option %s has no Config field", o.key)
		}
	}
}

// everyFieldChanged differs from Default in every option.
func everyFieldChanged(t *testing.T) Config {
	t.Helper()
	k1, _ := wire.ParsePublicKey(strings.Repeat("ab", 32))
	k2, _ := wire.ParsePublicKey(strings.Repeat("0c", 32))
	mustStatic := func(s string) PeerURI {
		u, err := peeruri.ParsePeer(s)
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	mustListen := func(s string) PeerURI {
		u, err := peeruri.ParseListen(s)
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	return Config{
		PrivateKeyFile: "/srv/node \"one\"\\key",
		LogLevel:       slog.LevelDebug,
		LogFormat:      "json",
		TUN:            TUNConfig{Enable: false, Name: "mesh7", MTU: 1400},
		Peers: PeersConfig{
			Listen: []PeerURI{mustListen("tcp://[::]:65432"), mustListen("wss://:8443/p")},
			Static: []PeerURI{
				mustStatic("peer.example:65432?key=" + k1.String()),
				mustStatic("ws://[2001:db8::1]:8080/pinecone"),
				mustStatic("wss://pinecone.example/public"),
			},
			AllowedKeys: []wire.PublicKey{k1, k2},
			MaxPeers:    253,
			PeerTimeout: 4250 * time.Millisecond,
			Advertise:   []PeerURI{mustStatic("tcp://relay.example:65432"), mustStatic("wss://relay.example/p")},
			CardDirs:    []string{"/media/usb/cards", "/srv/shared cards"},
			TLS:         TLSConfig{CertFile: "/etc/ssl/c.pem", KeyFile: "/etc/ssl/k.pem", CAFile: "/etc/ssl/ca.pem"},
		},
		Multicast: MulticastConfig{Enable: false, Interfaces: []string{`^eth\d+$`, "wl.*"}, ListenPort: 60000},
		Admin:     AdminConfig{Socket: "/tmp/a.sock", Group: "wheel"},
		Metrics:   MetricsConfig{Listen: ""},
	}
}

func TestGenerateRoundTrip(t *testing.T) {
	want := everyFieldChanged(t)
	if err := want.Validate(); err != nil {
		t.Fatal(err)
	}
	// The test config must really differ in every option, or the round
	// trip would not cover it.
	if ch := Diff(Default(), want); len(ch.Live)+len(ch.Restart) != countLeaves(t) {
		t.Fatalf("test config does not change every option: %+v", ch)
	}
	text := Generate(want)
	got, err := Parse("generated.toml", text)
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("round trip:\n got %+v\nwant %+v\n%s", got, want, text)
	}
}

func countLeaves(t *testing.T) int {
	t.Helper()
	_, leaves := leafKeys(reflect.TypeFor[Config](), "")
	return len(leaves)
}

func TestTOMLString(t *testing.T) {
	for in, want := range map[string]string{
		"plain":      `"plain"`,
		`q"b\`:       `"q\"b\\"`,
		"t\tn\n\x01": `"t\tn\n\u0001"`,
		"\x7f é":     `"\u007F é"`,
	} {
		if got := tomlString(in); got != want {
			t.Errorf("tomlString(%q) = %s, want %s", in, got, want)
		}
		// And the TOML decoder must read it back unchanged (as a path:
		// private_key_file must be absolute).
		cfg, err := Parse("s.toml", []byte("private_key_file = "+tomlString("/"+in)+"\n"))
		if err != nil {
			t.Errorf("%q: %v", in, err)
		} else if cfg.PrivateKeyFile != "/"+in {
			t.Errorf("%q read back as %q", in, cfg.PrivateKeyFile)
		}
	}
}
