// Package docker_test checks the container image without a Docker engine:
// the Dockerfile's build commands run against the working tree, and the
// entrypoint runs with a stand-in daemon in a temporary root.
package docker_test

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/pineconed/pineconed/config"
	"github.com/pineconed/pineconed/overlay/peers/peeruri"
)

const repoRoot = "../.."

// dockerfile returns the Dockerfile's instructions, with continuation lines
// joined, as (instruction, arguments) pairs.
func dockerfile(t *testing.T) [][2]string {
	t.Helper()
	f, err := os.Open("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out [][2]string
	var cur strings.Builder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if cur.Len() == 0 && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		if strings.HasSuffix(line, "\\") {
			cur.WriteString(strings.TrimSuffix(line, "\\"))
			continue
		}
		cur.WriteString(line)
		instr, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, [2]string{strings.ToUpper(instr), strings.TrimSpace(args)})
		cur.Reset()
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestDockerfileShape(t *testing.T) {
	var from []string
	copies := map[string]bool{}
	for _, in := range dockerfile(t) {
		switch in[0] {
		case "FROM":
			from = append(from, in[1])
		case "COPY":
			fields := strings.Fields(in[1])
			if strings.HasPrefix(fields[0], "--from=") {
				continue
			}
			for _, src := range fields[:len(fields)-1] {
				copies[src] = true
			}
		case "EXPOSE":
			if in[1] != "65432/tcp 65433/tcp" {
				t.Errorf("EXPOSE %s, want the stock Pinecone ports 65432/tcp 65433/tcp", in[1])
			}
		case "VOLUME":
			if in[1] != "/var/lib/pineconed" {
				t.Errorf("VOLUME %s, want /var/lib/pineconed", in[1])
			}
		}
	}
	if want := []string{"golang:1.26-bookworm AS build", "debian:bookworm-slim"}; !reflect.DeepEqual(from, want) {
		t.Errorf("FROM lines %q, want %q", from, want)
	}
	// The daemon runs as an unprivileged user, with CAP_NET_ADMIN from a
	// file capability, and the health check asks the daemon itself.
	var user, health string
	setcap := false
	for _, in := range dockerfile(t) {
		switch in[0] {
		case "USER":
			user = in[1]
		case "HEALTHCHECK":
			health = in[1]
		case "RUN":
			setcap = setcap || strings.Contains(in[1], "setcap cap_net_admin=ep /usr/local/bin/pineconed")
		}
	}
	if user == "" || user == "root" || user == "0" {
		t.Errorf("USER %q: the daemon must not run as root", user)
	}
	if !setcap {
		t.Error("no setcap cap_net_admin=ep on the daemon: a non-root user could not create the TUN")
	}
	if !strings.HasSuffix(health, `CMD ["pineconectl", "status"]`) {
		t.Errorf("HEALTHCHECK %q, want one running pineconectl status", health)
	}
	// Everything copied from the context must exist there.
	for src := range copies {
		if src == "." {
			continue
		}
		if _, err := os.Stat(filepath.Join(repoRoot, src)); err != nil {
			t.Errorf("COPY %s: %v", src, err)
		}
	}
}

// Runs each "RUN ... go build ... -o /out/X ./pkg" line of the Dockerfile
// in the repository root, writing to a temporary directory instead of /out.
func TestDockerfileBuilds(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go is not on PATH")
	}
	var builds []string
	for _, in := range dockerfile(t) {
		if in[0] == "RUN" && strings.Contains(in[1], "go build") {
			builds = append(builds, in[1])
		}
	}
	if len(builds) != 2 {
		t.Fatalf("want 2 go build lines (pineconed, pineconectl), found %d", len(builds))
	}
	out := t.TempDir()
	for _, cmd := range builds {
		fields := strings.Fields(cmd)
		pkg := fields[len(fields)-1]
		name := filepath.Base(pkg)
		t.Run(name, func(t *testing.T) {
			for _, want := range []string{"CGO_ENABLED=0 ", " -trimpath ", ` -ldflags="-s -w" `, " -o /out/" + name + " "} {
				if !strings.Contains(cmd, want) {
					t.Errorf("build line %q lacks %q", cmd, want)
				}
			}
			if goFiles, _ := filepath.Glob(filepath.Join(repoRoot, pkg, "*.go")); len(goFiles) == 0 {
				t.Skipf("%s does not exist yet in this tree; cannot run %q", pkg, cmd)
			}
			c := exec.Command("sh", "-c", strings.ReplaceAll(cmd, "/out/", out+"/"))
			c.Dir = repoRoot
			if b, err := c.CombinedOutput(); err != nil {
				t.Fatalf("%s: %v\n%s", cmd, err, b)
			}
			st, err := os.Stat(filepath.Join(out, name))
			if err != nil || st.Mode()&0o111 == 0 {
				t.Fatalf("no executable %s built: %v", name, err)
			}
		})
	}
}

func TestShellcheck(t *testing.T) {
	sc, err := exec.LookPath("shellcheck")
	if err != nil {
		t.Skip("shellcheck is not installed (apt-get install shellcheck)")
	}
	if out, err := exec.Command(sc, "entrypoint.sh").CombinedOutput(); err != nil {
		t.Fatalf("shellcheck entrypoint.sh: %v\n%s", err, out)
	}
}

// fakeDaemon is a stand-in for pineconed: -genconf prints what the real one
// prints (config.Generate(config.Default())), unless FAKE_GENCONF_FAIL is
// set; any other call records its PID and arguments and exits.
const fakeDaemon = `#!/bin/sh
echo "$*" >>"$FAKE_CALLS"
if [ "$1" = "-genconf" ]; then
	[ -z "${FAKE_GENCONF_FAIL:-}" ] || { echo "genconf broken" >&2; exit 3; }
	cat "$FAKE_GENCONF"
	exit 0
fi
echo "$$ $*" >"$FAKE_EXEC"
`

type entrypointEnv struct {
	root, config, state, run, calls, exec string
	env                                   []string
}

func newEntrypointEnv(t *testing.T) *entrypointEnv {
	t.Helper()
	root := t.TempDir()
	bin := filepath.Join(root, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bin, "pineconed"), []byte(fakeDaemon), 0o755); err != nil {
		t.Fatal(err)
	}
	genconf := filepath.Join(root, "genconf.toml")
	if err := os.WriteFile(genconf, config.Generate(config.Default()), 0o644); err != nil {
		t.Fatal(err)
	}
	e := &entrypointEnv{
		root:   root,
		config: filepath.Join(root, "etc", "pineconed", "pineconed.toml"),
		state:  filepath.Join(root, "var", "lib", "pineconed"),
		run:    filepath.Join(root, "run", "pineconed"),
		calls:  filepath.Join(root, "calls"),
		exec:   filepath.Join(root, "exec"),
	}
	e.env = append(os.Environ(),
		"PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"),
		"PINECONED_CONFIG="+e.config,
		"PINECONED_STATE_DIR="+e.state,
		"PINECONED_RUN_DIR="+e.run,
		"FAKE_CALLS="+e.calls,
		"FAKE_EXEC="+e.exec,
		"FAKE_GENCONF="+genconf,
	)
	return e
}

// start runs entrypoint.sh and returns its PID and combined output.
func (e *entrypointEnv) start(t *testing.T, extraEnv []string, args ...string) (int, string, error) {
	t.Helper()
	script, err := filepath.Abs("entrypoint.sh")
	if err != nil {
		t.Fatal(err)
	}
	c := exec.Command(script, args...)
	c.Env = append(append([]string{}, e.env...), extraEnv...)
	var out strings.Builder
	c.Stdout, c.Stderr = &out, &out
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	err = c.Wait()
	return c.Process.Pid, out.String(), err
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

func TestEntrypointFirstStartThenExec(t *testing.T) {
	e := newEntrypointEnv(t)

	pid, out, err := e.start(t, nil)
	if err != nil {
		t.Fatalf("first start: %v\n%s", err, out)
	}
	// The generated file is the daemon's default plus the two listeners.
	cfg, err := config.Load(e.config)
	if err != nil {
		t.Fatalf("generated config does not load: %v", err)
	}
	want := config.Default()
	for _, s := range []string{"tcp://[::]:65432", "ws://[::]:65433/"} {
		u, err := peeruri.ParseListen(s)
		if err != nil {
			t.Fatal(err)
		}
		want.Peers.Listen = append(want.Peers.Listen, u)
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Fatalf("generated config\n%+v\nwant\n%+v", cfg, want)
	}
	// The daemon replaced the shell (same PID) with the config flag.
	if got, want := readLines(t, e.exec)[0], strconv.Itoa(pid)+" -config "+e.config; got != want {
		t.Fatalf("daemon started as %q, want %q (exec of the entrypoint's process)", got, want)
	}
	for _, d := range []string{e.state, e.run} {
		if st, err := os.Stat(d); err != nil || !st.IsDir() {
			t.Errorf("directory %s not created: %v", d, err)
		}
	}
	if st, _ := os.Stat(e.state); st != nil && st.Mode().Perm() != 0o700 {
		t.Errorf("state directory mode %04o, want 0700", st.Mode().Perm())
	}
	leftovers, _ := filepath.Glob(e.config + ".*")
	if len(leftovers) > 0 {
		t.Errorf("temporary files left behind: %v", leftovers)
	}

	// Second start: the existing file (edited by the user) is kept, genconf
	// is not run again, and flags reach the daemon.
	edited := append([]byte("# edited by hand\n"), mustRead(t, e.config)...)
	if err := os.WriteFile(e.config, edited, 0o644); err != nil {
		t.Fatal(err)
	}
	pid, out, err = e.start(t, nil, "-publickey")
	if err != nil {
		t.Fatalf("second start: %v\n%s", err, out)
	}
	if string(mustRead(t, e.config)) != string(edited) {
		t.Fatal("second start rewrote an existing config")
	}
	if got, want := readLines(t, e.calls), []string{"-genconf", "-config " + e.config, "-config " + e.config + " -publickey"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("daemon calls %q, want %q", got, want)
	}
	if got, want := readLines(t, e.exec)[0], strconv.Itoa(pid)+" -config "+e.config+" -publickey"; got != want {
		t.Fatalf("daemon started as %q, want %q", got, want)
	}
}

func TestEntrypointGenconfFailure(t *testing.T) {
	e := newEntrypointEnv(t)
	_, out, err := e.start(t, []string{"FAKE_GENCONF_FAIL=1"})
	if err == nil {
		t.Fatalf("entrypoint succeeded although genconf failed:\n%s", out)
	}
	if _, err := os.Stat(e.config); !os.IsNotExist(err) {
		t.Fatalf("a config was left behind after a failed genconf: %v", err)
	}
	leftovers, _ := filepath.Glob(e.config + ".*")
	if len(leftovers) > 0 {
		t.Errorf("temporary files left behind: %v", leftovers)
	}
	if _, err := os.Stat(e.exec); err == nil {
		t.Fatal("daemon started without a config")
	}
}

func TestEntrypointRunsCommands(t *testing.T) {
	e := newEntrypointEnv(t)
	_, out, err := e.start(t, nil, "sh", "-c", "echo hello from $0", "inside")
	if err != nil || out != "hello from inside\n" {
		t.Fatalf("command not run as given: %v %q", err, out)
	}
	if _, err := os.Stat(e.config); !os.IsNotExist(err) {
		t.Fatal("running a command generated a config")
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Without a mounted file the configuration is written into the state
// volume, so that it survives a new container; a mounted one is used as it
// is.
func TestEntrypointConfigLocation(t *testing.T) {
	e := newEntrypointEnv(t)
	var env []string
	for _, kv := range e.env {
		if !strings.HasPrefix(kv, "PINECONED_CONFIG=") {
			env = append(env, kv)
		}
	}
	mounted := filepath.Join(e.root, "etc", "pineconed", "mounted.toml")
	e.env = append(env, "PINECONED_MOUNTED_CONFIG="+mounted)
	if _, out, err := e.start(t, nil); err != nil {
		t.Fatalf("first start: %v\n%s", err, out)
	}
	inVolume := filepath.Join(e.state, "pineconed.toml")
	if _, err := config.Load(inVolume); err != nil {
		t.Fatalf("no configuration in the state volume: %v", err)
	}
	if got := readLines(t, e.exec)[0]; !strings.HasSuffix(got, " -config "+inVolume) {
		t.Fatalf("daemon started as %q, want -config %s", got, inVolume)
	}
	if err := os.MkdirAll(filepath.Dir(mounted), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(mounted, []byte("# mine\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, out, err := e.start(t, nil); err != nil {
		t.Fatalf("start with a mounted file: %v\n%s", err, out)
	}
	if got := readLines(t, e.exec)[0]; !strings.HasSuffix(got, " -config "+mounted) {
		t.Fatalf("daemon started as %q, want the mounted %s", got, mounted)
	}
	if string(mustRead(t, mounted)) != "# mine\n" {
		t.Fatal("the mounted file was changed")
	}
}

// ignored reports whether path (slash-separated, relative to the context)
// matches a .dockerignore pattern: the forms the file uses, a plain path or
// glob, a leading "/" (the same), and a leading "**/" (at any depth).
func ignored(patterns []string, path string) bool {
	for _, p := range patterns {
		p = strings.TrimPrefix(p, "/")
		candidates := []string{path}
		if rest, ok := strings.CutPrefix(p, "**/"); ok {
			p = rest
			parts := strings.Split(path, "/")
			for i := range parts {
				candidates = append(candidates, strings.Join(parts[i:], "/"))
			}
		}
		for _, c := range candidates {
			// A pattern matching a directory excludes what is under it.
			parts := strings.Split(c, "/")
			for i := 1; i <= len(parts); i++ {
				if ok, _ := filepath.Match(p, strings.Join(parts[:i], "/")); ok {
					return true
				}
			}
		}
	}
	return false
}

// The build context leaves out what the image does not need, and keeps
// everything its COPY and go build lines use.
func TestDockerignore(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(repoRoot, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	var patterns []string
	for _, l := range strings.Split(string(raw), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			if strings.HasPrefix(l, "!") {
				t.Fatalf("pattern %q: exceptions are not understood by this test", l)
			}
			patterns = append(patterns, l)
		}
	}
	for _, p := range []string{".git/HEAD", "docs/DESIGN.md", "admin/server_test.go", "admin/testdata/getPeers.golden.json", "pineconed"} {
		if !ignored(patterns, p) {
			t.Errorf("%s is sent to the build", p)
		}
	}
	keep := []string{"go.mod", "go.sum", "contrib/docker/entrypoint.sh"}
	err = filepath.WalkDir(repoRoot, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(repoRoot, path)
		if d.IsDir() && (rel == ".git" || rel == "tests" || rel == "docs") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(rel, ".go") && !strings.HasSuffix(rel, "_test.go") {
			keep = append(keep, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range keep {
		if ignored(patterns, p) {
			t.Errorf("%s is needed by the build but left out of the context", p)
		}
	}
}
