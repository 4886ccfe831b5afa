package netns

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pineconed/pineconed/peercard"
	"github.com/pineconed/pineconed/peercard/peercardtest"
)

// TestPeerCards: node a prints its card, node b imports it from a file,
// peers with a over TCP pinned to a's key and pings it; b restarts and
// still peers (the card is kept in b's state directory); a card that
// expires stops b dialling; a tampered card is refused with "checksum" and
// one re-signed with another key with "signature".
func TestPeerCards(t *testing.T) {
	n := newNet(t)
	a, b := n.Node("a"), n.Node("b")
	l := n.Connect(a, b, true)
	a.listenOn("tcp")
	n.StartAll()

	card, errOut, code := a.Ctl("card", "--host", l.AddrA.String(), "--name", "node-a")
	if code != 0 {
		t.Fatalf("pineconectl card: exit %d: %s", code, errOut)
	}
	if !strings.HasPrefix(card, peercard.Header+" v1\n") {
		t.Fatalf("card:\n%s", card)
	}
	file := filepath.Join(b.Dir, "a.card")
	if err := os.WriteFile(file, []byte(card), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := b.Ctl("card", "import", file)
	if code != 0 || !strings.Contains(out, "peering with "+uri("tcp", l.AddrA)) {
		t.Fatalf("pineconectl card import: exit %d: %s%s", code, out, errOut)
	}
	t.Logf("card of a:\n%s\ncard import on b:\n%s", card, out)
	b.WaitPeer(a)
	b.WaitReach(a.Addr)
	for _, cmd := range [][]string{{"peers"}, {"sessions"}, {"lookup", a.Addr.String()}, {"card", "list"}} {
		out, _, _ := b.Ctl(cmd...)
		if !strings.Contains(out, `"node-a"`) && !strings.Contains(out, " node-a ") {
			t.Errorf("pineconectl %s does not name a:\n%s", cmd[0], out)
		}
		t.Logf("pineconectl %s on b:\n%s", strings.Join(cmd, " "), out)
	}
	if toml, err := os.ReadFile(b.ConfigPath); err != nil || strings.Contains(string(toml), a.Key.String()) {
		t.Errorf("the card went into the configuration file (%v)", err)
	}

	// Refused cards, with the reason.
	for name, text := range map[string]string{"checksum": peercardtest.Tamper(card), "signature": peercardtest.Forge(t, card)} {
		bad := filepath.Join(b.Dir, name+".card")
		if err := os.WriteFile(bad, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		_, errOut, code := b.Ctl("card", "import", bad)
		if code != 1 || !strings.Contains(errOut, name) {
			t.Errorf("%s card: exit %d, %q", name, code, errOut)
		}
		t.Logf("pineconectl card import %s.card: %s", name, errOut)
	}

	// Restart: the imported card is read back from b's state directory.
	if _, err := b.Stop(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	b.Start()
	b.WaitPeer(a)
	b.WaitReach(a.Addr)

	// A newer card that expires soon replaces it; once it expires, b drops
	// it and stops dialling a.
	// (The first card is seconds old by now, so this one is newer.)
	short, errOut, code := a.Ctl("card", "--host", l.AddrA.String(), "--name", "node-a", "--valid", "6s")
	if code != 0 {
		t.Fatalf("pineconectl card --valid 6s: exit %d: %s", code, errOut)
	}
	if err := os.WriteFile(file, []byte(short), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, errOut, code := b.Ctl("card", "import", file); code != 0 || !strings.HasPrefix(out, "replaced card") {
		t.Fatalf("import of the short card: exit %d: %s%s", code, out, errOut)
	}
	b.WaitNoPeer(a, 20*time.Second)
	if out, _, _ := b.Ctl("card", "list"); strings.Contains(out, "node-a") {
		t.Errorf("expired card still listed:\n%s", out)
	}
	// b logs the expiry once the card's dialers have stopped (each one's
	// removal waits for its goroutine to end), so nothing dials a after it.
	b.WaitLogged(1, 10*time.Second, "peer card expired; no longer dialling its URIs")
	if _, ok := b.PeerWith(a); ok {
		t.Error("b peered with a again after a's card expired")
	}
	if n := b.logCount(`msg="static peer removed"`); n == 0 {
		t.Error("the expired card's static peer was not removed")
	}
	if _, errOut, code := b.Ctl("card", "import", file); code != 1 || !strings.Contains(errOut, "expired") {
		t.Errorf("expired card imported: exit %d, %q", code, errOut)
	}
}
