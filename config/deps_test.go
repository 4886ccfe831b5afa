package config

import (
	"os/exec"
	"strings"
	"testing"
)

// config is read by the daemon before anything runs and by tools that
// only check a file: it must not pull in the overlay runtime, the session
// envelope or the peer manager (only the leaves it names: the URI type,
// the wire key type, the MTU arithmetic and the limits).
func TestNoRuntimeDependencies(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to list dependencies with")
	}
	out, err := exec.Command(gobin, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	const mod = "github.com/pineconed/pineconed/"
	allowed := map[string]bool{
		mod + "config": true, mod + "internal/limits": true, mod + "internal/mtu": true,
		mod + "overlay/wire": true, mod + "overlay/peers/peeruri": true,
	}
	for _, p := range strings.Fields(string(out)) {
		if strings.HasPrefix(p, mod) && !allowed[p] {
			t.Errorf("config depends on %s", p)
		}
	}
}
