package netns

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/html"
)

// ScreenshotDirEnv names a directory where TestStatusPageInBrowser keeps
// its screenshot; without it the screenshot goes to the test's temporary
// directory, whose path the test logs (and which go test removes).
const ScreenshotDirEnv = "PINECONED_SCREENSHOT_DIR"

// chromiumFlags make headless Chromium usable on a closed CI machine: no
// sandbox (root in a namespace), no GPU, and none of the background
// connections that this network would refuse.
var chromiumFlags = []string{
	"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
	"--disable-background-networking", "--disable-component-update", "--disable-sync",
	"--hide-scrollbars", "--window-size=1200,1100",
	// The page's console on stderr: CSP violations and script errors.
	"--enable-logging=stderr", "--v=0",
	// Run the page's timers for this long (virtual time, which Chromium
	// advances as soon as the page is idle): enough for several refreshes.
	"--virtual-time-budget=9000",
}

// chromium runs headless Chromium inside nd's namespace with a new empty
// profile and the given extra arguments, and returns its standard output.
// It fails the test when the page's console reports a Content Security
// Policy violation or an uncaught script error.
// The whole process group is killed when it ends, so no renderer or zygote
// outlives it.
func chromium(t *testing.T, nd *Node, bin string, args ...string) (string, error) {
	t.Helper()
	profile := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	all := append(append([]string{"netns", "exec", nd.NS, bin, "--user-data-dir=" + profile}, chromiumFlags...), args...)
	cmd := exec.CommandContext(ctx, "ip", all...)
	cmd.Env = append(os.Environ(), "HOME="+profile)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	if err != nil {
		return stdout.String(), fmt.Errorf("chromium %s: %w\n%s", strings.Join(args, " "), err, lastLines(stderr.String(), 10))
	}
	for _, l := range strings.Split(stderr.String(), "\n") {
		if strings.Contains(l, ":CONSOLE") && (strings.Contains(l, "Content Security Policy") || strings.Contains(l, "Uncaught")) {
			t.Fatalf("the page's console: %s", l)
		}
	}
	return stdout.String(), nil
}

// pageView is what the test reads back from the rendered page.
type pageView struct {
	refreshes int
	rootKey   string
	peers     map[string][2]float64 // key → in and out rates in B/s
	errorText string
}

// readPage finds the page's fields in the DOM Chromium dumped after its
// script ran.
func readPage(dom string) (pageView, error) {
	doc, err := html.Parse(strings.NewReader(dom))
	if err != nil {
		return pageView{}, err
	}
	v := pageView{peers: map[string][2]float64{}}
	attr := func(n *html.Node, name string) (string, bool) {
		for _, a := range n.Attr {
			if a.Key == name {
				return a.Val, true
			}
		}
		return "", false
	}
	text := func(n *html.Node) string {
		var b strings.Builder
		for c := range n.Descendants() {
			if c.Type == html.TextNode {
				b.WriteString(c.Data)
			}
		}
		return strings.TrimSpace(b.String())
	}
	for n := range doc.Descendants() {
		if n.Type != html.ElementNode {
			continue
		}
		id, _ := attr(n, "id")
		switch id {
		case "updated":
			r, _ := attr(n, "data-refreshes")
			v.refreshes, _ = strconv.Atoi(r)
		case "root-key":
			v.rootKey = text(n)
		case "error":
			if _, hidden := attr(n, "hidden"); !hidden {
				v.errorText = text(n)
			}
		}
		key, ok := attr(n, "data-peer-key")
		if !ok || n.Data != "tr" {
			continue
		}
		var rates [2]float64
		for td := range n.Descendants() {
			cls, _ := attr(td, "class")
			bps, _ := attr(td, "data-bps")
			f, _ := strconv.ParseFloat(bps, 64)
			switch {
			case strings.Contains(cls, "rate-in"):
				rates[0] = f
			case strings.Contains(cls, "rate-out"):
				rates[1] = f
			}
		}
		v.peers[key] = rates
	}
	return v, nil
}

// TestStatusPageInBrowser starts two nodes in namespaces, floods pings
// across the overlay and loads a's status page in headless Chromium inside
// a's namespace: the page must show b as a peer, the tree root, a non-zero
// traffic rate for b, and have refreshed itself more than once without a
// reload. It saves a screenshot (see ScreenshotDirEnv).
func TestStatusPageInBrowser(t *testing.T) {
	needTool(t, "ping")
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium is not installed (apt-get install chromium); CI installs it")
	}
	n := newNet(t)
	nodes, _ := n.Line(2, "tcp")
	a, b := nodes[0], nodes[1]
	a.WaitReach(b.Addr)
	root := a.Key
	if b.Key.Compare(root) > 0 {
		root = b.Key
	}

	// A flood of 1000-byte pings until the test ends (ping -f waits for
	// each reply, so it stays bounded by the round trip).
	a.StartBg("ping-flood", "ping", "-6", "-q", "-f", "-s", "1000", b.Addr.String())

	url := "http://" + metricsListen + "/"
	var v pageView
	waitFor(t, "the status page to show b with a non-zero rate", commandTimeout, time.Second, func() (bool, string) {
		dom, err := chromium(t, a, bin, "--dump-dom", url)
		if err != nil {
			return false, err.Error()
		}
		if v, err = readPage(dom); err != nil {
			return false, err.Error()
		}
		r := v.peers[b.Key.String()]
		return v.refreshes >= 2 && v.rootKey == root.String() && r[0] > 0 && r[1] > 0 && v.errorText == "",
			fmt.Sprintf("%+v", v)
	})
	t.Logf("page: %d refreshes, root %s, b's rates in %.0f B/s, out %.0f B/s",
		v.refreshes, v.rootKey[:16], v.peers[b.Key.String()][0], v.peers[b.Key.String()][1])
	if len(v.peers) != 1 {
		t.Errorf("page lists %d peers, want 1 (b): %+v", len(v.peers), v.peers)
	}

	dir := os.Getenv(ScreenshotDirEnv)
	if dir == "" {
		dir = t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(dir, "statuspage.png")
	if _, err := chromium(t, a, bin, "--screenshot="+shot, url); err != nil {
		t.Fatal(err)
	}
	png, err := os.ReadFile(shot)
	if err != nil || len(png) < 8 || string(png[1:4]) != "PNG" {
		t.Fatalf("screenshot %s: not a PNG (%d bytes, %v)", shot, len(png), err)
	}
	t.Logf("screenshot saved to %s (%d bytes); set %s to keep it", shot, len(png), ScreenshotDirEnv)
}
