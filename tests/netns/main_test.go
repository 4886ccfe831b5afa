// Package netns holds the real-network integration tests: each test builds
// a small network of Linux network namespaces joined by veth pairs, runs one
// real pineconed (with a real TUN device) per namespace, and checks what
// crosses the overlay with ordinary tools: ping, SSH, tcpdump and small UDP
// and HTTP helpers.
//
// The tests need root, iproute2's ip and /dev/net/tun; without them every
// test skips and says why. They also skip under -short. Underlay addresses
// are ULA (fd00:0:0:N::/64) or link-local, namespace and link names carry a
// per-run unique part, and every test tears down what it made.
//
// The test binary doubles as a helper run inside namespaces (see helper
// modes in helpers_test.go): when PCD_NETNS_HELPER is set, TestMain runs
// that helper instead of the tests.
//
// Run them as root from the repository root:
//
//	go test -count=1 -v ./tests/netns
//	go test -count=1 -v ./tests/netns -run TestSquareFailover
//
// Tests that watch a network for a while have a short variant for CI and a
// long one behind -soak:
//
//	go test -count=1 -v ./tests/netns -run TestIdlePeerings -soak
//
// A failing test prints the tail of every daemon's log (debug level) and
// keeps each node's directory (configuration, key, logs, captures) under
// /tmp/pcd-<node>-*; namespaces are always removed.
//
// Layout: harness_test.go (Net, Node, Link, daemon start/stop, admin
// calls, waits), helpers_test.go (in-namespace helpers: UDP, TCP, HTTP,
// proxy; metrics parsing), and one file per theme: line (ping and SSH over
// tcp, ws, wss), traffic (first-burst queue, underlay privacy, bulk
// integrity, large packets, relay-only), resilience (restart, failover
// outage, reload, garbage on a peering), ctl (pineconectl, metrics),
// subnet, unreachable (ICMPv6 errors, MTU mismatch), mesh, multicast, tls,
// idle (peerings left idle, then lightly used, on every transport).
package netns

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"
)

var (
	// skipReason, when set, makes every test skip with it.
	skipReason string
	// pineconedBin and pineconectlBin are the binaries built by TestMain.
	pineconedBin, pineconectlBin string
	// selfExe is this test binary, re-run inside namespaces as a helper.
	selfExe string
	// runTag is the per-run unique part of namespace and link names.
	runTag = strconv.FormatInt(int64(os.Getpid()), 36)
)

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(runHelper(mode, os.Args[1:]))
	}
	os.Exit(setup(m))
}

// setup decides whether the tests can run here, builds the binaries and
// runs the tests.
func setup(m *testing.M) int {
	flag.Parse()
	skipReason = environmentProblem()
	if skipReason == "" && testing.Short() {
		skipReason = "network namespace tests are slow; skipped with -short"
	}
	if skipReason != "" {
		fmt.Fprintf(os.Stderr, "tests/netns: every test skips: %s\n", skipReason)
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "pcd-netns-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "tests/netns:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	if selfExe, err = os.Executable(); err != nil {
		fmt.Fprintln(os.Stderr, "tests/netns: finding the test binary:", err)
		return 1
	}
	start := time.Now()
	for _, b := range []struct {
		out *string
		pkg string
	}{
		{&pineconedBin, "github.com/pineconed/pineconed/cmd/pineconed"},
		{&pineconectlBin, "github.com/pineconed/pineconed/cmd/pineconectl"},
	} {
		*b.out = filepath.Join(dir, filepath.Base(b.pkg))
		cmd := exec.Command(goTool(), "build", "-o", *b.out, b.pkg)
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "tests/netns: go build %s: %v\n%s", b.pkg, err, out)
			return 1
		}
	}
	fmt.Fprintf(os.Stderr, "tests/netns: built pineconed and pineconectl in %.1fs\n", time.Since(start).Seconds())
	return m.Run()
}

// environmentProblem says why the namespace tests cannot run here, or "".
func environmentProblem() string {
	if runtime.GOOS != "linux" {
		return "network namespace tests need Linux"
	}
	if os.Geteuid() != 0 {
		return "network namespace tests need root (ip netns, veth, TUN)"
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return "network namespace tests need iproute2's ip command (apt-get install iproute2)"
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		return "network namespace tests need /dev/net/tun: " + err.Error()
	}
	if _, err := os.Stat(filepath.Join(moduleRoot(), "cmd", "pineconed")); err != nil {
		return "cmd/pineconed does not exist yet, nothing to test"
	}
	return ""
}

// moduleRoot is the repository root, two levels above this package.
func moduleRoot() string {
	wd, err := os.Getwd()
	if err != nil {
		return "../.."
	}
	return filepath.Join(wd, "..", "..")
}

// goTool finds the go command: PATH, else the usual install location.
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "/usr/local/go/bin/go"
}

// needNetns skips t when the namespace tests cannot run.
func needNetns(t *testing.T) {
	t.Helper()
	if skipReason != "" {
		t.Skip(skipReason)
	}
}

// needTool skips t when a command it uses is not installed. CI installs
// all of them (see .ci/run).
func needTool(t *testing.T, names ...string) {
	t.Helper()
	for _, name := range names {
		if _, err := lookTool(name); err != nil {
			t.Skipf("%s is not installed (apt-get install iputils-ping openssh-server openssh-client tcpdump iperf3)", name)
		}
	}
}

// lookTool finds a command by name, also in the sbin directories that a
// non-login root PATH may lack. The path is absolute: sshd insists.
func lookTool(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		if abs, err := filepath.Abs(p); err == nil {
			return abs, nil
		}
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/bin", "/bin"} {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found", name)
}
