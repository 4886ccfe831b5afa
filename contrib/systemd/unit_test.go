// Package systemd_test checks the systemd unit and sysusers snippet with
// systemd's own tools, so a typo in a directive or a weakened sandbox fails
// the build instead of a user's boot.
package systemd_test

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/pineconed/pineconed/config"
)

const unitFile = "pineconed.service"

// installUnit copies the unit into a temporary directory with ExecStart
// pointing at a real executable there (a copy of this test binary), since
// systemd-analyze verify insists that the binary exists.
func installUnit(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "pineconed")
	exe, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, exe, 0o755); err != nil {
		t.Fatal(err)
	}
	const installed = "\nExecStart=/usr/local/bin/pineconed"
	if bytes.Count(data, []byte(installed)) != 1 {
		t.Fatalf("%s must have exactly one line starting %q", unitFile, installed[1:])
	}
	data = bytes.Replace(data, []byte(installed), []byte("\nExecStart="+bin), 1)
	path := filepath.Join(dir, unitFile)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s is not installed (apt-get install systemd); cannot check the unit", name)
	}
	return p
}

func TestVerify(t *testing.T) {
	analyze := needTool(t, "systemd-analyze")
	unit := installUnit(t)
	// --man=no: man pages named in Documentation= need not be installed.
	out, err := exec.Command(analyze, "verify", "--man=no", unit).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("systemd-analyze verify %s: %v\n%s", unitFile, err, out)
	}
}

// The exposure score summarises the sandbox; 2.2 at the time of writing.
// Dropping a protection pushes it over the threshold.
func TestSecurityExposure(t *testing.T) {
	analyze := needTool(t, "systemd-analyze")
	unit := installUnit(t)
	out, err := exec.Command(analyze, "security", "--offline=yes", "--threshold=25", unit).CombinedOutput()
	if bytes.Contains(out, []byte("unrecognized option")) {
		t.Skipf("this systemd-analyze has no offline security scoring (systemd < 250): %s", out)
	}
	if err != nil {
		t.Fatalf("exposure above 2.5 or analysis failed: %v\n%s", err, out)
	}
}

// directives reads the [Service] section into key -> values in order.
func directives(t *testing.T) map[string][]string {
	t.Helper()
	return sectionDirectives(t, "[Service]")
}

// sectionDirectives reads one section of the unit into key -> values in
// order.
func sectionDirectives(t *testing.T, want string) map[string][]string {
	t.Helper()
	f, err := os.Open(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m := map[string][]string{}
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if strings.HasPrefix(line, "[") {
			section = line
			continue
		}
		if k, v, ok := strings.Cut(line, "="); ok && section == want {
			m[k] = append(m[k], v)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return m
}

// What the daemon and its packaging rely on, beyond what verify can know.
func TestServiceContract(t *testing.T) {
	d := directives(t)
	for k, want := range map[string]string{
		"Type":                     "notify",
		"ExecStart":                "/usr/local/bin/pineconed",
		"ExecReload":               "/bin/kill -HUP $MAINPID",
		"User":                     "pineconed",
		"Group":                    "pineconed",
		"StateDirectory":           "pineconed",
		"StateDirectoryMode":       "0700",
		"RuntimeDirectory":         "pineconed",
		"RuntimeDirectoryMode":     "0750",
		"ConfigurationDirectory":   "pineconed",
		"AmbientCapabilities":      "CAP_NET_ADMIN",
		"CapabilityBoundingSet":    "CAP_NET_ADMIN",
		"DevicePolicy":             "closed",
		"DeviceAllow":              "/dev/net/tun rw",
		"ProtectSystem":            "strict",
		"ProtectKernelTunables":    "yes",
		"NoNewPrivileges":          "yes",
		"RestrictAddressFamilies":  "AF_UNIX AF_INET AF_INET6 AF_NETLINK",
		"SystemCallArchitectures":  "native",
		"Restart":                  "on-failure",
		"RestartPreventExitStatus": "2",
	} {
		if got := d[k]; len(got) != 1 || got[0] != want {
			t.Errorf("%s=%v, want %s", k, got, want)
		}
	}
	if got, want := d["SystemCallFilter"], []string{"@system-service", "~@privileged @resources", "@chown"}; !slices.Equal(got, want) {
		t.Errorf("SystemCallFilter lines %q, want %q", got, want)
	}
	// PrivateDevices=yes would hide /dev/net/tun.
	if v := d["PrivateDevices"]; len(v) > 0 && v[len(v)-1] != "no" {
		t.Errorf("PrivateDevices=%v hides /dev/net/tun", v)
	}
	if _, dyn := d["DynamicUser"]; dyn {
		t.Errorf("DynamicUser set; the admin socket's group access needs the static user")
	}
}

// The unit says the configuration file is optional. That holds only when
// ExecStart names no -config (an explicitly named file must exist) and the
// daemon's default path lies in the unit's ConfigurationDirectory.
func TestConfigFileOptional(t *testing.T) {
	d := directives(t)
	for _, arg := range strings.Fields(d["ExecStart"][0])[1:] {
		if strings.TrimLeft(arg, "-") == "config" || strings.HasPrefix(strings.TrimLeft(arg, "-"), "config=") {
			t.Errorf("ExecStart passes %s: a missing file would then exit 2", arg)
		}
	}
	dir := "/etc/" + d["ConfigurationDirectory"][0]
	if filepath.Dir(config.DefaultPath) != dir {
		t.Errorf("config.DefaultPath %s is not in ConfigurationDirectory %s", config.DefaultPath, dir)
	}
}

// The sysusers snippet must create the user and group the unit runs as.
func TestSysusers(t *testing.T) {
	sysusers := needTool(t, "systemd-sysusers")
	root := t.TempDir()
	if err := os.Mkdir(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	conf, err := filepath.Abs("pineconed.sysusers")
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(sysusers, "--root="+root, conf).CombinedOutput(); err != nil {
		t.Fatalf("systemd-sysusers: %v\n%s", err, out)
	}
	passwd, _ := os.ReadFile(filepath.Join(root, "etc", "passwd"))
	group, _ := os.ReadFile(filepath.Join(root, "etc", "group"))
	var user []string
	for _, l := range strings.Split(string(passwd), "\n") {
		if strings.HasPrefix(l, "pineconed:") {
			user = strings.Split(l, ":")
		}
	}
	if len(user) != 7 {
		t.Fatalf("no pineconed user created:\n%s", passwd)
	}
	if user[5] != "/var/lib/pineconed" || !strings.HasSuffix(user[6], "nologin") {
		t.Errorf("user home %q shell %q, want /var/lib/pineconed and nologin", user[5], user[6])
	}
	if !strings.Contains(string(group), "pineconed:x:"+user[3]+":") {
		t.Errorf("no pineconed group with GID %s:\n%s", user[3], group)
	}
}

// seconds reads a systemd time span written as "N" or "Ns".
func seconds(t *testing.T, key string, vs []string) int {
	t.Helper()
	if len(vs) != 1 {
		t.Fatalf("%s=%v: want exactly one value", key, vs)
	}
	n, err := strconv.Atoi(strings.TrimSuffix(vs[0], "s"))
	if err != nil {
		t.Fatalf("%s=%s: write it in seconds (\"N\" or \"Ns\") for this test: %v", key, vs[0], err)
	}
	return n
}

// A failure that restarts cannot fix must stop the restarts: with
// RestartSec spacing, StartLimitBurst starts have to fit in
// StartLimitIntervalSec, or the limit never trips (systemd's defaults, 5
// starts in 10 s, never trip with RestartSec=5s).
func TestStartLimitTrips(t *testing.T) {
	unit := sectionDirectives(t, "[Unit]")
	svc := directives(t)
	interval := seconds(t, "StartLimitIntervalSec", unit["StartLimitIntervalSec"])
	if len(unit["StartLimitBurst"]) != 1 {
		t.Fatalf("StartLimitBurst=%v: want one value in [Unit]", unit["StartLimitBurst"])
	}
	burst, err := strconv.Atoi(unit["StartLimitBurst"][0])
	if err != nil || burst < 2 {
		t.Fatalf("StartLimitBurst=%v: want a number >= 2", unit["StartLimitBurst"])
	}
	restart := seconds(t, "RestartSec", svc["RestartSec"])
	if span := (burst - 1) * restart; span >= interval {
		t.Fatalf("%d starts %d s apart span %d s, not within StartLimitIntervalSec=%d: the start limit can never trip", burst, restart, span, interval)
	}
	if got := svc["RestartPreventExitStatus"]; len(got) != 1 || got[0] != "2" {
		t.Fatalf("RestartPreventExitStatus=%v, want 2 (bad configuration)", got)
	}
}
