package netns

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestLineTCP: a–b–c peered over TCP; a reaches c (two overlay hops) with
// ping and SSH.
func TestLineTCP(t *testing.T) {
	testLine(t, "tcp")
}

// TestLineWebSocket is TestLineTCP over ws:// peerings.
func TestLineWebSocket(t *testing.T) {
	testLine(t, "ws")
}

// TestLineWebSocketTLS is TestLineTCP over wss:// peerings: each listener
// has a self-signed certificate for its link addresses in [peers.tls], and
// the dialler trusts it through ca_file.
func TestLineWebSocketTLS(t *testing.T) {
	testLine(t, "wss")
}

func testLine(t *testing.T, scheme string) {
	n := newNet(t)
	nodes, _ := n.Line(3, scheme)
	a, b, c := nodes[0], nodes[1], nodes[2]

	for _, p := range b.Peers() {
		if p.Transport != scheme {
			t.Errorf("b's peering with %s… has transport %q, want %q", p.PublicKey[:16], p.Transport, scheme)
		}
	}
	if _, ok := a.PeerWith(c); ok {
		t.Fatalf("a and c are direct peers; the test needs them two hops apart")
	}

	took := a.WaitReach(c.Addr)
	t.Logf("a reached c over %s after %s", scheme, took.Round(time.Millisecond))
	out, err := a.Ping6(c.Addr, "-c", "3", "-i", "0.2", "-W", "2")
	if err != nil {
		t.Fatalf("ping -6 -c 3 from a to c (%s): %v\n%s", c.Addr, err, out)
	}
	if !strings.Contains(out, "3 packets transmitted, 3 received") {
		t.Fatalf("ping from a to c lost packets:\n%s", out)
	}
	t.Logf("ping a→c:\n%s", lastLines(out, 2))

	checkSSH(t, a, c)
}

// sshRunning is an sshd in a node's namespace, listening on its overlay
// address only, with a client key allowed to log in as root.
type sshRunning struct {
	port    int
	addr    netip.Addr
	keyPath string
	dir     string
	sshd    *Bg
}

// startSSHD generates host and client keys and runs sshd -D in nd's
// namespace on nd's overlay address.
func startSSHD(t *testing.T, nd *Node) sshRunning {
	t.Helper()
	needTool(t, "sshd", "ssh", "ssh-keygen")
	sshd, _ := lookTool("sshd")
	dir := filepath.Join(nd.Dir, "ssh")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	hostKey := filepath.Join(dir, "host_ed25519")
	clientKey := filepath.Join(dir, "client_ed25519")
	for _, k := range []string{hostKey, clientKey} {
		mustRun(t, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "pcd-netns-test", "-f", k)
	}
	pub, err := os.ReadFile(clientKey + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), pub, 0o600); err != nil {
		t.Fatal(err)
	}
	// sshd refuses to start without its privilege separation directory.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Fatal(err)
	}
	const port = 2222
	cfg := fmt.Sprintf(`# written by tests/netns
ListenAddress [%s]:%d
HostKey %s
PidFile none
AuthorizedKeysFile %s
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
LogLevel VERBOSE
`, nd.Addr, port, hostKey, filepath.Join(dir, "authorized_keys"))
	cfgPath := filepath.Join(dir, "sshd_config")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	bg := nd.StartBg("sshd", sshd, "-D", "-e", "-f", cfgPath)
	bg.WaitOutput(t, "Server listening on", 15*time.Second)
	return sshRunning{port: port, addr: nd.Addr, keyPath: clientKey, dir: dir, sshd: bg}
}

// checkSSH logs in from one node to an sshd on another over the overlay
// and runs a command there.
func checkSSH(t *testing.T, from, to *Node) {
	t.Helper()
	srv := startSSHD(t, to)
	ssh, _ := lookTool("ssh")
	const want = "pineconed-ssh-ok"
	start := time.Now()
	out, err := from.Run(ssh, "-F", "/dev/null", "-i", srv.keyPath, "-p", fmt.Sprint(srv.port),
		"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
		"-o", "BatchMode=yes", "-o", "ConnectTimeout=15", "-o", "LogLevel=ERROR",
		"root@"+srv.addr.String(), "echo "+want)
	if err != nil {
		t.Fatalf("ssh from %s to %s: %v\n%s", from.Name, srv.addr, err, out)
	}
	if !regexp.MustCompile(`(?m)^` + want + `$`).MatchString(out) {
		t.Fatalf("ssh from %s to %s: output %q does not contain the line %q", from.Name, srv.addr, out, want)
	}
	t.Logf("ssh %s→%s ran a command in %s", from.Name, to.Name, time.Since(start).Round(time.Millisecond))
	// The session process on the server side ends once the connection is
	// closed over the overlay; wait for it before the test tears the
	// overlay down under it.
	waitFor(t, "the sshd session to end", 10*time.Second, 50*time.Millisecond, func() (bool, string) {
		kids := srv.sshd.Children()
		return len(kids) == 0, fmt.Sprintf("sshd children %v", kids)
	})
}
