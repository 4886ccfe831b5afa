package peeruri

import (
	"strings"
	"testing"

	"github.com/pineconed/pineconed/overlay/wire"
)

// goodKey is a valid key in hex.
var goodKey = strings.Repeat("a1", 32)

func TestParsePeer(t *testing.T) {
	k, _ := wire.ParsePublicKey(goodKey)
	tests := []struct {
		in        string
		want      URI
		canonical string
	}{
		{"tcp://example.org:65432", URI{Scheme: "tcp", Host: "example.org:65432"}, "tcp://example.org:65432"},
		{"example.org:65432", URI{Scheme: "tcp", Host: "example.org:65432"}, "tcp://example.org:65432"},
		{"TCP://h:1/", URI{Scheme: "tcp", Host: "h:1"}, "tcp://h:1"},
		{"[2001:db8::1]:7", URI{Scheme: "tcp", Host: "[2001:db8::1]:7"}, "tcp://[2001:db8::1]:7"},
		{"tcp://[fe80::1%25eth0]:7", URI{Scheme: "tcp", Host: "[fe80::1%eth0]:7"}, "tcp://[fe80::1%25eth0]:7"},
		{"[fe80::1%eth0]:7", URI{Scheme: "tcp", Host: "[fe80::1%eth0]:7"}, "tcp://[fe80::1%25eth0]:7"},
		{"h:007", URI{Scheme: "tcp", Host: "h:7"}, "tcp://h:7"},
		{"ws://h:8080/pinecone", URI{Scheme: "ws", Host: "h:8080", Path: "/pinecone"}, "ws://h:8080/pinecone"},
		{"ws://h", URI{Scheme: "ws", Host: "h:80", Path: "/"}, "ws://h:80/"},
		{"wss://pinecone.example/public", URI{Scheme: "wss", Host: "pinecone.example:443", Path: "/public"}, "wss://pinecone.example:443/public"},
		{"wss://h/a%20b", URI{Scheme: "wss", Host: "h:443", Path: "/a%20b"}, "wss://h:443/a%20b"},
		{"h:1?key=" + goodKey, URI{Scheme: "tcp", Host: "h:1", Key: k}, "tcp://h:1?key=" + goodKey},
		{"wss://h/p?key=" + strings.ToUpper(goodKey), URI{Scheme: "wss", Host: "h:443", Path: "/p", Key: k}, "wss://h:443/p?key=" + goodKey},
	}
	for _, tc := range tests {
		got, err := ParsePeer(tc.in)
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if got != tc.want {
			t.Errorf("%q: got %+v, want %+v", tc.in, got, tc.want)
		}
		if got.String() != tc.canonical {
			t.Errorf("%q: String() = %q, want %q", tc.in, got.String(), tc.canonical)
		}
		again, err := ParsePeer(got.String())
		if err != nil || again != got {
			t.Errorf("%q: canonical form does not parse back: %+v, %v", tc.in, again, err)
		}
		var u URI
		if err := u.UnmarshalText([]byte(tc.in)); err != nil || u != got {
			t.Errorf("%q: UnmarshalText gives %+v, %v", tc.in, u, err)
		}
		if b, _ := got.MarshalText(); string(b) != tc.canonical {
			t.Errorf("%q: MarshalText gives %q", tc.in, b)
		}
		if got.Pinned() != !tc.want.Key.IsZero() {
			t.Errorf("%q: Pinned() = %v", tc.in, got.Pinned())
		}
	}
}

func TestPeerURIAccessors(t *testing.T) {
	u, err := ParsePeer("wss://[2001:db8::2]:8443/x?key=" + goodKey)
	if err != nil {
		t.Fatal(err)
	}
	if u.Hostname() != "2001:db8::2" {
		t.Errorf("Hostname() = %q", u.Hostname())
	}
	if u.URL() != "wss://[2001:db8::2]:8443/x" {
		t.Errorf("URL() = %q (must not carry the key pin)", u.URL())
	}
}

func TestParsePeerErrors(t *testing.T) {
	tests := map[string]string{
		"":                                    `peer URI "": empty`,
		" tcp://h:1":                          `peer URI " tcp://h:1": leading or trailing spaces`,
		"udp://h:1":                           `peer URI "udp://h:1": unsupported scheme "udp" (want tcp, ws or wss)`,
		"http://h:1/":                         `peer URI "http://h:1/": unsupported scheme "http" (want tcp, ws or wss)`,
		"tcp://h":                             `peer URI "tcp://h": missing port (tcp needs host:port)`,
		"h":                                   `peer URI "h": missing port (tcp needs host:port)`,
		"tcp://h:":                            `peer URI "tcp://h:": empty port`,
		"tcp://h:99999":                       `peer URI "tcp://h:99999": bad port "99999"`,
		"tcp://h:0":                           `peer URI "tcp://h:0": port 0 cannot be dialled`,
		"tcp://:1":                            `peer URI "tcp://:1": missing host`,
		"tcp://h:1/path":                      `peer URI "tcp://h:1/path": tcp takes no path (got "/path")`,
		"tcp://u:p@h:1":                       `peer URI "tcp://u:p@h:1": user information is not supported`,
		"ws://h/p#frag":                       `peer URI "ws://h/p#frag": a #fragment is not allowed`,
		"ws:h/p":                              `peer URI "ws:h/p": missing // after the scheme`,
		"TCP:h:1":                             `peer URI "TCP:h:1": missing // after the scheme`,
		"tcp://h:1?":                          `peer URI "tcp://h:1?": empty query after ?`,
		"tcp://h:1?pin=x":                     `peer URI "tcp://h:1?pin=x": unknown query parameter "pin" (only key= is understood)`,
		"tcp://h:1?key=" + goodKey + "&key=a": `peer URI "tcp://h:1?key=` + goodKey + `&key=a": key= given more than once`,
		"tcp://h:1?key=abc":                   `peer URI "tcp://h:1?key=abc": key= must be 64 hex characters, got 3`,
		"tcp://h:1?key=" + strings.Repeat("g", 64): `peer URI "tcp://h:1?key=` + strings.Repeat("g", 64) + `": key= is not hex: "` + strings.Repeat("g", 64) + `"`,
		"tcp://h:1?key=" + strings.Repeat("0", 64): `peer URI "tcp://h:1?key=` + strings.Repeat("0", 64) + `": key= is the all-zero key`,
		"tcp://h:1?key=%zz":                        `peer URI "tcp://h:1?key=%zz": bad query: invalid URL escape "%zz"`,
		"tcp://[::1:1":                             `peer URI "tcp://[::1:1": missing ']' in host`,
	}
	for in, want := range tests {
		u, err := ParsePeer(in)
		if err == nil {
			t.Errorf("%q accepted as %+v", in, u)
			continue
		}
		if err.Error() != want {
			t.Errorf("%q:\n got %s\nwant %s", in, err, want)
		}
	}
}

func TestParseListen(t *testing.T) {
	for in, want := range map[string]URI{
		"tcp://:65432":         {Scheme: "tcp", Host: ":65432"},
		"tcp://[::]:0":         {Scheme: "tcp", Host: "[::]:0"},
		"ws://[::]:65433":      {Scheme: "ws", Host: "[::]:65433", Path: "/"},
		"wss://0.0.0.0/secure": {Scheme: "wss", Host: "0.0.0.0:443", Path: "/secure"},
	} {
		got, err := ParseListen(in)
		if err != nil || got != want {
			t.Errorf("%q: got %+v, %v; want %+v", in, got, err, want)
		}
	}
	for in, want := range map[string]string{
		"tcp://:1?key=" + goodKey: `listen URI "tcp://:1?key=` + goodKey + `": ?key= pins a remote key and only applies to static peers`,
		"tcp://[::]":              `listen URI "tcp://[::]": missing port (tcp needs host:port)`,
		"quic://[::]:1":           `listen URI "quic://[::]:1": unsupported scheme "quic" (want tcp, ws or wss)`,
	} {
		if _, err := ParseListen(in); err == nil || err.Error() != want {
			t.Errorf("%q:\n got %v\nwant %s", in, err, want)
		}
	}
}

// The parser must never panic, whatever it is given.
func FuzzParsePeer(f *testing.F) {
	for _, s := range []string{"tcp://h:1", "h:1?key=" + goodKey, "ws://[::1]/x", "wss://h/%zz", "::::", "[", "tcp://[::1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := ParsePeer(s)
		if err != nil {
			return
		}
		again, err := ParsePeer(u.String())
		if err != nil || again != u {
			t.Fatalf("%q parsed to %+v, whose canonical form %q gives %+v, %v", s, u, u.String(), again, err)
		}
	})
}

// An IPv6 literal without brackets is refused with the bracketed form to
// write, by both parsers, instead of reading its last group as the port
// (config's TestBareIPv6InFile checks the file names its line).
func TestBareIPv6Refused(t *testing.T) {
	for in, want := range map[string]string{
		"fd99:1::5:7":       "tcp://[fd99:1::5:7]:PORT (or tcp://[fd99:1::5]:7 if 7 was meant as the port)",
		"fd99:1::5":         "tcp://[fd99:1::5]:PORT",
		"tcp://fd99:1::5:7": "tcp://[fd99:1::5]:7 if 7",
		"ws://fd99::1/p":    "ws://[ADDRESS]:PORT",
		"fe80::1%eth0":      "brackets",
	} {
		for name, parse := range map[string]func(string) (URI, error){"static": ParsePeer, "listen": ParseListen} {
			u, err := parse(in)
			if err == nil {
				t.Errorf("%s %q: accepted as %s", name, in, u)
				continue
			}
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s %q: error %q lacks %q", name, in, err, want)
			}
		}
	}
}
