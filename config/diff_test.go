package config

import (
	"github.com/pineconed/pineconed/overlay/peers/peeruri"

	"bytes"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/pineconed/pineconed/overlay/wire"
)

func TestDiffNothing(t *testing.T) {
	ch := Diff(Default(), Default())
	if !ch.Empty() || ch.NeedsRestart() || ch.Changed("peers") {
		t.Fatalf("no change reported as %+v", ch)
	}
}

// Every option changed at once: each lands in exactly one of Live and
// Restart, with the split documented on Changes.
func TestDiffClassifiesEveryOption(t *testing.T) {
	ch := Diff(Default(), everyFieldChanged(t))
	wantLive := []string{"log_level", "peers.listen", "peers.static", "peers.allowed_keys", "peers.max_peers", "peers.peer_timeout", "peers.advertise", "peers.card_dirs",
		"multicast.enable", "multicast.interfaces", "multicast.listen_port"}
	wantRestart := []string{"private_key_file", "log_format", "tun.enable", "tun.name", "tun.mtu",
		"peers.tls.cert_file", "peers.tls.key_file", "peers.tls.ca_file", "admin.socket", "admin.group", "metrics.listen"}
	if !reflect.DeepEqual(ch.Live, wantLive) {
		t.Errorf("Live = %v\nwant   %v", ch.Live, wantLive)
	}
	if !reflect.DeepEqual(ch.Restart, wantRestart) {
		t.Errorf("Restart = %v\nwant      %v", ch.Restart, wantRestart)
	}
	if !ch.NeedsRestart() || !ch.Changed("tun") || !ch.Changed("peers.tls") || ch.Changed("peer") {
		t.Errorf("Changed/NeedsRestart wrong for %+v", ch)
	}
}

func TestDiffPeerSets(t *testing.T) {
	k, _ := wire.ParsePublicKey(goodKey)
	uri := func(s string) PeerURI {
		u, err := peeruri.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	old := Default()
	old.Peers.Static = []PeerURI{uri("tcp://a:1"), uri("tcp://b:1"), uri("tcp://c:1")}
	old.Peers.Listen = []PeerURI{uri("tcp://:1"), uri("ws://:2/")}
	old.Peers.AllowedKeys = []wire.PublicKey{k}
	old.Multicast.Interfaces = []string{"eth0", "wlan0"}

	// Reordering alone is no change.
	same := old
	same.Peers.Static = []PeerURI{uri("tcp://c:1"), uri("tcp://a:1"), uri("tcp://b:1")}
	same.Peers.Listen = []PeerURI{uri("ws://:2/"), uri("tcp://:1")}
	same.Multicast.Interfaces = []string{"wlan0", "eth0"}
	if ch := Diff(old, same); !ch.Empty() {
		t.Fatalf("reordering reported as %+v", ch)
	}

	// b removed, d added, c re-pinned (removed and added again).
	upd := old
	upd.Peers.Static = []PeerURI{uri("tcp://a:1"), uri("tcp://c:1?key=" + goodKey), uri("tcp://d:1")}
	upd.Peers.Listen = []PeerURI{uri("tcp://:1"), uri("wss://:3/")}
	upd.Peers.AllowedKeys = nil
	ch := Diff(old, upd)
	str := func(us []PeerURI) []string {
		var s []string
		for _, u := range us {
			s = append(s, u.String())
		}
		return s
	}
	if got, want := str(ch.StaticAdded), []string{"tcp://c:1?key=" + goodKey, "tcp://d:1"}; !slices.Equal(got, want) {
		t.Errorf("StaticAdded = %v, want %v", got, want)
	}
	if got, want := str(ch.StaticRemoved), []string{"tcp://b:1", "tcp://c:1"}; !slices.Equal(got, want) {
		t.Errorf("StaticRemoved = %v, want %v", got, want)
	}
	if got, want := str(ch.ListenAdded), []string{"wss://:3/"}; !slices.Equal(got, want) {
		t.Errorf("ListenAdded = %v, want %v", got, want)
	}
	if got, want := str(ch.ListenRemoved), []string{"ws://:2/"}; !slices.Equal(got, want) {
		t.Errorf("ListenRemoved = %v, want %v", got, want)
	}
	if want := []string{"peers.listen", "peers.static", "peers.allowed_keys"}; !slices.Equal(ch.Live, want) || ch.NeedsRestart() {
		t.Errorf("Live = %v Restart = %v", ch.Live, ch.Restart)
	}

	var logs bytes.Buffer
	slog.New(slog.NewTextHandler(&logs, nil)).Info("reload", "changes", ch)
	for _, want := range []string{
		"changes.live=\"[peers.listen peers.static peers.allowed_keys]\"",
		"changes.static_added=\"[tcp://c:1?key=" + goodKey + " tcp://d:1]\"",
		"changes.static_removed=\"[tcp://b:1 tcp://c:1]\"",
		"changes.listen_added=[wss://:3/]",
		"changes.listen_removed=[ws://:2/]",
	} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log %s lacks %s", logs.String(), want)
		}
	}
	if strings.Contains(logs.String(), "restart") {
		t.Errorf("empty restart list logged: %s", logs.String())
	}
}
