package readme

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pineconed/pineconed/config"
	"github.com/pineconed/pineconed/internal/testhelp"
)

// readmeCommand returns the README's command with exactly this text, so a
// test runs what the README shows and fails when the README changes.
func readmeCommand(t *testing.T, text string) command {
	t.Helper()
	cmds, _ := extract(readRepoFile(t, "README.md"))
	for _, c := range cmds {
		if c.text == text {
			return c
		}
	}
	t.Fatalf("README.md no longer shows %q", text)
	return command{}
}

// shell runs one command line with sh in dir, with PATH starting at
// binDir, and returns its combined output.
func shell(ctx context.Context, dir, binDir, line string, extraEnv ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "sh", "-c", line)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PATH="+binDir+string(os.PathListSeparator)+os.Getenv("PATH"))
	cmd.Env = append(cmd.Env, extraEnv...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// built runs the README's two build lines in the repository root, as a
// user would, and returns a directory holding copies of the binaries to
// put first on PATH (where the install steps would put them).
func built(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "pineconed-readme-bin")
		if buildErr != nil {
			return
		}
		for _, name := range []string{"pineconed", "pineconectl"} {
			line := "go build -o " + name + " ./cmd/" + name
			if out, err := shell(context.Background(), root, "", line); err != nil {
				buildErr = errors.New(line + ": " + err.Error() + "\n" + out)
				return
			}
			b, err := os.ReadFile(filepath.Join(root, name))
			if err == nil {
				err = os.WriteFile(filepath.Join(binDir, name), b, 0o755)
			}
			if err != nil {
				buildErr = err
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binDir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

func TestBuildHelpGenconf(t *testing.T) {
	for _, line := range []string{"go build -o pineconed ./cmd/pineconed", "go build -o pineconectl ./cmd/pineconectl"} {
		readmeCommand(t, line)
	}
	bin := built(t)
	ctx := context.Background()
	out, err := shell(ctx, root, bin, readmeCommand(t, "pineconectl --help").text)
	if err != nil || !strings.Contains(out, "Usage:") || !strings.Contains(out, "Available Commands:") {
		t.Fatalf("pineconectl --help: %v\n%s", err, out)
	}
	out, err = shell(ctx, root, bin, readmeCommand(t, "pineconed -genconf").text)
	if err != nil || out != readRepoFile(t, "config.example.toml") {
		t.Fatalf("pineconed -genconf (%v) differs from config.example.toml:\n%s", err, out)
	}
}

// TestReleaseBuild runs the README's release build and its -version: the
// binary reports the version given to the linker.
func TestReleaseBuild(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if out, err := shell(ctx, root, "", readmeCommand(t, releaseBuild).text); err != nil {
		t.Fatalf("%s: %v\n%s", releaseBuild, err, out)
	}
	out, err := shell(ctx, root, "", readmeCommand(t, "./pineconed -version").text)
	if err != nil || out != "pineconed v1.2.3\n" {
		t.Fatalf("./pineconed -version: %q, %v", out, err)
	}
	readmeCommand(t, "pineconed -version")
}

// The bad-configuration example: the README shows the real messages and
// the daemon exits with status 2.
func TestBadConfigExample(t *testing.T) {
	c := readmeCommand(t, "./pineconed -config bad.toml")
	bin := built(t)
	dir := t.TempDir()
	exe, err := os.ReadFile(filepath.Join(bin, "pineconed"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "pineconed"), exe, 0o755); err != nil {
		t.Fatal(err)
	}
	// The file behind the README's example, line by line.
	bad := "[peers]\nstatc = [\"tcp://[fd00::1]:65432\"]\nmax_peers = 1000\n[tun]\nmtu = 70000\n"
	if err := os.WriteFile(filepath.Join(dir, "bad.toml"), []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := shell(context.Background(), dir, "", c.text)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 {
		t.Fatalf("exit %v, want status 2\n%s", err, out)
	}
	if got, want := strings.TrimSpace(out), strings.Join(c.output, "\n"); got != want {
		t.Fatalf("README.md:%d shows\n%s\nthe daemon says\n%s", c.line, want, got)
	}
}

// rehearsalPath puts the absolute paths of an install step under root.
var rehearsalPath = regexp.MustCompile(`(^|\s)/(usr|etc)/`)

// The install steps, run from the repository root as shown but under a
// scratch root directory: sudo is dropped, /usr/… and /etc/… are prefixed
// with the scratch root, and systemd-sysusers gets --root. The result must
// be the installed binaries, the pineconed user and group, the unit as
// shipped and a configuration that parses to the defaults. (The unit itself
// is checked by contrib/systemd's systemd-analyze tests.)
func TestInstallRehearsal(t *testing.T) {
	sysusers, err := exec.LookPath("systemd-sysusers")
	if err != nil {
		t.Skip("systemd-sysusers is not installed (apt-get install systemd)")
	}
	built(t) // the binaries in the repository root are this run's
	scratch := t.TempDir()
	// What a Debian root has before the steps.
	for _, d := range []string{"usr/local/bin", "usr/lib/sysusers.d", "etc/systemd/system"} {
		if err := os.MkdirAll(filepath.Join(scratch, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	steps := []string{
		"sudo install -m 0755 pineconed pineconectl /usr/local/bin/",
		"sudo install -m 0644 contrib/systemd/pineconed.sysusers /usr/lib/sysusers.d/pineconed.conf",
		"sudo systemd-sysusers",
		"sudo install -m 0644 contrib/systemd/pineconed.service /etc/systemd/system/",
		"sudo install -d -m 0755 /etc/pineconed",
		"pineconed -genconf | sudo tee /etc/pineconed/pineconed.toml > /dev/null",
	}
	for _, s := range steps {
		line := readmeCommand(t, s).text
		line = strings.ReplaceAll(line, "sudo ", "")
		line = rehearsalPath.ReplaceAllString(line, "${1}"+scratch+"/${2}/")
		if line == "systemd-sysusers" {
			line = sysusers + " --root=" + scratch
		}
		out, err := shell(context.Background(), root, filepath.Join(scratch, "usr/local/bin"), line)
		if err != nil {
			t.Fatalf("%s\n(rehearsed as %s): %v\n%s", s, line, err, out)
		}
	}
	for _, name := range []string{"pineconed", "pineconectl"} {
		fi, err := os.Stat(filepath.Join(scratch, "usr/local/bin", name))
		if err != nil || fi.Mode().Perm() != 0o755 {
			t.Fatalf("installed %s: %v %v", name, fi, err)
		}
	}
	passwd, _ := os.ReadFile(filepath.Join(scratch, "etc/passwd"))
	group, _ := os.ReadFile(filepath.Join(scratch, "etc/group"))
	if !bytes.Contains(passwd, []byte("\npineconed:")) && !bytes.HasPrefix(passwd, []byte("pineconed:")) ||
		!bytes.Contains(append([]byte("\n"), group...), []byte("\npineconed:")) {
		t.Fatalf("no pineconed user and group:\n%s\n%s", passwd, group)
	}
	unit, _ := os.ReadFile(filepath.Join(scratch, "etc/systemd/system/pineconed.service"))
	if string(unit) != readRepoFile(t, "contrib/systemd/pineconed.service") {
		t.Fatal("installed unit differs from contrib/systemd/pineconed.service")
	}
	cfgPath := filepath.Join(scratch, "etc/pineconed/pineconed.toml")
	if filepath.Join(scratch, config.DefaultPath) != cfgPath {
		t.Fatalf("the README writes %s, the daemon reads %s", cfgPath, config.DefaultPath)
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if !config.Diff(cfg, config.Default()).Empty() {
		t.Fatal("the generated configuration is not the defaults")
	}
}

// The first command of the README on a machine with no configuration, key
// or state: run in a fresh network namespace and a private mount namespace
// whose /var/lib and /run are empty, it must start on built-in defaults,
// answer pineconectl and serve metrics, and stop cleanly on SIGINT. The
// README's pineconectl, -address and curl examples run against it.
func TestFreshStart(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: runs the daemon in a new network and mount namespace with a TUN")
	}
	for _, tool := range []string{"ip", "unshare", "nsenter"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s: %v", tool, err)
		}
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		t.Skipf("needs /dev/net/tun: %v", err)
	}
	c := readmeCommand(t, quickRun)
	bin := built(t)
	abs, _ := filepath.Abs(root)
	for _, p := range []string{abs, bin} {
		if strings.HasPrefix(p, "/var/lib/") || strings.HasPrefix(p, "/run/") {
			t.Skipf("%s would be hidden by the empty /var/lib and /run of the sandbox", p)
		}
	}

	var rnd [3]byte
	rand.Read(rnd[:])
	ns := "pcdR" + hex.EncodeToString(rnd[:])
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	if out, err := exec.Command("ip", "-n", ns, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("lo up: %v\n%s", err, out)
	}
	// An empty /etc/pineconed too, should this machine have a real one.
	mounts := "mount -t tmpfs tmpfs /var/lib && mount -t tmpfs tmpfs /run"
	if _, err := os.Stat("/etc/pineconed"); err == nil {
		mounts += " && mount -t tmpfs tmpfs /etc/pineconed"
	}
	run := strings.ReplaceAll(c.text, "sudo ", "")
	daemon := exec.Command("ip", "netns", "exec", ns, "unshare", "--mount", "--propagation", "private",
		"sh", "-c", mounts+` && exec sh -c "$0"`, run)
	daemon.Dir = root
	daemon.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	daemon.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var log bytes.Buffer
	var logMu sync.Mutex
	daemon.Stdout = lockedWriter{&logMu, &log}
	daemon.Stderr = daemon.Stdout
	if err := daemon.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- daemon.Wait() }()
	logText := func() string { logMu.Lock(); defer logMu.Unlock(); return log.String() }
	stop := func() {
		syscall.Kill(-daemon.Process.Pid, syscall.SIGINT)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			syscall.Kill(-daemon.Process.Pid, syscall.SIGKILL)
			<-exited
			t.Errorf("the daemon did not stop on SIGINT")
		}
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			stop()
		}
		if t.Failed() {
			t.Logf("daemon log:\n%s", logText())
		}
	})

	// inside runs a README command in the daemon's namespaces.
	inside := func(text string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		line := strings.ReplaceAll(text, "sudo ", "")
		return shell(ctx, root, bin, "exec nsenter -t "+itoa(daemon.Process.Pid)+" -m -n -- sh -c '"+strings.ReplaceAll(line, "'", `'\''`)+"'")
	}
	status := readmeCommand(t, "pineconectl status").text
	var out string
	var err error
	testhelp.WaitEvery(t, "pineconectl status to answer", 60*time.Second, 200*time.Millisecond,
		func() bool { out, err = inside(status); return err == nil },
		func() string { return fmt.Sprintf("last try: %v\n%s", err, out) })
	if !strings.Contains(out, "Public key") || !strings.Contains(out, "pinecone0") {
		t.Fatalf("pineconectl status:\n%s", out)
	}
	if l := logText(); !strings.Contains(l, "running on built-in defaults") || !strings.Contains(l, "created a new node identity") {
		t.Fatalf("not a first start on defaults:\n%s", l)
	}
	addr, err := inside(readmeCommand(t, "sudo pineconed -address").text)
	if err != nil || !strings.Contains(out, "Address       "+strings.TrimSpace(addr)+"\n") {
		t.Fatalf("pineconed -address said %q (%v); status says\n%s", addr, err, out)
	}
	for _, want := range []struct{ cmd, has string }{
		{"pineconectl peers", "PORT"},
		{"pineconectl sessions", "KEY"},
		{"pineconectl tree", "Root"},
		{"pineconectl snake", "Ascending"},
		{"pineconectl version", "pineconectl"},
		{"pineconed -address", "fd"},
		{"curl -s http://127.0.0.1:9977/metrics | grep '^pineconed_tree'", "pineconed_tree_depth"},
		{"curl -s http://127.0.0.1:9977/api/status", `"getSelf":{"public_key":`},
	} {
		if strings.HasPrefix(want.cmd, "curl") {
			if _, err := exec.LookPath("curl"); err != nil {
				t.Logf("curl is not installed; not running %s", want.cmd)
				continue
			}
		}
		out, err := inside(readmeCommand(t, want.cmd).text)
		if err != nil || !strings.Contains(out, want.has) {
			t.Errorf("%s: %v\n%s", want.cmd, err, out)
		}
	}
	for _, cmd := range []string{
		"pineconectl peer add 'tcp://[fd00:0:0:2::1]:65432'",
		"pineconectl peer remove 'tcp://[fd00:0:0:2::1]:65432'",
	} {
		c := readmeCommand(t, cmd)
		out, err := inside(c.text)
		if err != nil || strings.TrimSpace(out) != strings.Join(c.output, "\n") {
			t.Errorf("README.md:%d: %s said %q (%v), the README shows %q", c.line, cmd, out, err, c.output)
		}
	}

	stop()
	stopped = true
	if l := logText(); !strings.Contains(l, "msg=stopped") {
		t.Fatalf("no clean stop in the log:\n%s", l)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}
