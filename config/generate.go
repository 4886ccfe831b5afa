package config

import (
	"bytes"
	"fmt"
	"log/slog"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/pineconed/pineconed/internal/mtu"
)

// option documents one key of the file. The table below is the single
// source for Generate's comments and order and for which changes Diff can
// apply live, so the generated file and the reload behaviour cannot drift
// apart. A table (section) is an option whose value is a struct.
type option struct {
	key  string   // dotted key
	doc  []string // comment lines, without "# "
	live bool     // a change is applied on SIGHUP without a restart
}

var options = []option{
	{key: "private_key_file", doc: []string{
		"The node's ed25519 identity: one line of 64 hex characters (the key seed).",
		"Must be mode 0600. Created with a new identity on first start if missing.",
	}},
	{key: "log_level", live: true, doc: []string{
		"Least severe messages logged: debug, info, warn or error.",
	}},
	{key: "log_format", doc: []string{
		"Log line format on stderr: text or json.",
	}},

	{key: "tun", doc: []string{
		"The TUN interface carrying this node's IPv6 traffic.",
	}},
	{key: "tun.enable", doc: []string{
		"false runs a relay-only node: it routes for others, has no interface and",
		"needs no CAP_NET_ADMIN.",
	}},
	{key: "tun.name", doc: []string{
		"Interface name, at most 15 bytes.",
	}},
	{key: "tun.mtu", doc: []string{
		"0 = automatic, the largest MTU whose packets fit one Pinecone frame",
		fmt.Sprintf("with room for coordinates (%d); otherwise %d..%d.", mtu.Default(), MinMTU, MaxMTU()),
	}},

	{key: "peers", doc: []string{
		"Peerings. URIs: tcp://host:port, host:port (TCP), ws://host:port/path,",
		"wss://host/path. IPv6 literals go in brackets: tcp://[2001:db8::1]:65432.",
	}},
	{key: "peers.listen", live: true, doc: []string{
		"Endpoints accepting inbound peerings,",
		`e.g. ["tcp://[::]:65432", "ws://[::]:65433/", "wss://[::]:443/pinecone"].`,
	}},
	{key: "peers.static", live: true, doc: []string{
		"Peers to dial and keep re-dialling. End a URI with ?key=<64 hex> to refuse",
		"the peering unless the remote has that public key.",
	}},
	{key: "peers.allowed_keys", live: true, doc: []string{
		"When not empty, only these public keys (64 hex) may peer inbound.",
	}},
	{key: "peers.max_peers", live: true, doc: []string{
		"Most peerings at once, of every kind: 1..253.",
	}},
	{key: "peers.peer_timeout", live: true, doc: []string{
		"How long data sent to a peer may stay unacknowledged before the peering is",
		`dropped (TCP_USER_TIMEOUT), "200ms".."2m". Raise it on paths with multi-second`,
		"stalls, which otherwise flap; the price is slower failover. New peerings get",
		"a changed value; running ones keep theirs.",
	}},
	{key: "peers.advertise", live: true, doc: []string{
		"URIs this node's peer card (pineconectl card) tells others to dial, without",
		"?key= (the card's key is the pin); [] = the listeners, with pineconectl card --host.",
	}},
	{key: "peers.card_dirs", live: true, doc: []string{
		"Directories whose *.card files are imported as peer cards at start and on",
		`reload, e.g. ["/media/usb/pinecone-cards"]; a card removed from them is dropped.`,
	}},

	{key: "peers.tls", doc: []string{
		"TLS for wss:// listeners (certificate and key, PEM) and wss:// peers.",
	}},
	{key: "peers.tls.cert_file", doc: []string{
		"Certificate chain for wss:// listeners; required when one is configured.",
	}},
	{key: "peers.tls.key_file", doc: []string{
		"Private key of that certificate.",
	}},
	{key: "peers.tls.ca_file", doc: []string{
		`Extra CA bundle trusted for wss:// peers on top of the system roots; "" = none.`,
	}},

	{key: "multicast", doc: []string{
		"LAN discovery with beacons stock Pinecone nodes understand (UDP port 60606).",
	}},
	{key: "multicast.enable", live: true, doc: []string{
		"Send and answer beacons.",
	}},
	{key: "multicast.interfaces", live: true, doc: []string{
		"Regular expressions matched against whole interface names. Loopback,",
		"point-to-point interfaces and our own TUN never match.",
	}},
	{key: "multicast.listen_port", live: true, doc: []string{
		"TCP port advertised in beacons and listened on; 0 = a free port.",
	}},

	{key: "admin", doc: []string{
		"The admin socket pineconectl talks to.",
	}},
	{key: "admin.socket", doc: []string{
		`Unix socket path, mode 0660; "" = no admin socket.`,
	}},
	{key: "admin.group", doc: []string{
		`Group owning the socket; "" = the daemon's primary group.`,
	}},

	{key: "metrics", doc: []string{
		"Prometheus metrics.",
	}},
	{key: "metrics.listen", doc: []string{
		`host:port serving /metrics and the read-only status page at /; "" = off.`,
	}},
}

func lookupOption(key string) (option, bool) {
	for _, o := range options {
		if o.key == key {
			return o, true
		}
	}
	return option{}, false
}

// Generate writes cfg as a complete, commented configuration file: every
// option with its value and what it does. Generate(Default()) is what
// `pineconed -genconf` prints and what config.example.toml holds, and
// Parse of the output gives cfg back.
func Generate(cfg Config) []byte {
	var b bytes.Buffer
	b.WriteString(`# pineconed configuration (printed by "pineconed -genconf").
#
# Every option is listed with its default. Delete a line to use the default;
# unknown options are errors. After editing, reload with SIGHUP
# ("systemctl reload pineconed"): options marked (restart) only take effect
# after a restart, the others are applied at once.
`)
	root := reflect.ValueOf(cfg)
	for _, o := range options {
		path := strings.Split(o.key, ".")
		fv, ok := fieldByPath(root, path)
		if !ok {
			// A documented key with no field: the config tests fail on
			// this, so it never reaches a release.
			panic("config: option " + o.key + " has no Config field")
		}
		if fv.Kind() == reflect.Struct && fv.Type() != peerURIType {
			b.WriteString("\n")
			writeComment(&b, o.doc, false)
			fmt.Fprintf(&b, "[%s]\n", o.key)
			continue
		}
		b.WriteString("\n")
		writeComment(&b, o.doc, !o.live)
		fmt.Fprintf(&b, "%s = %s\n", path[len(path)-1], tomlValue(fv))
	}
	return b.Bytes()
}

func writeComment(b *bytes.Buffer, doc []string, restart bool) {
	for i, line := range doc {
		b.WriteString("# ")
		b.WriteString(line)
		if restart && i == len(doc)-1 {
			b.WriteString(" (restart)")
		}
		b.WriteByte('\n')
	}
}

// fieldByPath finds the field of a Config value named by toml tags.
func fieldByPath(v reflect.Value, path []string) (reflect.Value, bool) {
	for _, name := range path {
		if v.Kind() != reflect.Struct {
			return reflect.Value{}, false
		}
		i, ok := tomlFields(v.Type())[name]
		if !ok {
			return reflect.Value{}, false
		}
		v = v.Field(i)
	}
	return v, true
}

// tomlValue formats a field value as TOML. Arrays of more than one element
// get one element per line, which reads and diffs better.
func tomlValue(v reflect.Value) string {
	switch v.Type() {
	case levelType:
		return tomlString(levelName(v.Interface().(slog.Level)))
	case publicKeyType, peerURIType, durationType:
		return tomlString(v.Interface().(fmt.Stringer).String())
	}
	switch v.Kind() {
	case reflect.String:
		return tomlString(v.String())
	case reflect.Bool:
		return strconv.FormatBool(v.Bool())
	case reflect.Int:
		return strconv.FormatInt(v.Int(), 10)
	case reflect.Slice:
		switch v.Len() {
		case 0:
			return "[]"
		case 1:
			return "[" + tomlValue(v.Index(0)) + "]"
		}
		var b strings.Builder
		b.WriteString("[\n")
		for i := range v.Len() {
			b.WriteString("  ")
			b.WriteString(tomlValue(v.Index(i)))
			b.WriteString(",\n")
		}
		b.WriteString("]")
		return b.String()
	}
	panic("config: no TOML form for " + v.Type().String())
}

// tomlString quotes s as a TOML basic string. Go's strconv.Quote is close
// but emits \x and \a escapes TOML does not have.
func tomlString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\b':
			b.WriteString(`\b`)
		case '\t':
			b.WriteString(`\t`)
		case '\n':
			b.WriteString(`\n`)
		case '\f':
			b.WriteString(`\f`)
		case '\r':
			b.WriteString(`\r`)
		case utf8.RuneError:
			b.WriteString(`\uFFFD`)
		default:
			if r < 0x20 || r == 0x7f {
				fmt.Fprintf(&b, `\u%04X`, r)
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}
