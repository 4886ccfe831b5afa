package manpage

import (
	"strings"
)

// Pineconed is pineconed(8), from the output of `pineconed -h`.
func Pineconed(help, version string) []byte {
	var r roff
	r.header("pineconed", "8", version, "System Administration")
	r.section("name")
	r.line(`pineconed \- mesh VPN daemon routing IPv6 over the Pinecone overlay`)
	r.section("synopsis")
	r.line(`\fBpineconed\fR [\fIoptions\fR]`)
	r.section("description")
	r.text(`pineconed creates a TUN interface, gives this node the IPv6 address its
ed25519 key decides, encrypts each packet end to end for the node owning
the destination address, and routes it across a Pinecone overlay (a
spanning tree plus a virtual snake ordered by key) of peerings over TCP
and WebSocket and nodes discovered on the LAN.

Without options it runs on /etc/pineconed/pineconed.toml, or on built-in
defaults when that file is missing; see pineconed.toml(5). pineconectl(8)
talks to the running daemon over its admin socket. The metrics listener
serves Prometheus metrics at /metrics and a read-only status page at /.`)
	r.section("options")
	for _, f := range ParseGoFlags(help) {
		r.item(f.Names, f.Arg, f.Usage)
	}
	r.section("signals")
	r.text(`SIGHUP reloads the configuration file: changes that can be applied live
are, the others are logged as needing a restart. A file that does not load
is refused and the running configuration stays.

SIGINT and SIGTERM stop the daemon cleanly and remove its interface.`)
	r.section("exit status")
	r.text(`  0  clean shutdown, or an information option done
  1  the daemon could not start or run (TUN, sockets, key file)
  2  bad command line or bad configuration; nothing was changed`)
	r.section("files")
	r.text(`  /etc/pineconed/pineconed.toml   configuration
  /var/lib/pineconed/private.key  the node's identity (mode 0600)
  /run/pineconed/admin.sock       admin socket`)
	r.section("see also")
	r.line(`\fBpineconed.toml\fR(5), \fBpineconectl\fR(8), \fBsystemctl\fR(1)`)
	return r.bytes()
}

// Pineconectl is pineconectl(8), from the --help output of the root
// command (first) and of every command below it.
func Pineconectl(cmds []Command, version string) []byte {
	var r roff
	r.header("pineconectl", "8", version, "System Administration")
	r.section("name")
	r.line(`pineconectl \- control a running pineconed over its admin socket`)
	r.section("synopsis")
	r.line(`\fBpineconectl\fR [\fIglobal options\fR] \fIcommand\fR [\fIarguments\fR]`)
	if len(cmds) == 0 {
		return r.bytes()
	}
	root := cmds[0]
	r.section("description")
	r.text(root.Description)
	r.section("global options")
	for _, f := range root.Flags {
		r.item(f.Names, f.Arg, f.Usage)
	}
	r.section("commands")
	for _, c := range cmds[1:] {
		r.subsection(strings.Join(c.Usage, ", "))
		r.text(c.Description)
		for _, f := range c.Flags {
			r.item(f.Names, f.Arg, f.Usage)
		}
	}
	r.section("see also")
	r.line(`\fBpineconed\fR(8), \fBpineconed.toml\fR(5)`)
	return r.bytes()
}

// Config is pineconed.toml(5), from the output of `pineconed -genconf`.
func Config(genconf, version string) []byte {
	header, opts := ParseGenconf(genconf)
	var r roff
	r.header("pineconed.toml", "5", version, "File Formats")
	r.section("name")
	r.line(`pineconed.toml \- pineconed configuration file`)
	r.section("synopsis")
	r.line(`/etc/pineconed/pineconed.toml`)
	r.section("description")
	r.text(`The configuration of pineconed(8) is a TOML file. Parsing is strict: an
unknown option, a value of the wrong type or out of range is an error; all
problems are reported at once as FILE:LINE: OPTION: PROBLEM and the daemon
exits with status 2 without changing anything. "pineconed -genconf" prints
a complete file with every default, which is what this page lists.`)
	r.text(header)
	r.section("options")
	for _, o := range opts {
		if o.Section {
			r.subsection("[" + o.Key + "]")
			r.text(o.Doc)
			continue
		}
		r.item(o.Key, "= "+o.Default, o.Doc)
	}
	r.section("see also")
	r.line(`\fBpineconed\fR(8), \fBpineconectl\fR(8)`)
	return r.bytes()
}
