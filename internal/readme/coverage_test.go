package readme

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// root is the repository root, seen from this package's directory.
const root = "../.."

// The two commands the README must start with: run the daemon on built-in
// defaults, and run the whole test suite as root (exactly .ci/run's last
// command, with sudo keeping the caller's PATH).
const (
	quickRun  = "go build -o pineconed ./cmd/pineconed && sudo ./pineconed"
	quickTest = `sudo env "PATH=$PATH" go test -count=1 -timeout 45m ./...`
	// releaseBuild is the README's release build with a version.
	releaseBuild = `go build -ldflags "-X github.com/pineconed/pineconed/internal/version.release=v1.2.3" -o pineconed ./cmd/pineconed`
)

// selfRun are the README commands that the tests of this package run
// themselves, each with the test that does it.
var selfRun = map[string]string{
	quickRun:                                                "TestFreshStart",
	"go build -o pineconed ./cmd/pineconed":                 "TestBuildHelpGenconf",
	"go build -o pineconectl ./cmd/pineconectl":             "TestBuildHelpGenconf",
	"pineconectl --help":                                    "TestBuildHelpGenconf",
	"pineconed -genconf":                                    "TestBuildHelpGenconf",
	"./pineconed -config bad.toml":                          "TestBadConfigExample",
	"pineconectl status":                                    "TestFreshStart",
	"pineconectl peers":                                     "TestFreshStart",
	"pineconectl sessions":                                  "TestFreshStart",
	"pineconectl tree":                                      "TestFreshStart",
	"pineconectl peer add 'tcp://[fd00:0:0:2::1]:65432'":    "TestFreshStart",
	"pineconectl peer remove 'tcp://[fd00:0:0:2::1]:65432'": "TestFreshStart",
	"sudo pineconed -address":                               "TestFreshStart",
	"pineconed -address":                                    "TestFreshStart",
	"sudo ./pineconed":                                      "TestFreshStart",
	"pineconectl snake":                                     "TestFreshStart",
	"pineconectl version":                                   "TestFreshStart",
	"curl -s http://127.0.0.1:9977/metrics | grep '^pineconed_tree'": "TestFreshStart",
	"curl -s http://127.0.0.1:9977/api/status":                       "TestFreshStart",
	releaseBuild:           "TestReleaseBuild",
	"./pineconed -version": "TestReleaseBuild",
	"pineconed -version":   "TestReleaseBuild",
	// The install steps, rehearsed under a scratch root directory.
	"sudo install -m 0755 pineconed pineconectl /usr/local/bin/":                                 "TestInstallRehearsal",
	"sudo install -m 0644 contrib/systemd/pineconed.sysusers /usr/lib/sysusers.d/pineconed.conf": "TestInstallRehearsal",
	"sudo systemd-sysusers": "TestInstallRehearsal",
	"sudo install -m 0644 contrib/systemd/pineconed.service /etc/systemd/system/": "TestInstallRehearsal",
	"sudo install -d -m 0755 /etc/pineconed":                                      "TestInstallRehearsal",
	"pineconed -genconf | sudo tee /etc/pineconed/pineconed.toml > /dev/null":     "TestInstallRehearsal",
}

// coverage is one row of the table: README commands matching re (the whole
// command) are exercised by the tests named in by ("dir.TestName", dir from
// the repository root). why says what those tests check and, for commands
// that cannot run on a CI machine, why they are the closest real check.
type coverage struct {
	re  string
	by  []string
	why string
}

var table = []coverage{
	{`promtool check rules contrib/prometheus/pineconed.rules.yml|promtool test rules contrib/prometheus/pineconed.rules.test.yml`,
		[]string{"contrib/prometheus.TestPromtool"},
		"that test runs exactly these two commands from the repository root"},
	{`contrib/debian/build-deb.sh`,
		[]string{"contrib/debian.TestDebContents", "contrib/debian.TestDpkgInstallIntoThrowawayRoot"},
		"the package is built by this script and its control fields, files, modes, man pages and binaries checked"},
	{`sudo apt install \./dist/pineconed_\*\.deb`,
		[]string{"contrib/debian.TestDpkgInstallIntoThrowawayRoot", "contrib/debian.TestMaintainerScriptsUnderSystemd", "contrib/systemd.TestVerify"},
		"apt on the CI machine would change it and it has no systemd as PID 1: the package is installed and purged with " +
			"dpkg into a throw-away root (maintainer scripts run against it), the scripts' systemd branch runs with a " +
			"stand-in systemctl, and the unit is verified by systemd-analyze"},
	{`go install github\.com/pineconed/pineconed/cmd/pineconed@v1\.2\.3`,
		[]string{"internal/version.TestResolve"},
		"no release is tagged yet; taking the version from the module's build info is unit-tested"},
	{`sudo systemctl daemon-reload|sudo systemctl enable --now pineconed|systemctl status( pineconed)?|systemctl restart pineconed|journalctl -u pineconed -b`,
		[]string{"contrib/systemd.TestVerify", "contrib/systemd.TestServiceContract", "contrib/systemd.TestConfigFileOptional",
			"contrib/systemd.TestSecurityExposure", "daemon.TestRunNotifiesAndShutsDown", "internal/readme.TestInstallRehearsal"},
		"CI has no systemd as PID 1: the unit is checked with systemd-analyze verify and security, its contract " +
			"(Type=notify, ExecStart without -config, directories, capabilities) is read, the daemon's READY=1/STOPPING=1 " +
			"notifications are tested, and the install steps are rehearsed under a scratch root"},
	{`sudo systemctl reload pineconed`,
		[]string{"contrib/systemd.TestServiceContract", "daemon.TestReload", "daemon.TestReloadListeners", "tests/netns.TestReload"},
		"ExecReload is SIGHUP (contract test); the reload itself is tested in-process and on the binary with SIGHUP in namespaces"},
	{`sudo usermod -aG pineconed "\$USER"`,
		[]string{"admin.TestSocketModeAndGroup", "cmd/pineconectl.TestPermissionDenied", "internal/readme.TestInstallRehearsal"},
		"usermod changes the host's accounts; the socket's mode 0660 and group, the permission-denied hint and the " +
			"pineconed group made by sysusers are tested"},
	{`ip link del pinecone0`,
		[]string{"tests/netns.TestTUNDeletedExitsNonZero", "tun.TestGoneWhenInterfaceDeleted"},
		"the daemon's TUN is deleted in a namespace: the daemon logs the ERROR and exits 1, and starts again cleanly"},
	{`sudo systemctl reset-failed pineconed`,
		[]string{"contrib/systemd.TestStartLimitTrips", "contrib/systemd.TestVerify"},
		"CI has no systemd as PID 1: the start limit is checked against RestartSec so that it can trip"},
	{`pineconectl ping -c 3 fd[0-9a-f:]+`,
		[]string{"cmd/pineconectl.TestPing", "daemon.TestDaemonAdminAPI", "tests/netns.TestCtl"},
		"needs a second node: ping over real daemons in namespaces and in-process"},
	{`pineconectl peer add URI`,
		[]string{"cmd/pineconectl.TestPeerAddRemove", "daemon.TestDaemonAdminAPI", "internal/readme.TestFreshStart"},
		"URI is a placeholder; peer add with real URIs runs against the CLI's fake, an in-process daemon and a fresh daemon"},
	{`pineconectl lookup f[cd][0-9a-f:]+`,
		[]string{"cmd/pineconectl.TestLookup", "daemon.TestDaemonAdminAPI", "daemon.TestLookupOfNobodyEndsWhenResolverGivesUp"},
		"lookups of a real node and of an address nobody owns"},
	{`pineconectl card --host fd00:0:0:4::1 --name node-a|pineconectl card import node-a\.card|pineconectl card list|pineconectl sessions`,
		[]string{"tests/netns.TestPeerCards", "daemon.TestCardImport", "cmd/pineconectl.TestCardPrint", "cmd/pineconectl.TestCardImportListRemove"},
		"needs a second node: a prints its card and b imports it from a file, peers, lists it and shows a's name in peers, " +
			"sessions and lookup, between real daemons in namespaces (the output shown is from that test)"},
	{`pineconectl card --host fd00:0:0:4::1 --name node-a --png node-a\.png|pineconectl card --qr`,
		[]string{"cmd/pineconectl.TestCardPNG", "cmd/pineconectl.TestCardTerminalQR"},
		"the PNG and the terminal QR code are decoded back with a QR reader (gozxing) and must hold the very card"},
	{`pineconectl card import -|pineconectl card remove node-a`,
		[]string{"cmd/pineconectl.TestCardImportListRemove", "daemon.TestCardImport"},
		"import from standard input and removal by name, against the CLI's fake and an in-process daemon"},
	{`pineconectl card import typo\.card|pineconectl card import forged\.card`,
		[]string{"tests/netns.TestPeerCards", "daemon.TestCardImport", "peercard.TestRefused"},
		"a card with one symbol changed is refused with checksum and one re-signed with another key with signature"},
	{`ping -6 -c 3 fd[0-9a-f:]+`,
		[]string{"daemon.TestNamespacesPing", "tests/netns.TestCtl"},
		"the system ping through two daemons' TUNs in namespaces"},
	{`docker build -f contrib/docker/Dockerfile -t pineconed \.|docker run -d --name pineconed --cap-drop ALL --cap-add NET_ADMIN --device /dev/net/tun -v pineconed:/var/lib/pineconed -p 65432:65432 -p 65433:65433 pineconed|docker exec pineconed pineconectl status`,
		[]string{"contrib/docker.TestDockerfileShape", "contrib/docker.TestDockerfileBuilds", "contrib/docker.TestEntrypointFirstStartThenExec",
			"contrib/docker.TestEntrypointRunsCommands", "contrib/docker.TestEntrypointConfigLocation", "contrib/docker.TestDockerignore",
			"contrib/docker.TestShellcheck"},
		"CI has no Docker engine: the Dockerfile's build steps run against the tree, and the entrypoint's first start " +
			"and command pass-through run with a stand-in daemon"},
}

// ciCovers reports whether a command is what .ci/run runs: .ci/run itself,
// or one of its lines (with the README's sudo prefix taken off).
func ciCovers(ciRun, text string) bool {
	text = stripSudoEnv(text)
	if text == ".ci/run" {
		return true
	}
	for _, l := range strings.Split(ciRun, "\n") {
		if normalize(l) == text {
			return true
		}
	}
	return false
}

// stripSudoEnv takes off a leading `sudo env "PATH=$PATH"` or `sudo`.
func stripSudoEnv(s string) string {
	s = strings.TrimPrefix(s, `sudo env "PATH=$PATH" `)
	return strings.TrimPrefix(s, "sudo ")
}

// check returns every reason the README's commands are not all covered.
func check(md, ciRun string, self map[string]string, tbl []coverage, exists func(ref string) (bool, error)) []string {
	cmds, problems := extract(md)
	if len(cmds) == 0 {
		problems = append(problems, "no commands found at all")
	}
	used := make([]bool, len(tbl))
	res := make([]*regexp.Regexp, len(tbl))
	for i, c := range tbl {
		re, err := regexp.Compile(`^(?:` + c.re + `)$`)
		if err != nil {
			problems = append(problems, fmt.Sprintf("table entry %d: %v", i, err))
			continue
		}
		res[i] = re
		if strings.TrimSpace(c.why) == "" || len(c.by) == 0 {
			problems = append(problems, fmt.Sprintf("table entry %q: needs tests and a reason", c.re))
		}
		for _, ref := range c.by {
			if ok, err := exists(ref); !ok {
				problems = append(problems, fmt.Sprintf("table entry %q: test %s does not exist (%v)", c.re, ref, err))
			}
		}
	}
	seen := map[string]bool{}
	for _, c := range cmds {
		seen[c.text] = true
		covered := self[c.text] != "" || ciCovers(ciRun, c.text)
		for i, re := range res {
			if re != nil && re.MatchString(c.text) {
				covered, used[i] = true, true
			}
		}
		if !covered {
			problems = append(problems, fmt.Sprintf("README.md:%d: %q is not exercised: run it in internal/readme or add it to the table in coverage_test.go with the tests that cover it", c.line, c.text))
		}
	}
	for i, u := range used {
		if !u && res[i] != nil {
			problems = append(problems, fmt.Sprintf("table entry %q matches no README command; remove it", tbl[i].re))
		}
	}
	for cmd, test := range self {
		if !seen[cmd] {
			problems = append(problems, fmt.Sprintf("%s runs %q, which the README no longer shows", test, cmd))
		}
		if ok, err := exists("internal/readme." + test); !ok {
			problems = append(problems, fmt.Sprintf("%q: self-run test %s does not exist (%v)", cmd, test, err))
		}
	}
	return problems
}

func readRepoFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func repoTestExists(ref string) (bool, error) { return testExists(root, ref) }

func TestEveryCommandCovered(t *testing.T) {
	md := readRepoFile(t, "README.md")
	for _, p := range check(md, readRepoFile(t, ".ci/run"), selfRun, table, repoTestExists) {
		t.Error(p)
	}
	cmds, _ := extract(md)
	t.Logf("%d commands in README.md", len(cmds))
}

// The README starts with the two commands, and the test command is exactly
// what .ci/run runs last.
func TestQuickStart(t *testing.T) {
	md := readRepoFile(t, "README.md")
	cmds, _ := extract(md)
	if len(cmds) < 2 || cmds[0].text != quickRun || cmds[1].text != quickTest {
		t.Fatalf("README's first commands are not\n  %s\n  %s", quickRun, quickTest)
	}
	if cmds[1].line > 15 {
		t.Fatalf("the two commands come at line %d; they belong at the top", cmds[1].line)
	}
	var last string
	for _, l := range strings.Split(readRepoFile(t, ".ci/run"), "\n") {
		if l = normalize(l); l != "" && !strings.HasPrefix(l, "#") {
			last = l
		}
	}
	if stripSudoEnv(quickTest) != last {
		t.Fatalf(".ci/run ends with %q; the README's test command is %q", last, quickTest)
	}
}

// The check fails on what it is meant to catch.
func TestCheckCatchesProblems(t *testing.T) {
	md := "# x\n\n```sh\necho covered\nrm -rf \\\n  /nowhere\n```\n\n```\nuntagged\n```\n\n```console\n$ echo self\nself\n```\n" +
		"Run `pineconectl frobnicate --hard` or `pineconed`; `-flag x` is not a command.\n"
	self := map[string]string{"echo self": "TestSelf", "echo gone": "TestSelf"}
	tbl := []coverage{
		{re: `echo covered`, by: []string{"x.TestReal"}, why: "because"},
		{re: `echo stale`, by: []string{"x.TestMissing"}, why: "because"},
	}
	exists := func(ref string) (bool, error) {
		return ref == "x.TestReal" || ref == "internal/readme.TestSelf", nil
	}
	got := strings.Join(check(md, "go test ./...\n", self, tbl, exists), "\n")
	for _, want := range []string{
		`"rm -rf /nowhere" is not exercised`,
		`code block tagged ""`,
		`"echo stale" matches no README command`,
		`test x.TestMissing does not exist`,
		`runs "echo gone", which the README no longer shows`,
		`"pineconectl frobnicate --hard" is not exercised`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("check did not report %s; it said:\n%s", want, got)
		}
	}
	if strings.Contains(got, "echo covered") || strings.Contains(got, `"echo self" is not`) || strings.Contains(got, `-flag`) ||
		strings.Contains(got, `"pineconed" is not`) {
		t.Errorf("check reported covered commands:\n%s", got)
	}
	if p := check("```sh\ngo test ./...\n```\n", "go test ./...\n", nil, nil, exists); len(p) != 0 {
		t.Errorf("a .ci/run line was not taken as covered: %v", p)
	}
	cmds, _ := extract("```console\n$ a \\\n  b\nout 1\nout 2\n$ c\n```\n")
	if len(cmds) != 2 || cmds[0].text != "a b" || len(cmds[0].output) != 2 || cmds[1].text != "c" {
		t.Errorf("console block parsed as %+v", cmds)
	}
	if ok, _ := testExists(root, "internal/readme.TestCheckCatchesProblems"); !ok {
		t.Error("testExists does not find this test")
	}
	if ok, _ := testExists(root, "internal/readme.TestNoSuchTest"); ok {
		t.Error("testExists finds a test that does not exist")
	}
}
