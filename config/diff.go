package config

import (
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strings"
)

// Changes is what a SIGHUP reload changes, computed by Diff. The daemon
// applies the Live keys, keeps running with the old values for the Restart
// keys, and logs both (Changes is a slog.LogValuer).
type Changes struct {
	// Live are the dotted keys whose new values the daemon applies at once:
	// log_level, peers.listen, peers.static, peers.allowed_keys,
	// peers.max_peers, peers.peer_timeout, peers.advertise, peers.card_dirs and everything under
	// multicast.
	Live []string
	// Restart are the dotted keys whose change only takes effect after a
	// restart: private_key_file, log_format, everything under tun,
	// peers.tls, admin and metrics.
	Restart []string

	// StaticAdded and StaticRemoved are the static peers to start and stop.
	// A peer whose ?key= pin changed is removed and added again.
	StaticAdded, StaticRemoved []PeerURI
	// ListenAdded and ListenRemoved are the listeners to open and close.
	ListenAdded, ListenRemoved []PeerURI
}

// Empty reports whether nothing changed.
func (c Changes) Empty() bool { return len(c.Live) == 0 && len(c.Restart) == 0 }

// Changed reports whether key, or any key under it, changed: Changed("multicast")
// is true when any multicast option did.
func (c Changes) Changed(key string) bool {
	match := func(k string) bool { return k == key || strings.HasPrefix(k, key+".") }
	return slices.ContainsFunc(c.Live, match) || slices.ContainsFunc(c.Restart, match)
}

// NeedsRestart reports whether some change only takes effect after a restart.
func (c Changes) NeedsRestart() bool { return len(c.Restart) > 0 }

// LogValue groups the changes for one log record, e.g.
// live=[peers.static] restart=[tun.mtu] static_added=[tcp://h:1].
func (c Changes) LogValue() slog.Value {
	var attrs []slog.Attr
	add := func(name string, v []string) {
		if len(v) > 0 {
			attrs = append(attrs, slog.Any(name, v))
		}
	}
	uris := func(us []PeerURI) []string {
		s := make([]string, len(us))
		for i, u := range us {
			s[i] = u.String()
		}
		return s
	}
	add("live", c.Live)
	add("restart", c.Restart)
	add("static_added", uris(c.StaticAdded))
	add("static_removed", uris(c.StaticRemoved))
	add("listen_added", uris(c.ListenAdded))
	add("listen_removed", uris(c.ListenRemoved))
	return slog.GroupValue(attrs...)
}

// Diff compares the running configuration with a reloaded one. Lists whose
// order carries no meaning (peers, listeners, keys, interface patterns) are
// compared as sets, so reordering a file changes nothing.
func Diff(old, new Config) Changes {
	var c Changes
	ov, nv := reflect.ValueOf(old), reflect.ValueOf(new)
	for _, o := range options {
		path := strings.Split(o.key, ".")
		of, _ := fieldByPath(ov, path)
		nf, _ := fieldByPath(nv, path)
		if of.Kind() == reflect.Struct && of.Type() != peerURIType {
			continue // a table: its keys have their own entries
		}
		if sameValue(of, nf) {
			continue
		}
		if o.live {
			c.Live = append(c.Live, o.key)
		} else {
			c.Restart = append(c.Restart, o.key)
		}
	}
	c.StaticAdded, c.StaticRemoved = uriDelta(old.Peers.Static, new.Peers.Static)
	c.ListenAdded, c.ListenRemoved = uriDelta(old.Peers.Listen, new.Peers.Listen)
	return c
}

func sameValue(a, b reflect.Value) bool {
	if a.Kind() != reflect.Slice {
		return reflect.DeepEqual(a.Interface(), b.Interface())
	}
	set := func(v reflect.Value) []string {
		s := make([]string, v.Len())
		for i := range v.Len() {
			s[i] = fmt.Sprint(v.Index(i).Interface())
		}
		slices.Sort(s)
		return slices.Compact(s)
	}
	return slices.Equal(set(a), set(b))
}

// uriDelta returns the URIs only in new and only in old, by canonical form.
func uriDelta(old, new []PeerURI) (added, removed []PeerURI) {
	in := func(list []PeerURI, u PeerURI) bool {
		return slices.ContainsFunc(list, func(x PeerURI) bool { return x.String() == u.String() })
	}
	for _, u := range new {
		if !in(old, u) && !in(added, u) {
			added = append(added, u)
		}
	}
	for _, u := range old {
		if !in(new, u) && !in(removed, u) {
			removed = append(removed, u)
		}
	}
	return added, removed
}
