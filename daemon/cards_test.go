package daemon

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pineconed/pineconed/admin"
	"github.com/pineconed/pineconed/internal/testhelp"
	"github.com/pineconed/pineconed/overlay/peers/peeruri"
	"github.com/pineconed/pineconed/peercard/peercardtest"
)

// restart closes n's daemon and starts it again on the same files.
func (n *testNode) restart(t *testing.T) {
	t.Helper()
	n.client.Close()
	n.d.Close()
	cfg, err := LoadConfig(n.path, false)
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(Options{Config: cfg, ConfigPath: n.path, Logger: NewLogger(io.MultiWriter(n.logs, testWriter{t}), "text", n.level),
		Level: n.level, Version: "test", Notify: func(string) {}})
	if err != nil {
		t.Fatalf("restart: %v", err)
	}
	n.d = d
	t.Cleanup(func() { d.Close() })
	if n.client, err = admin.Dial(d.AdminPath()); err != nil {
		t.Fatal(err)
	}
}

func peerNames(t *testing.T, n *testNode) map[string]string {
	t.Helper()
	ps, err := n.client.Peers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, p := range ps {
		out[p.PublicKey] = p.Name
	}
	return out
}

// TestCardImport: b imports a's card over the admin socket, peers with a
// pinned to a's key and shows a's name; the card survives a restart in the
// state file (the TOML is not touched); a bad card changes nothing;
// removing it stops the peering.
func TestCardImport(t *testing.T) {
	ctx := context.Background()
	a := startNode(t, "")
	b := startNode(t, "")
	keyA := a.d.PublicKey().String()

	// 127.0.0.1 is not a wildcard: no --host needed, and port 0 becomes the
	// bound port.
	card, err := a.client.Card(ctx, admin.CardArgs{Name: "node-a"})
	if err != nil {
		t.Fatal(err)
	}
	if want := "tcp://" + a.d.ListenAddrs()[0]; len(card.URIs) != 1 || card.URIs[0] != want || card.PublicKey != keyA {
		t.Fatalf("card %+v, want URI %s and key %s", card.CardInfo, want, keyA)
	}
	if _, err := a.client.ImportCard(ctx, card.Card); err == nil || !strings.Contains(err.Error(), "own card") {
		t.Fatalf("a imported its own card: %v", err)
	}

	toml := readFile(t, b.path)
	r, err := b.client.ImportCard(ctx, card.Card)
	if err != nil || r.Replaced || r.Name != "node-a" || r.Source != admin.CardSourceImport {
		t.Fatalf("import: %+v, %v", r, err)
	}
	pinned := card.URIs[0] + "?key=" + keyA
	if !hasStatic(b.d, pinned) {
		t.Fatalf("no static peer %s", pinned)
	}
	testhelp.WaitFor(t, "b to peer with a", 10*time.Second, func() bool { return peerNames(t, b)[keyA] == "node-a" })

	state := filepath.Join(b.dir, cardsFileName)
	fi, err := os.Stat(state)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("state file: %v, %v", fi, err)
	}
	if readFile(t, b.path) != toml {
		t.Fatal("importing a card rewrote the configuration file")
	}

	// Refused cards: the reason, and nothing changes.
	saved := readFile(t, state)
	tampered := peercardtest.Tamper(card.Card)
	forged := peercardtest.Forge(t, card.Card)
	for text, want := range map[string]string{tampered: "checksum", forged: "signature", "hi": "not a well-formed card"} {
		if _, err := b.client.ImportCard(ctx, text); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("bad card: %v, want %q", err, want)
		}
	}
	if readFile(t, state) != saved {
		t.Fatal("a refused card changed the state file")
	}

	b.restart(t)
	if !hasStatic(b.d, pinned) {
		t.Fatal("card's peer not restored after a restart")
	}
	testhelp.WaitFor(t, "b to peer with a after restart", 10*time.Second, func() bool { return peerNames(t, b)[keyA] == "node-a" })
	if cards, err := b.client.Cards(ctx); err != nil || len(cards) != 1 || cards[0].Name != "node-a" {
		t.Fatalf("cards after restart: %+v, %v", cards, err)
	}

	if _, err := b.client.RemoveCard(ctx, "node-a"); err != nil {
		t.Fatal(err)
	}
	if hasStatic(b.d, pinned) {
		t.Fatal("static peer stays after its card was removed")
	}
	testhelp.WaitFor(t, "peering to end", 10*time.Second, func() bool { return len(b.d.node.Peers()) == 0 })
	if s := readFile(t, state); strings.Contains(s, "peer card") {
		t.Fatalf("removed card still in the state file:\n%s", s)
	}
}

// TestCardExpiry: when an imported card expires the daemon drops it and
// stops dialling its URIs.
func TestCardExpiry(t *testing.T) {
	ctx := context.Background()
	a := startNode(t, "")
	b := startNode(t, "")
	card, err := a.client.Card(ctx, admin.CardArgs{ValidSeconds: 3})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.client.ImportCard(ctx, card.Card); err != nil {
		t.Fatal(err)
	}
	pinned := card.URIs[0] + "?key=" + a.d.PublicKey().String()
	testhelp.WaitFor(t, "peering", 10*time.Second, func() bool { return len(b.d.node.Peers()) == 1 })
	testhelp.WaitFor(t, "the card to expire", 10*time.Second, func() bool { return !hasStatic(b.d, pinned) })
	testhelp.WaitFor(t, "peering to end", 10*time.Second, func() bool { return len(b.d.node.Peers()) == 0 })
	if cards, _ := b.client.Cards(ctx); len(cards) != 0 {
		t.Fatalf("expired card still held: %+v", cards)
	}
	if !strings.Contains(b.logs.String(), "peer card expired") {
		t.Fatal("expiry not logged")
	}
	if _, err := b.client.ImportCard(ctx, card.Card); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("expired card imported: %v", err)
	}
}

// TestCardDirs: *.card files in [peers] card_dirs are imported at start and
// on reload, refused ones are logged with the reason, and a card whose file
// is gone is dropped at the next reload.
func TestCardDirs(t *testing.T) {
	ctx := context.Background()
	a := startNode(t, "")
	dir := t.TempDir()
	b := startNode(t, fmt.Sprintf("card_dirs = [%q]", dir))
	card, err := a.client.Card(ctx, admin.CardArgs{Name: "from-usb"})
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "a.card")
	writeFile(t, file, card.Card)
	writeFile(t, filepath.Join(dir, "junk.card"), "not a card\n")
	writeFile(t, filepath.Join(dir, "notes.txt"), card.Card) // not *.card: ignored
	if err := b.d.Reload(); err != nil {
		t.Fatal(err)
	}
	cards, err := b.client.Cards(ctx)
	if err != nil || len(cards) != 1 || cards[0].Source != file || cards[0].Name != "from-usb" {
		t.Fatalf("cards: %+v, %v", cards, err)
	}
	if !strings.Contains(b.logs.String(), "junk.card") {
		t.Fatal("refused card file not logged")
	}
	testhelp.WaitFor(t, "peering", 10*time.Second, func() bool { return peerNames(t, b)[a.d.PublicKey().String()] == "from-usb" })
	// Directory cards are not persisted: the directory is their home.
	if s, err := os.ReadFile(filepath.Join(b.dir, cardsFileName)); err == nil && strings.Contains(string(s), "peer card") {
		t.Fatalf("directory card written to the state file:\n%s", s)
	}

	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	if err := b.d.Reload(); err != nil {
		t.Fatal(err)
	}
	if cards, _ := b.client.Cards(ctx); len(cards) != 0 {
		t.Fatalf("card kept after its file went: %+v", cards)
	}
	if hasStatic(b.d, card.URIs[0]+"?key="+a.d.PublicKey().String()) {
		t.Fatal("static peer kept after its card's file went")
	}
}

// TestCardNeedsHost: a listener on every address cannot go on a card
// without a host to dial; with one, the host replaces the address.
func TestCardNeedsHost(t *testing.T) {
	a := startNode(t, "")
	if err := a.d.peers.AddListener(peeruri.URI{Scheme: peeruri.SchemeTCP, Host: "[::]:0"}); err != nil {
		t.Skipf("no IPv6 loopback to listen on: %v", err)
	}
	_, _, err := a.d.Card("", "", time.Hour)
	if err == nil || !strings.Contains(err.Error(), "--host") {
		t.Fatalf("card without host: %v", err)
	}
	_, c, err := a.d.Card("fd00::1", "", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.URIs) != 2 || !strings.HasPrefix(c.URIs[0], "tcp://[fd00::1]:") || !strings.HasPrefix(c.URIs[1], "tcp://[fd00::1]:") {
		t.Fatalf("URIs %v", c.URIs)
	}
}

// TestCardStaticDuplicate: a card whose URI is configured already as a
// static peer does not add a second dialler for the same endpoint.
func TestCardStaticDuplicate(t *testing.T) {
	ctx := context.Background()
	a := startNode(t, "")
	addrA := "tcp://" + a.d.ListenAddrs()[0]
	b := startNode(t, fmt.Sprintf("static = [%q]", addrA))
	card, err := a.client.Card(ctx, admin.CardArgs{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.client.ImportCard(ctx, card.Card); err != nil {
		t.Fatal(err)
	}
	if n := len(b.d.peers.List()); n != 1 || hasStatic(b.d, card.URIs[0]+"?key="+a.d.PublicKey().String()) {
		t.Fatalf("%d static peers after importing a card for a configured endpoint: %+v", n, b.d.peers.List())
	}
}

// TestCardStateFileDamaged: a state file that does not parse stops the
// start with its path, and is left as it was.
func TestCardStateFileDamaged(t *testing.T) {
	dir := t.TempDir()
	path := writeConfig(t, dir, "")
	state := filepath.Join(dir, cardsFileName)
	writeFile(t, state, "{not json")
	cfg, err := LoadConfig(path, false)
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(Options{Config: cfg, ConfigPath: path, Logger: NewLogger(io.Discard, "text", new(slog.LevelVar)), Notify: func(string) {}})
	if err == nil {
		d.Close()
		t.Fatal("started with a damaged cards file")
	}
	if !strings.Contains(err.Error(), state) || readFile(t, state) != "{not json" {
		t.Fatalf("error %v; file now %q", err, readFile(t, state))
	}
}

// TestCardAdvertise: [peers] advertise replaces the listeners on the card.
func TestCardAdvertise(t *testing.T) {
	a := startNode(t, `advertise = ["wss://relay.example/pinecone", "tcp://[2001:db8::1]:65432"]`)
	r, err := a.client.Card(context.Background(), admin.CardArgs{Host: "ignored.example"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(r.URIs, " ") != "wss://relay.example:443/pinecone tcp://[2001:db8::1]:65432" {
		t.Fatalf("URIs %q", r.URIs)
	}
}
