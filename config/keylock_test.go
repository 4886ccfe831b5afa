package config

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pineconed/pineconed/internal/testhelp"
)

func TestLockKeyExclusive(t *testing.T) {
	path := filepath.Join(t.TempDir(), "private.key")
	if _, _, err := LoadOrCreateKey(path, nil); err != nil {
		t.Fatal(err)
	}
	l, err := LockKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := LockKey(path); err == nil || !strings.Contains(err.Error(), "in use by this process") {
		t.Fatalf("second lock: %v, want in use by this process", err)
	}
	// Reading the key again (as -address does) keeps the lock.
	if _, err := LoadKey(path); err != nil {
		t.Fatal(err)
	}
	if _, err := LockKey(path); err == nil {
		t.Fatal("lock lost after reading the key file again")
	}
	l.Release()
	l.Release()
	l2, err := LockKey(path)
	if err != nil {
		t.Fatalf("after Release: %v", err)
	}
	l2.Release()
}

// The error names the other process holding the key.
func TestLockKeyNamesHolder(t *testing.T) {
	if _, err := exec.LookPath("flock"); err != nil {
		t.Skip("needs flock(1) from util-linux to hold a lock in another process")
	}
	path := filepath.Join(t.TempDir(), "private.key")
	if _, _, err := LoadOrCreateKey(path, nil); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, "flock", "--exclusive", path, "sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cancel()
		cmd.Wait()
	}()
	testhelp.WaitEvery(t, "flock(1) to take the lock", 10*time.Second, 20*time.Millisecond, func() bool {
		l, err := LockKey(path)
		// Before flock(1) gets there, we win: let go at once.
		l.Release()
		if err != nil {
			// flock(1) takes the lock, then execs sleep: same pid.
			if want := fmt.Sprintf("process %d", cmd.Process.Pid); !strings.Contains(err.Error(), want) {
				t.Fatalf("error %q does not name %s", err, want)
			}
		}
		return err != nil
	})
	_ = os.Remove(path)
}
