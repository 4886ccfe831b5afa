package peers

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pineconed/pineconed/internal/testhelp"
	"github.com/pineconed/pineconed/internal/testhelp/testframe"
	"github.com/pineconed/pineconed/overlay"
	"github.com/pineconed/pineconed/overlay/link"
	"github.com/pineconed/pineconed/overlay/peers/peeruri"
	"github.com/pineconed/pineconed/overlay/router"
	"github.com/pineconed/pineconed/overlay/wire"
)

var (
	privA, privB, privC = testhelp.SeedKey(1), testhelp.SeedKey(2), testhelp.SeedKey(3)
	keyA, keyB, keyC    = wire.PublicKeyOf(privA), wire.PublicKeyOf(privB), wire.PublicKeyOf(privC)
)

// greeting is what the fake node queues on every new link inside Attach,
// as a stock node queues its tree announcement.
var greeting = testframe.Of(wire.TypeTreeAnnouncement, 40, 0x61)

// fakeNode implements Switch: lowest free port, a port limit, and a record
// of everything that happened.
type fakeNode struct {
	mu       sync.Mutex
	maxPorts int
	links    map[router.Port]overlay.Link
	infos    map[router.Port]overlay.PeerInfo
	attaches []overlay.PeerInfo
	detaches []error
	frames   map[router.Port][][]byte
}

func newFakeNode() *fakeNode {
	return &fakeNode{
		maxPorts: int(router.MaxPort),
		links:    map[router.Port]overlay.Link{},
		infos:    map[router.Port]overlay.PeerInfo{},
		frames:   map[router.Port][][]byte{},
	}
}

func (n *fakeNode) Attach(info overlay.PeerInfo, l overlay.Link) (router.Port, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for p := router.Port(1); int(p) <= n.maxPorts; p++ {
		if _, used := n.links[p]; !used {
			n.links[p], n.infos[p] = l, info
			n.attaches = append(n.attaches, info)
			delete(n.frames, p)
			l.Send(bytes.Clone(greeting), true)
			return p, nil
		}
	}
	return 0, errors.New("no free switch ports")
}

// Peerings lists the attached links in port order, as the node does.
func (n *fakeNode) Peerings() []overlay.Peering {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]overlay.Peering, 0, len(n.links))
	for p := router.Port(1); p <= router.MaxPort; p++ {
		if l, ok := n.links[p]; ok {
			out = append(out, overlay.Peering{Port: p, Info: n.infos[p], Link: l})
		}
	}
	return out
}

func (n *fakeNode) Receive(port router.Port, frame []byte) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if wire.FrameType(frame[5]) != wire.TypeKeepalive {
		n.frames[port] = append(n.frames[port], bytes.Clone(frame))
	}
	return nil
}

func (n *fakeNode) KeepaliveSent(router.Port, int) {}

func (n *fakeNode) Detach(port router.Port, reason error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, ok := n.links[port]; !ok {
		panic("detach of a port that is not attached")
	}
	delete(n.links, port)
	delete(n.infos, port)
	n.detaches = append(n.detaches, reason)
}

// portFor returns the port of the live peering with key, if any.
func (n *fakeNode) portFor(key wire.PublicKey) (router.Port, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for p, info := range n.infos {
		if info.Key == key {
			return p, true
		}
	}
	return 0, false
}

func (n *fakeNode) live() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.links)
}

func (n *fakeNode) attachCount() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.attaches)
}

func (n *fakeNode) detachReasons() []error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]error(nil), n.detaches...)
}

func (n *fakeNode) send(port router.Port, f []byte) bool {
	n.mu.Lock()
	l := n.links[port]
	n.mu.Unlock()
	return l != nil && l.Send(f, false)
}

func (n *fakeNode) got(port router.Port) [][]byte {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([][]byte(nil), n.frames[port]...)
}

// remote is the remote address of the link attached on port, or "" when
// there is none or it is not a *link.Conn.
func (n *fakeNode) remote(port router.Port) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if c, ok := n.links[port].(*link.Conn); ok {
		return c.RemoteAddr().String()
	}
	return ""
}

func (n *fakeNode) info(port router.Port) overlay.PeerInfo {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.infos[port]
}

// selfSigned makes a certificate for 127.0.0.1 and a client config that
// trusts it.
func selfSigned(t *testing.T) (server, client *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:     []string{"localhost"},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}},
		&tls.Config{RootCAs: pool}
}

// newManager starts a manager for priv on a fresh fake node and closes it
// when the test ends.
func newManager(t *testing.T, cfg Config, priv ed25519.PrivateKey) (*Manager, *fakeNode) {
	t.Helper()
	cfg.PrivateKey = priv
	if cfg.Logger == nil {
		cfg.Logger, _ = testhelp.NewLogger(t)
	}
	n := newFakeNode()
	return startManager(t, cfg, n), n
}

// startManager starts a manager on sw and closes it when the test ends.
func startManager(t *testing.T, cfg Config, sw Switch) *Manager {
	t.Helper()
	m, err := New(cfg, sw)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// mkURI parses a URI's syntax for a test, leaving what the manager checks
// for a static peer or a listener (host, port 0, pin) to the manager.
func mkURI(s string) peeruri.URI {
	u, err := peeruri.Parse(s)
	if err != nil {
		panic(fmt.Sprintf("test URI %q: %v", s, err))
	}
	return u
}

// mkURIs is mkURI for a list.
func mkURIs(ss ...string) []peeruri.URI {
	out := make([]peeruri.URI, len(ss))
	for i, s := range ss {
		out[i] = mkURI(s)
	}
	return out
}

// refusals counts the "refusing peer" lines in buf that name key and give
// reason: the manager logs every refusal at debug level.
func refusals(buf *testhelp.LogBuffer, key wire.PublicKey, reason error) int {
	n := 0
	for _, l := range buf.Lines(`msg="refusing peer"`) {
		if strings.Contains(l, "peer="+key.String()) && strings.Contains(l, reason.Error()) {
			n++
		}
	}
	return n
}

// waitRefusals waits until buf holds more refusals of key for reason than
// it does now: the event a test of "stays out" waits for, since each one
// is a retry that was checked and turned away.
func waitRefusals(t *testing.T, buf *testhelp.LogBuffer, key wire.PublicKey, reason error, more int) {
	t.Helper()
	want := refusals(buf, key, reason) + more
	testhelp.WaitFor(t, fmt.Sprintf("%d more refusals of %s (%v)", more, key, reason), 10*time.Second,
		func() bool { return refusals(buf, key, reason) >= want },
		func() string { return fmt.Sprintf("%d of %d", refusals(buf, key, reason), want) })
}
