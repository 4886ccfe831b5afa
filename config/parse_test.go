package config

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pineconed/pineconed/overlay/wire"
)

var goodKey = strings.Repeat("a1", 32)

// Each case is a file and the exact error text Parse must give for it: one
// line per problem, each with file, line, key and message.
func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"unknown top-level key", `
log_levle = "debug"
`, `pineconed.toml:2: log_levle: unknown option`},

		{"unknown key in a table", `
[peers]
listen = []
statc = ["tcp://h:1"]
`, `pineconed.toml:4: peers.statc: unknown option`},

		{"unknown table reported once", `
[peer]
static = ["tcp://h:1"]
max_peers = 3
`, `pineconed.toml:2: peer: unknown option`},

		{"unknown dotted key", `
tun.nmae = "x"
`, `pineconed.toml:2: tun.nmae: unknown option`},

		{"unknown key in an inline table", `
[peers]
tls = { cert_file = "/c", kye_file = "/k" }
`, `pineconed.toml:3: peers.tls.key_file: must be set together with peers.tls.cert_file
pineconed.toml:3: peers.tls.kye_file: unknown option`},

		{"string for an integer", `
[tun]
mtu = "auto"
`, `pineconed.toml:3: tun.mtu: expected an integer, got string "auto"`},

		{"integer for a string", `
[tun]
name = 5
`, `pineconed.toml:3: tun.name: expected a string, got integer 5`},

		{"string for a bool", `
[multicast]
enable = "yes"
`, `pineconed.toml:3: multicast.enable: expected true or false, got string "yes"`},

		{"float for an integer", `
[peers]
max_peers = 1.5
`, `pineconed.toml:3: peers.max_peers: expected an integer, got float 1.5`},

		{"scalar for an array", `
[peers]
static = "tcp://h:1"
`, `pineconed.toml:3: peers.static: expected an array, got string "tcp://h:1"`},

		{"scalar for a table", `
tun = 1
`, `pineconed.toml:2: tun: expected a table, got integer 1`},

		{"table for a scalar", `
[tun.name]
x = 1
`, `pineconed.toml:2: tun.name: expected a string, got table`},

		{"array element of the wrong type", `
[multicast]
interfaces = [
  "eth0",
  7,
]
`, `pineconed.toml:5: multicast.interfaces[1]: expected a string, got integer 7`},

		{"nested array", `
[multicast]
interfaces = [["a"]]
`, `pineconed.toml:3: multicast.interfaces[0]: expected a string, got array`},

		{"bad scheme", `
[peers]
static = ["udp://h:1"]
`, `pineconed.toml:3: peers.static[0]: "udp://h:1": unsupported scheme "udp" (want tcp, ws or wss)`},

		{"missing port", `
[peers]
static = [
  "tcp://ok:1",
  "tcp://host",
]
`, `pineconed.toml:5: peers.static[1]: "tcp://host": missing port (tcp needs host:port)`},

		{"bare host without port", `
[peers]
listen = ["localhost"]
`, `pineconed.toml:3: peers.listen[0]: "localhost": missing port (tcp needs host:port)`},

		{"bad key hex", `
[peers]
static = ["tcp://h:1?key=` + strings.Repeat("zz", 32) + `"]
`, `pineconed.toml:3: peers.static[0]: "tcp://h:1?key=` + strings.Repeat("zz", 32) + `": key= is not hex: "` + strings.Repeat("zz", 32) + `"`},

		{"short key", `
[peers]
static = ["ws://h/p?key=abcd"]
`, `pineconed.toml:3: peers.static[0]: "ws://h/p?key=abcd": key= must be 64 hex characters, got 4`},

		{"key on a listener", `
[peers]
listen = ["tcp://[::]:1?key=` + goodKey + `"]
`, `pineconed.toml:3: peers.listen[0]: tcp://[::]:1?key=` + goodKey + `: ?key= pins a remote key and only applies to static peers`},

		{"static peer without host", `
[peers]
static = ["tcp://:65432"]
`, `pineconed.toml:3: peers.static[0]: tcp://:65432: missing host`},

		{"duplicate static peer", `
[peers]
static = [
  "tcp://h:1",
  "h:1",
]
`, `pineconed.toml:5: peers.static[1]: tcp://h:1: duplicate of peers.static[0]`},

		{"two listeners on one address", `
[peers]
listen = ["tcp://[::]:7", "ws://[::]:7/"]
`, `pineconed.toml:3: peers.listen[1]: ws://[::]:7/: [::]:7 is already used by peers.listen[0]`},

		{"wss listener without certificate", `
[peers]
listen = ["wss://[::]:443/pinecone"]
`, `pineconed.toml:3: peers.listen[0]: wss://[::]:443/pinecone: a wss listener needs peers.tls.cert_file and peers.tls.key_file`},

		{"certificate without key", `
[peers.tls]
cert_file = "/c.pem"
`, `pineconed.toml:2: peers.tls.key_file: must be set together with peers.tls.cert_file`},

		{"bad allowed key", `
[peers]
allowed_keys = [
  "` + goodKey + `",
  "` + goodKey[:63] + `g",
  "abc",
]
`, `pineconed.toml:5: peers.allowed_keys[1]: public key "` + goodKey[:63] + `g": not hex
pineconed.toml:6: peers.allowed_keys[2]: public key "abc": want 64 hex characters, got 3`},

		{"bad advertise and card_dirs", `
[peers]
advertise = ["tcp://relay.example:65432?key=` + goodKey + `", "tcp://relay.example:0"]
card_dirs = ["cards"]
`, `pineconed.toml:3: peers.advertise[0]: tcp://relay.example:65432?key=` + goodKey + `: ?key= pins a remote key and only applies to static peers
pineconed.toml:3: peers.advertise[1]: tcp://relay.example:0: port 0 cannot be dialled
pineconed.toml:4: peers.card_dirs[0]: "cards" is not an absolute path`},

		{"max_peers zero", `
[peers]
max_peers = 0
`, `pineconed.toml:3: peers.max_peers: 0 is out of range 1..253 (Pinecone ports 1..253)`},

		{"max_peers too many", `
[peers]
max_peers = 254
`, `pineconed.toml:3: peers.max_peers: 254 is out of range 1..253 (Pinecone ports 1..253)`},

		{"peer_timeout not a duration", `
[peers]
peer_timeout = "soon"
`, `pineconed.toml:3: peers.peer_timeout: "soon" is not a duration (want e.g. "1.5s" or "500ms")`},

		{"peer_timeout a number", `
[peers]
peer_timeout = 5
`, `pineconed.toml:3: peers.peer_timeout: expected a duration string such as "1.5s" or "500ms", got integer 5`},

		{"peer_timeout too short", `
[peers]
max_peers = 3
peer_timeout = "100ms"
`, `pineconed.toml:4: peers.peer_timeout: 100ms is out of range 200ms..2m0s`},

		{"peer_timeout too long", `
[peers]
peer_timeout = "1h"
`, `pineconed.toml:3: peers.peer_timeout: 1h0m0s is out of range 200ms..2m0s`},

		{"peer_timeout below a millisecond", `
[peers]
peer_timeout = "1.0005s"
`, `pineconed.toml:3: peers.peer_timeout: 1.0005s is finer than the kernel's millisecond`},

		{"mtu below IPv6 minimum", `
[tun]
mtu = 1279
`, `pineconed.toml:3: tun.mtu: 1279 is out of range: 0 (automatic) or 1280..65378 (IPv6 needs at least 1280)`},

		{"mtu one", `
[tun]
mtu = 1
`, `pineconed.toml:3: tun.mtu: 1 is out of range: 0 (automatic) or 1280..65378 (IPv6 needs at least 1280)`},

		{"mtu one above what a frame carries", `
[tun]
mtu = 65379
`, `pineconed.toml:3: tun.mtu: 65379 is out of range: 0 (automatic) or 1280..65378 (a larger packet does not fit one Pinecone frame with its framing and encryption)`},

		{"mtu of a whole frame", `
[tun]
mtu = 65535
`, `pineconed.toml:3: tun.mtu: 65535 is out of range: 0 (automatic) or 1280..65378 (a larger packet does not fit one Pinecone frame with its framing and encryption)`},

		{"bad regexp", `
[multicast]
interfaces = ["eth(0"]
`, `pineconed.toml:3: multicast.interfaces[0]: bad regular expression: error parsing regexp: missing closing ): ` + "`eth(0`"},

		{"bad log level", `
log_level = "verbose"
`, `pineconed.toml:2: log_level: unknown log level "verbose" (want debug, info, warn or error)`},

		{"log level offset refused", `
log_level = "info+2"
`, `pineconed.toml:2: log_level: unknown log level "info+2" (want debug, info, warn or error)`},

		{"bad log format", `
log_format = "xml"
`, `pineconed.toml:2: log_format: unknown log format "xml" (want text or json)`},

		{"empty key file path", `
private_key_file = ""
`, `pineconed.toml:2: private_key_file: must not be empty`},

		{"interface name too long", `
[tun]
name = "a-very-long-interface"
`, `pineconed.toml:3: tun.name: "a-very-long-interface" is longer than 15 bytes`},

		{"empty interface name with tun on", `
[tun]
name = ""
`, `pineconed.toml:3: tun.name: must not be empty when the TUN is enabled`},

		{"multicast port out of range", `
[multicast]
listen_port = 70000
`, `pineconed.toml:3: multicast.listen_port: 70000 is out of range 0..65535 (0 = a free port)`},

		{"relative admin socket", `
[admin]
socket = "admin.sock"
`, `pineconed.toml:3: admin.socket: "admin.sock" must be an absolute path (or "" for no admin socket)`},

		{"relative private key file", `
private_key_file = "private.key"
`, `pineconed.toml:2: private_key_file: "private.key" must be an absolute path`},

		{"bad metrics address", `
[metrics]
listen = "localhost"
`, `pineconed.toml:3: metrics.listen: "localhost": missing port in address (want host:port, or "" to turn metrics off)`},

		{"syntax error", `
log_level = "info"
[tun
`, `pineconed.toml:3: syntax error: expected '.' or ']' to end table name, but got '\n' instead`},

		{"duplicate key", `
[tun]
mtu = 1280
mtu = 1300
`, `pineconed.toml:4: syntax error: Key 'tun.mtu' has already been defined.`},

		{"EOF inside an array", `
a = 1
[peers]
static = [1,
`, `pineconed.toml:4: syntax error: unexpected EOF; expected value`},

		{"every problem at once, in file order", `
log_level = "loud"
[tun]
mtu = 9
[peers]
static = ["ftp://x:1", "tcp://ok:2"]
statc = []
max_peers = 999
[multicast]
interfaces = ["(", "ok", "["]
`, `pineconed.toml:2: log_level: unknown log level "loud" (want debug, info, warn or error)
pineconed.toml:4: tun.mtu: 9 is out of range: 0 (automatic) or 1280..65378 (IPv6 needs at least 1280)
pineconed.toml:6: peers.static[0]: "ftp://x:1": unsupported scheme "ftp" (want tcp, ws or wss)
pineconed.toml:7: peers.statc: unknown option
pineconed.toml:8: peers.max_peers: 999 is out of range 1..253 (Pinecone ports 1..253)
pineconed.toml:10: multicast.interfaces[0]: bad regular expression: error parsing regexp: missing closing ): ` + "`(`" + `
pineconed.toml:10: multicast.interfaces[2]: bad regular expression: error parsing regexp: missing closing ]: ` + "`[`"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse("pineconed.toml", []byte(tc.in))
			if err == nil {
				t.Fatalf("accepted: %+v", cfg)
			}
			if got := err.Error(); got != tc.want {
				t.Fatalf("error\n got: %s\nwant: %s", got, tc.want)
			}
			var es Errors
			if !errors.As(err, &es) || len(es) != strings.Count(tc.want, "\n")+1 {
				t.Fatalf("error is not an Errors with one entry per line: %#v", err)
			}
			for _, e := range es {
				if e.File != "pineconed.toml" || e.Line == 0 {
					t.Errorf("entry without file or line: %+v", e)
				}
			}
			if !reflect.DeepEqual(cfg, Config{}) {
				t.Errorf("a failed parse returned a config: %+v", cfg)
			}
		})
	}
}

func TestParseAcceptsVariants(t *testing.T) {
	in := `# comment
log_level = "WARN"   # case does not matter
tun.mtu = 1280
"tun".'name' = "pc1"

[peers]
listen = [ # comments inside arrays
  "tcp://:65432", # all addresses
  'ws://127.0.0.1:65433',
]
static = ["h:1", "wss://a.example/x?key=` + strings.ToUpper(goodKey) + `"]
tls = { cert_file = "/c", key_file = "/k" }

peer_timeout = "5s"

[multicast]
enable = false
`
	cfg, err := Parse("v.toml", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.LogLevel = slog.LevelWarn
	want.TUN.MTU = 1280
	want.TUN.Name = "pc1"
	want.Peers.Listen = []PeerURI{{Scheme: "tcp", Host: ":65432"}, {Scheme: "ws", Host: "127.0.0.1:65433", Path: "/"}}
	k, _ := wire.ParsePublicKey(goodKey)
	want.Peers.Static = []PeerURI{{Scheme: "tcp", Host: "h:1"}, {Scheme: "wss", Host: "a.example:443", Path: "/x", Key: k}}
	want.Peers.TLS.CertFile, want.Peers.TLS.KeyFile = "/c", "/k"
	want.Peers.PeerTimeout = 5 * time.Second
	want.Multicast.Enable = false
	if !reflect.DeepEqual(cfg, want) {
		t.Fatalf("got  %+v\nwant %+v", cfg, want)
	}
}

func TestTunDisabledAllowsEmptyName(t *testing.T) {
	cfg, err := Parse("t.toml", []byte("[tun]\nenable = false\nname = \"\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.TUN.Enable || cfg.TUN.Name != "" {
		t.Fatalf("%+v", cfg.TUN)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "pineconed.toml")
	if err := os.WriteFile(p, []byte("[peers]\nmax_peers = 3\nbogus = 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(p)
	if err == nil || err.Error() != p+":3: peers.bogus: unknown option" {
		t.Fatalf("Load named the wrong file or line: %v", err)
	}

	missing := filepath.Join(dir, "nope.toml")
	_, err = Load(missing)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file: %v does not wrap fs.ErrNotExist", err)
	}
	if want := missing + ": cannot read: no such file or directory"; err.Error() != want {
		t.Fatalf("missing file:\n got %s\nwant %s", err, want)
	}

	// A directory is the unreadable file we can make even as root.
	_, err = Load(dir)
	if err == nil || err.Error() != dir+": cannot read: is a directory" {
		t.Fatalf("directory: %v", err)
	}
}

func TestValidateWithoutFile(t *testing.T) {
	c := Default()
	c.Peers.MaxPeers = 0
	c.LogFormat = ""
	c.Peers.AllowedKeys = []wire.PublicKey{{}}
	c.Metrics.Listen = "127.0.0.1:http"
	err := c.Validate()
	want := `log_format: unknown log format "" (want text or json)
metrics.listen: "127.0.0.1:http": bad port "http" (want host:port, or "" to turn metrics off)
peers.allowed_keys[0]: the all-zero key is not a node key
peers.max_peers: 0 is out of range 1..253 (Pinecone ports 1..253)`
	if err == nil || err.Error() != want {
		t.Fatalf("got\n%v\nwant\n%s", err, want)
	}
	c = Default()
	c.LogLevel = slog.LevelInfo + 2
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "log_level: unknown log level") {
		t.Fatalf("odd log level accepted: %v", err)
	}
}

func TestErrorFormat(t *testing.T) {
	for _, tc := range []struct {
		e    Error
		want string
	}{
		{Error{File: "f.toml", Line: 3, Key: "a.b", Msg: "bad"}, "f.toml:3: a.b: bad"},
		{Error{File: "f.toml", Key: "a.b", Msg: "bad"}, "f.toml: a.b: bad"},
		{Error{File: "f.toml", Msg: "bad"}, "f.toml: bad"},
		{Error{Line: 4, Key: "k", Msg: "bad"}, "line 4: k: bad"},
		{Error{Key: "k", Msg: "bad"}, "k: bad"},
	} {
		if got := tc.e.Error(); got != tc.want {
			t.Errorf("%+v: got %q, want %q", tc.e, got, tc.want)
		}
	}
}

func TestParseLevel(t *testing.T) {
	for in, want := range map[string]slog.Level{
		"debug": slog.LevelDebug, "INFO": slog.LevelInfo, "warn": slog.LevelWarn,
		"warning": slog.LevelWarn, "Error": slog.LevelError,
	} {
		got, err := ParseLevel(in)
		if err != nil || got != want {
			t.Errorf("ParseLevel(%q) = %v, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "trace", "debug-4", "8"} {
		if _, err := ParseLevel(in); err == nil {
			t.Errorf("ParseLevel(%q) accepted", in)
		}
	}
}

func TestInterfacePatterns(t *testing.T) {
	m := MulticastConfig{Interfaces: []string{"eth", "wl.*", "en|br0"}}
	res, err := m.InterfacePatterns()
	if err != nil {
		t.Fatal(err)
	}
	match := func(name string) bool {
		for _, re := range res {
			if re.MatchString(name) {
				return true
			}
		}
		return false
	}
	for name, want := range map[string]bool{
		"eth": true, "eth0": false, "veth": false, "wlan0": true, "xwlan0": false,
		"en": true, "br0": true, "en0": false, "br01": false,
	} {
		if match(name) != want {
			t.Errorf("%s: match = %v, want %v", name, !want, want)
		}
	}
	if _, err := (MulticastConfig{Interfaces: []string{"("}}).InterfacePatterns(); err == nil {
		t.Error("bad pattern compiled")
	}
	def, err := Default().Multicast.InterfacePatterns()
	if err != nil || len(def) != 1 || !def[0].MatchString("anything0") {
		t.Errorf("default pattern: %v %v", def, err)
	}
}

// The bounds in the error messages are the bounds that apply: the largest
// MTU the daemon can carry parses, one more does not.
func TestMTUBounds(t *testing.T) {
	for _, c := range []struct {
		mtu int
		ok  bool
	}{{0, true}, {MinMTU - 1, false}, {MinMTU, true}, {MaxMTU(), true}, {MaxMTU() + 1, false}} {
		_, err := Parse("pineconed.toml", []byte(fmt.Sprintf("[tun]\nmtu = %d\n", c.mtu)))
		if (err == nil) != c.ok {
			t.Errorf("mtu = %d: %v", c.mtu, err)
		}
	}
	if MaxMTU() != 65378 {
		t.Errorf("MaxMTU() = %d; update the messages above if this is intended", MaxMTU())
	}
}

// A URI error from peeruri keeps the file, line and option of the entry.
func TestBareIPv6InFile(t *testing.T) {
	_, err := Parse("p.toml", []byte("[peers]\nstatic = [\"fd99:1::5:7\"]\n"))
	if err == nil || !strings.Contains(err.Error(), "p.toml:2: peers.static") || !strings.Contains(err.Error(), "brackets") {
		t.Errorf("config: %v", err)
	}
}
