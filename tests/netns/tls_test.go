package netns

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// makeCert gives nd a self-signed certificate (its own root) for every ULA
// address it has on a link, for its wss:// listener.
func (n *Net) makeCert(nd *Node) {
	t := n.t
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "pineconed test " + nd.Name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	for _, l := range n.links {
		switch {
		case l.A == nd && l.AddrA.IsValid():
			tmpl.IPAddresses = append(tmpl.IPAddresses, net.IP(l.AddrA.AsSlice()))
		case l.B == nd && l.AddrB.IsValid():
			tmpl.IPAddresses = append(tmpl.IPAddresses, net.IP(l.AddrB.AsSlice()))
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	nd.TLSCert = filepath.Join(nd.Dir, "tls-cert.pem")
	nd.TLSKey = filepath.Join(nd.Dir, "tls-key.pem")
	if err := os.WriteFile(nd.TLSCert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(nd.TLSKey, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// trust adds to's certificate to from's CA bundle.
func (n *Net) trust(from, to *Node) {
	t := n.t
	t.Helper()
	cert, err := os.ReadFile(to.TLSCert)
	if err != nil {
		t.Fatal(err)
	}
	from.TLSCA = filepath.Join(from.Dir, "tls-ca.pem")
	f, err := os.OpenFile(from.TLSCA, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(cert); err != nil {
		t.Fatal(err)
	}
}

// TestWebSocketTLSUntrusted: a dials b over wss:// without trusting b's
// self-signed certificate: the peering must never be made.
func TestWebSocketTLSUntrusted(t *testing.T) {
	n := newNet(t)
	a, b := n.Node("a"), n.Node("b")
	l := n.Connect(a, b, true)
	n.Peer(a, b, l, "wss")
	a.TLSCA = "" // forget b's certificate: only the system roots remain
	n.StartAll()
	// Three dial attempts refused for b's certificate (back-off 1 s,
	// 2 s), counted in a's log as they end: none may succeed.
	waitFor(t, "a to give up on b's certificate three times", 20*time.Second, 100*time.Millisecond, func() (bool, string) {
		if _, ok := a.PeerWith(b); ok {
			t.Fatal("a peered with b over wss:// without trusting b's certificate")
		}
		n := a.logCount("msg=reconnecting", "certificate")
		return n >= 3, fmt.Sprintf("%d refused\n%s", n, a.logTail(3))
	})
	if _, ok := a.PeerWith(b); ok {
		t.Fatal("a peered with b over wss:// without trusting b's certificate")
	}
	// The control: trusting it, the same peering works.
	a.Stop(syscall.SIGTERM)
	n.trust(a, b)
	a.Start()
	a.WaitPeer(b)
}
