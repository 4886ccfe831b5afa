package version

import (
	"context"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

func TestResolve(t *testing.T) {
	info := func(v string, ok bool) func() (*debug.BuildInfo, bool) {
		return func() (*debug.BuildInfo, bool) { return &debug.BuildInfo{Main: debug.Module{Version: v}}, ok }
	}
	for _, tc := range []struct {
		linked, module string
		ok             bool
		want           string
	}{
		{"v1.2.3", "v0.9.0", true, "v1.2.3"},                           // the linker wins
		{"", "v0.9.0", true, "v0.9.0"},                                 // go install …@v0.9.0
		{"", "v0.0.0-20260101-abcdef", true, "v0.0.0-20260101-abcdef"}, // go build in a checkout
		{"", "(devel)", true, "devel"},
		{"", "", true, "devel"},
		{"", "v0.9.0", false, "devel"}, // no build info at all
	} {
		if got := resolve(tc.linked, info(tc.module, tc.ok)); got != tc.want {
			t.Errorf("resolve(%q, module %q, %t) = %q, want %q", tc.linked, tc.module, tc.ok, got, tc.want)
		}
	}
}

// TestReleaseBuildsPrintTheirVersion builds both binaries the way a
// release does (the -ldflags line in the package doc and the README) and
// runs pineconed -version and pineconectl version.
func TestReleaseBuildsPrintTheirVersion(t *testing.T) {
	if testing.Short() {
		t.Skip("builds two binaries; skipped with -short")
	}
	const v = "v9.8.7-test"
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for _, name := range []string{"pineconed", "pineconectl"} {
		cmd := exec.CommandContext(ctx, "go", "build", "-ldflags", "-X github.com/pineconed/pineconed/internal/version.release="+v,
			"-o", filepath.Join(dir, name), "../../cmd/"+name)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", name, err, out)
		}
	}
	out, err := exec.CommandContext(ctx, filepath.Join(dir, "pineconed"), "-version").CombinedOutput()
	if err != nil || string(out) != "pineconed "+v+"\n" {
		t.Errorf("pineconed -version: %q, %v", out, err)
	}
	// No daemon answers on this socket: the client still prints its own.
	out, err = exec.CommandContext(ctx, filepath.Join(dir, "pineconectl"), "--socket", filepath.Join(dir, "none.sock"), "version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "pineconectl "+v+"\n") {
		t.Errorf("pineconectl version: %q, %v", out, err)
	}
}
