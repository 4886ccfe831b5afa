// Package testhelp holds the helpers that the tests of several packages
// share: the protocol's seeded test keys, polling for a condition, the
// goroutine-leak check, hex as the protocol document writes it, the module
// root, a log capture, one HTTP request read whole, and the check that an
// enumeration's names are distinct. Only tests import it.
//
// It imports nothing from this module, so that any package's internal
// tests (overlay/wire's included) can use it without an import cycle.
package testhelp

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// SeedKey returns the ed25519 key whose seed is b repeated: the keys of
// docs/protocol.md §12 (1 = A, 2 = B, 3 = C), so tests and the stock captures
// agree on who is who.
func SeedKey(b byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{b}, ed25519.SeedSize))
}

// Unhex decodes hex that may contain spaces, newlines and "|" separators,
// as the examples in the protocol document are written, and fails the test
// on bad hex.
func Unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.NewReplacer(" ", "", "|", "", "\n", "").Replace(s))
	if err != nil {
		t.Fatalf("bad hex in test: %v", err)
	}
	return b
}

// ModuleRoot is the directory of this module's go.mod, found by walking up
// from the working directory (a test runs in its package's directory). It
// fails the test when there is none.
func ModuleRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatalf("module root: %v", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("module root: no go.mod above the working directory")
		}
		dir = parent
	}
}

// WaitFor polls cond until it holds, and fails the test naming what it
// waited for once limit has passed. Every poll loop in the tests is this
// one (or WaitEvery): a test that needs the state it saw in the failure
// message passes state, whose result (taken once, after the last poll)
// ends the message.
func WaitFor(t testing.TB, what string, limit time.Duration, cond func() bool, state ...func() string) {
	t.Helper()
	WaitEvery(t, what, limit, 5*time.Millisecond, cond, state...)
}

// WaitEvery is WaitFor polling every interval, for conditions that cost
// something to check (a command to run, a log file to read).
func WaitEvery(t testing.TB, what string, limit, interval time.Duration, cond func() bool, state ...func() string) {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > limit {
			msg := fmt.Sprintf("timed out after %v waiting for %s", limit, what)
			for _, s := range state {
				msg += "; " + s()
			}
			t.Fatal(msg)
		}
		time.Sleep(interval)
	}
}

// CheckNoLeak fails the test if the goroutine count has not come back to
// what it was when CheckNoLeak was called, once the test's cleanups ran.
// Call it first, so that its cleanup runs last. Goroutines may take a
// moment to unwind after Close, hence the 5 s of grace.
func CheckNoLeak(t testing.TB) {
	t.Helper()
	base := runtime.NumGoroutine()
	t.Cleanup(func() {
		end := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > base {
			if time.Now().After(end) {
				buf := make([]byte, 1<<20)
				t.Errorf("goroutine leak: %d running, %d before the test\n%s",
					runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

// LogBuffer collects log output written from concurrent goroutines, for
// assertions on what was logged.
type LogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p; it never fails.
func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns everything written so far.
func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Lines returns the lines written so far that contain substr.
func (l *LogBuffer) Lines(substr string) []string {
	var out []string
	for _, line := range strings.Split(l.String(), "\n") {
		if strings.Contains(line, substr) {
			out = append(out, line)
		}
	}
	return out
}

// NewLogger returns a debug-level text logger writing into a LogBuffer,
// whose contents are added to the test's output if the test fails.
func NewLogger(t testing.TB) (*slog.Logger, *LogBuffer) {
	buf := &LogBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("log:\n%s", buf.String())
		}
	})
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), buf
}
