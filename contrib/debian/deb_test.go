// Package debian_test builds the Debian package with build-deb.sh and
// checks it: control fields and file list (dpkg-deb), the extracted files
// against the repository's, the packaged binaries' version, an install and
// purge with dpkg into a throw-away root (maintainer scripts included), and
// the maintainer scripts' systemd branch against a stand-in systemctl.
//
// Not tested here, for want of a machine booted with systemd: apt resolving
// the Depends line, and systemctl really enabling and starting the unit
// (the unit itself is checked by contrib/systemd's tests).
package debian_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

const (
	version    = "v1.2.3-test"
	debVersion = "1.2.3-test"
)

var (
	buildOnce sync.Once
	debPath   string
	buildOut  string
	buildErr  error
)

// buildDeb runs the one documented command once per test binary.
func buildDeb(t *testing.T) string {
	t.Helper()
	for _, tool := range []string{"dpkg-deb", "go", "git"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed", tool)
		}
	}
	if testing.Short() {
		t.Skip("builds the package (binaries, man pages, nfpm); skipped with -short")
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "pineconed-deb-")
		if err != nil {
			buildErr = err
			return
		}
		cmd := exec.Command("./build-deb.sh", dir)
		cmd.Env = append(os.Environ(), "VERSION="+version)
		out, err := cmd.CombinedOutput()
		buildOut, buildErr = string(out), err
		debPath = strings.TrimSpace(lastLine(string(out)))
	})
	if buildErr != nil {
		t.Fatalf("build-deb.sh: %v\n%s", buildErr, buildOut)
	}
	return debPath
}

func lastLine(s string) string {
	s = strings.TrimRight(s, "\n")
	return s[strings.LastIndex(s, "\n")+1:]
}

func TestMain(m *testing.M) {
	code := m.Run()
	if debPath != "" {
		os.RemoveAll(filepath.Dir(debPath))
	}
	os.Exit(code)
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func readRepo(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("../..", path))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// files is what the package must install, with modes.
var files = map[string]string{
	"./usr/bin/pineconed":                                               "-rwxr-xr-x",
	"./usr/bin/pineconectl":                                             "-rwxr-xr-x",
	"./usr/lib/systemd/system/pineconed.service":                        "-rw-r--r--",
	"./usr/lib/sysusers.d/pineconed.conf":                               "-rw-r--r--",
	"./usr/share/man/man8/pineconed.8.gz":                               "-rw-r--r--",
	"./usr/share/man/man8/pineconectl.8.gz":                             "-rw-r--r--",
	"./usr/share/man/man5/pineconed.toml.5.gz":                          "-rw-r--r--",
	"./usr/share/doc/pineconed/copyright":                               "-rw-r--r--",
	"./usr/share/doc/pineconed/examples/pineconed.toml":                 "-rw-r--r--",
	"./usr/share/doc/pineconed/examples/prometheus/pineconed.rules.yml": "-rw-r--r--",
	"./usr/share/doc/pineconed/examples/grafana/pineconed.json":         "-rw-r--r--",
}

// TestDebContents checks the control fields, the file list with owners
// and modes, and the extracted files against their sources.
func TestDebContents(t *testing.T) {
	deb := buildDeb(t)
	if filepath.Base(deb) != "pineconed_"+debVersion+"_"+goarch(t)+".deb" {
		t.Errorf("package file %s", deb)
	}
	for field, want := range map[string]string{
		"Package": "pineconed", "Version": debVersion, "Architecture": goarch(t),
		"Depends": "systemd", "Section": "net",
	} {
		if got := strings.TrimSpace(run(t, "dpkg-deb", "-f", deb, field)); got != want {
			t.Errorf("control field %s = %q, want %q", field, got, want)
		}
	}
	info := run(t, "dpkg-deb", "-I", deb)
	for _, script := range []string{"postinst", "prerm", "postrm", "md5sums"} {
		if !strings.Contains(info, " "+script+" ") {
			t.Errorf("control archive lacks %s:\n%s", script, info)
		}
	}

	listed := map[string]bool{}
	for _, l := range strings.Split(run(t, "dpkg-deb", "-c", deb), "\n") {
		f := strings.Fields(l)
		if len(f) < 6 || strings.HasSuffix(f[5], "/") {
			continue
		}
		listed[f[5]] = true
		want, ok := files[f[5]]
		if !ok {
			t.Errorf("unexpected file in the package: %s", f[5])
			continue
		}
		if f[0] != want || f[1] != "root/root" {
			t.Errorf("%s: %s %s, want %s root/root", f[5], f[0], f[1], want)
		}
	}
	for f := range files {
		if !listed[f] {
			t.Errorf("the package lacks %s", f)
		}
	}

	x := t.TempDir()
	run(t, "dpkg-deb", "-x", deb, x)
	read := func(p string) []byte {
		b, err := os.ReadFile(filepath.Join(x, p))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	unit := string(readRepo(t, "contrib/systemd/pineconed.service"))
	if got := string(read("usr/lib/systemd/system/pineconed.service")); got !=
		strings.Replace(unit, "\nExecStart=/usr/local/bin/pineconed\n", "\nExecStart=/usr/bin/pineconed\n", 1) ||
		!strings.Contains(got, "\nExecStart=/usr/bin/pineconed\n") {
		t.Errorf("packaged unit is not contrib/systemd's with ExecStart=/usr/bin/pineconed:\n%s", got)
	}
	for pkgPath, repoPath := range map[string]string{
		"usr/lib/sysusers.d/pineconed.conf":                               "contrib/systemd/pineconed.sysusers",
		"usr/share/doc/pineconed/copyright":                               "LICENSE",
		"usr/share/doc/pineconed/examples/pineconed.toml":                 "config.example.toml",
		"usr/share/doc/pineconed/examples/prometheus/pineconed.rules.yml": "contrib/prometheus/pineconed.rules.yml",
		"usr/share/doc/pineconed/examples/grafana/pineconed.json":         "contrib/grafana/pineconed.json",
	} {
		if !bytes.Equal(read(pkgPath), readRepo(t, repoPath)) {
			t.Errorf("%s differs from %s", pkgPath, repoPath)
		}
	}

	// The binaries are release builds: they print the package's version.
	if out := run(t, filepath.Join(x, "usr/bin/pineconed"), "-version"); out != "pineconed "+version+"\n" {
		t.Errorf("packaged pineconed -version: %q", out)
	}
	out := run(t, filepath.Join(x, "usr/bin/pineconectl"), "--socket", filepath.Join(x, "none.sock"), "version")
	if !strings.HasPrefix(out, "pineconectl "+version+"\n") {
		t.Errorf("packaged pineconectl version: %q", out)
	}

	// The man pages are gzipped roff for this version, listing the
	// packaged binaries' flags (one sample each) and options.
	for page, want := range map[string]string{
		"usr/share/man/man8/pineconed.8.gz":      `\fB\-genconf\fR`,
		"usr/share/man/man8/pineconectl.8.gz":    `.SS "pineconectl ping ADDRESS|KEY [flags]"`,
		"usr/share/man/man5/pineconed.toml.5.gz": `\fBtun.mtu\fR`,
	} {
		zr, err := gzip.NewReader(bytes.NewReader(read(page)))
		if err != nil {
			t.Fatalf("%s: %v", page, err)
		}
		body, err := io.ReadAll(zr)
		if err != nil {
			t.Fatalf("%s: %v", page, err)
		}
		if !bytes.Contains(body, []byte(`"pineconed `+strings.ReplaceAll(version, "-", `\-`)+`"`)) || !bytes.Contains(body, []byte(want)) {
			t.Errorf("%s lacks its version header or %q:\n%.400s", page, want, body)
		}
	}
}

func goarch(t *testing.T) string {
	t.Helper()
	if a := os.Getenv("GOARCH"); a != "" {
		return a
	}
	return strings.TrimSpace(run(t, "go", "env", "GOARCH"))
}

// TestDpkgInstallIntoThrowawayRoot installs the package with dpkg into an
// empty root directory, running the maintainer scripts against that root
// (--force-script-chrootless, DPKG_ROOT), then purges it.
func TestDpkgInstallIntoThrowawayRoot(t *testing.T) {
	deb := buildDeb(t)
	if os.Geteuid() != 0 {
		t.Skip("dpkg --root needs root; CI runs as root")
	}
	if _, err := exec.LookPath("dpkg"); err != nil {
		t.Skip("dpkg is not installed")
	}
	root := t.TempDir()
	for _, d := range []string{"var/lib/dpkg/info", "var/lib/dpkg/updates", "var/lib/dpkg/triggers", "etc"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"var/lib/dpkg/status", "var/lib/dpkg/available"} {
		if err := os.WriteFile(filepath.Join(root, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dpkg := func(args ...string) string {
		t.Helper()
		// --force-depends: the throw-away root has no systemd package.
		return run(t, "dpkg", append([]string{"--root=" + root, "--force-script-chrootless", "--force-depends", "--log=/dev/null"}, args...)...)
	}
	dpkg("-i", deb)
	if st := dpkg("-s", "pineconed"); !strings.Contains(st, "Status: install ok installed") || !strings.Contains(st, "Version: "+debVersion) {
		t.Fatalf("dpkg -s after install:\n%s", st)
	}
	for f := range files {
		if _, err := os.Stat(filepath.Join(root, f)); err != nil {
			t.Errorf("installed root lacks %s: %v", f, err)
		}
	}
	// postinst ran systemd-sysusers on the root: the daemon's user exists.
	if _, err := exec.LookPath("systemd-sysusers"); err == nil {
		passwd, _ := os.ReadFile(filepath.Join(root, "etc/passwd"))
		group, _ := os.ReadFile(filepath.Join(root, "etc/group"))
		if !strings.Contains(string(passwd), "pineconed:x:") || !strings.Contains(string(passwd), ":/var/lib/pineconed:") ||
			!strings.Contains(string(group), "pineconed:x:") {
			t.Errorf("postinst did not create the pineconed user and group:\n%s\n%s", passwd, group)
		}
	}
	if out := run(t, filepath.Join(root, "usr/bin/pineconed"), "-version"); out != "pineconed "+version+"\n" {
		t.Errorf("installed pineconed -version: %q", out)
	}

	// What the daemon would have made: purge removes it.
	state := filepath.Join(root, "var/lib/pineconed")
	if err := os.MkdirAll(state, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(state, "private.key"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	dpkg("-P", "pineconed")
	if out, err := exec.Command("dpkg", "--root="+root, "-s", "pineconed").CombinedOutput(); err == nil {
		t.Errorf("still known to dpkg after purge:\n%s", out)
	}
	for _, p := range append([]string{"var/lib/pineconed"}, keys(files)...) {
		if _, err := os.Stat(filepath.Join(root, p)); !os.IsNotExist(err) {
			t.Errorf("%s still there after purge (%v)", p, err)
		}
	}
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestMaintainerScriptsUnderSystemd runs the scripts as on a machine
// booted with systemd (/run/systemd/system present, in a private mount
// namespace) with a stand-in systemctl that records its arguments: a fresh
// install enables and starts the service, an upgrade restarts it only if
// running, removal stops and disables it.
func TestMaintainerScriptsUnderSystemd(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for a private mount namespace; CI runs as root")
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("unshare is not installed (util-linux)")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	log := filepath.Join(dir, "calls")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tool := range []string{"systemctl", "systemd-sysusers"} {
		stub := "#!/bin/sh\necho \"" + tool + " $*\" >> " + log + "\n"
		if err := os.WriteFile(filepath.Join(bin, tool), []byte(stub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	scripts, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	steps := strings.Join([]string{
		"mount -t tmpfs tmpfs /run", "mkdir -p /run/systemd/system",
		scripts + "/postinst configure", scripts + "/postinst configure 1.2.2",
		scripts + "/prerm upgrade 1.2.4", scripts + "/prerm remove", scripts + "/postrm remove",
	}, " && ")
	cmd := exec.Command("unshare", "-m", "sh", "-c", steps)
	cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"))
	cmd.Env = append(cmd.Env, "DPKG_ROOT=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("maintainer scripts: %v\n%s", err, out)
	}
	calls, _ := os.ReadFile(log)
	want := strings.Join([]string{
		"systemd-sysusers --root=/ pineconed.conf", "systemctl daemon-reload", "systemctl enable --now pineconed.service",
		"systemd-sysusers --root=/ pineconed.conf", "systemctl daemon-reload", "systemctl try-restart pineconed.service",
		"systemctl disable --now pineconed.service", "systemctl daemon-reload",
	}, "\n") + "\n"
	if string(calls) != want {
		t.Errorf("calls:\n%s\nwant:\n%s", calls, want)
	}
}

// TestShellcheck lints the build script and the maintainer scripts.
func TestShellcheck(t *testing.T) {
	sc, err := exec.LookPath("shellcheck")
	if err != nil {
		t.Skip("shellcheck is not installed (apt-get install shellcheck); CI installs it")
	}
	if out, err := exec.Command(sc, "build-deb.sh", "postinst", "prerm", "postrm").CombinedOutput(); err != nil {
		t.Fatalf("shellcheck: %v\n%s", err, out)
	}
}
