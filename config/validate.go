package config

import (
	"github.com/pineconed/pineconed/overlay/peers/peeruri"

	"errors"
	"fmt"
	"net"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

type validator struct {
	file   string
	idx    *keyIndex
	failed map[string]bool
	errs   Errors
}

func (v *validator) fail(key string, elem int, format string, args ...any) {
	path := strings.Split(key, ".")
	line := v.idx.line(path)
	if elem >= 0 {
		key = fmt.Sprintf("%s[%d]", key, elem)
		line = v.idx.elemLine(path, elem)
	}
	if v.failed[key] {
		return
	}
	for n := 1; n <= len(path); n++ {
		if v.failed[strings.Join(path[:n], ".")] {
			return
		}
	}
	v.errs = append(v.errs, &Error{File: v.file, Line: line, Key: key, Msg: fmt.Sprintf(format, args...)})
}

// validate checks values and the relations between them. It runs on every
// parsed file and on Config.Validate; idx may be nil (no lines then).
// Keys in failed could not be decoded and are not checked again.
func validate(c Config, file string, idx *keyIndex, failed map[string]bool) Errors {
	v := &validator{file: file, idx: idx, failed: failed}

	switch k := c.PrivateKeyFile; {
	case k == "":
		v.fail("private_key_file", -1, "must not be empty")
	case !strings.HasPrefix(k, "/"):
		// Relative to whatever directory the daemon happens to start in:
		// a start from elsewhere would silently make a new identity.
		v.fail("private_key_file", -1, "%q must be an absolute path", k)
	}
	if levelName(c.LogLevel) != "debug" && levelName(c.LogLevel) != "info" &&
		levelName(c.LogLevel) != "warn" && levelName(c.LogLevel) != "error" {
		v.fail("log_level", -1, "unknown log level %s (want debug, info, warn or error)", c.LogLevel)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		v.fail("log_format", -1, "unknown log format %q (want text or json)", c.LogFormat)
	}

	if c.TUN.Enable || c.TUN.Name != "" {
		if err := checkIfName(c.TUN.Name); err != nil {
			v.fail("tun.name", -1, "%v", err)
		}
	}
	switch m := c.TUN.MTU; {
	case m != 0 && m < MinMTU:
		v.fail("tun.mtu", -1, "%d is out of range: 0 (automatic) or %d..%d (IPv6 needs at least %d)", m, MinMTU, MaxMTU(), MinMTU)
	case m > MaxMTU():
		v.fail("tun.mtu", -1, "%d is out of range: 0 (automatic) or %d..%d (a larger packet does not fit one Pinecone frame with its framing and encryption)",
			m, MinMTU, MaxMTU())
	}

	seenListen := map[string]int{}
	for i, u := range c.Peers.Listen {
		if err := peeruri.CheckListen(u); err != nil {
			v.fail("peers.listen", i, "%s: %v", u, err)
			continue
		}
		if j, dup := seenListen[u.Host]; dup {
			v.fail("peers.listen", i, "%s: %s is already used by peers.listen[%d]", u, u.Host, j)
			continue
		}
		seenListen[u.Host] = i
		if u.Scheme == peeruri.SchemeWSS {
			if c.Peers.TLS.CertFile == "" || c.Peers.TLS.KeyFile == "" {
				v.fail("peers.listen", i, "%s: a wss listener needs peers.tls.cert_file and peers.tls.key_file", u)
			}
		}
	}
	seenStatic := map[string]int{}
	for i, u := range c.Peers.Static {
		if err := peeruri.CheckStatic(u); err != nil {
			v.fail("peers.static", i, "%s: %v", u, err)
			continue
		}
		if j, dup := seenStatic[u.URL()]; dup {
			v.fail("peers.static", i, "%s: duplicate of peers.static[%d]", u, j)
			continue
		}
		seenStatic[u.URL()] = i
	}
	for i, u := range c.Peers.Advertise {
		err := peeruri.CheckStatic(u)
		if err == nil {
			err = peeruri.CheckListen(u)
		}
		if err != nil {
			v.fail("peers.advertise", i, "%s: %v", u, err)
		}
	}
	for i, dir := range c.Peers.CardDirs {
		if !filepath.IsAbs(dir) {
			v.fail("peers.card_dirs", i, "%q is not an absolute path", dir)
		}
	}
	for i, k := range c.Peers.AllowedKeys {
		if k.IsZero() {
			v.fail("peers.allowed_keys", i, "the all-zero key is not a node key")
		}
	}
	if c.Peers.MaxPeers < 1 || c.Peers.MaxPeers > MaxPeers {
		v.fail("peers.max_peers", -1, "%d is out of range 1..%d (Pinecone ports 1..%d)", c.Peers.MaxPeers, MaxPeers, MaxPeers)
	}
	if t := c.Peers.PeerTimeout; t < MinPeerTimeout || t > MaxPeerTimeout {
		v.fail("peers.peer_timeout", -1, "%v is out of range %v..%v", t, MinPeerTimeout, MaxPeerTimeout)
	} else if t%time.Millisecond != 0 {
		v.fail("peers.peer_timeout", -1, "%v is finer than the kernel's millisecond", t)
	}
	tls := c.Peers.TLS
	if (tls.CertFile == "") != (tls.KeyFile == "") {
		if tls.CertFile == "" {
			v.fail("peers.tls.cert_file", -1, "must be set together with peers.tls.key_file")
		} else {
			v.fail("peers.tls.key_file", -1, "must be set together with peers.tls.cert_file")
		}
	}

	for i, expr := range c.Multicast.Interfaces {
		if _, err := regexp.Compile(expr); err != nil {
			v.fail("multicast.interfaces", i, "bad regular expression: %v", err)
		}
	}
	if p := c.Multicast.ListenPort; p < 0 || p > 65535 {
		v.fail("multicast.listen_port", -1, "%d is out of range 0..65535 (0 = a free port)", p)
	}

	if s := c.Admin.Socket; s != "" && !strings.HasPrefix(s, "/") {
		v.fail("admin.socket", -1, "%q must be an absolute path (or \"\" for no admin socket)", s)
	}
	if g := c.Admin.Group; strings.ContainsAny(g, " \t\n:/") {
		v.fail("admin.group", -1, "%q is not a valid group name", g)
	}

	if l := c.Metrics.Listen; l != "" {
		if err := checkHostPort(l); err != nil {
			v.fail("metrics.listen", -1, "%q: %v (want host:port, or \"\" to turn metrics off)", l, err)
		}
	}
	return v.errs
}

// checkIfName applies the kernel's rules for interface names.
func checkIfName(name string) error {
	switch {
	case name == "":
		return errors.New("must not be empty when the TUN is enabled")
	case len(name) > 15:
		return fmt.Errorf("%q is longer than 15 bytes", name)
	case name == "." || name == "..":
		return fmt.Errorf("%q is not a valid interface name", name)
	case strings.ContainsAny(name, "/: \t\n"):
		return fmt.Errorf("%q must not contain '/', ':' or white space", name)
	}
	return nil
}

func checkHostPort(s string) error {
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		var ae *net.AddrError
		if errors.As(err, &ae) {
			return errors.New(ae.Err)
		}
		return err
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("bad port %q", port)
	}
	return nil
}
