package testhelp

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// SeedKey(1) must stay key A of docs/protocol.md §12, which the codec's golden
// bytes and the stock captures are written against.
func TestSeedKeyIsProtocolKeyA(t *testing.T) {
	const hexA = "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c"
	if got := hex.EncodeToString(SeedKey(1).Public().(ed25519.PublicKey)); got != hexA {
		t.Fatalf("SeedKey(1) public key %s, want %s", got, hexA)
	}
}

func TestUnhexIgnoresSeparators(t *testing.T) {
	if got := Unhex(t, "70 69 | 6e\n65"); !bytes.Equal(got, []byte("pine")) {
		t.Fatalf("Unhex = %x", got)
	}
}

func TestLogBufferLines(t *testing.T) {
	log, buf := NewLogger(t)
	log.Info("first", "peer", "a")
	log.Debug("second", "peer", "b")
	log.Info("third")
	if got := buf.Lines("peer="); len(got) != 2 || !slices.ContainsFunc(got, func(l string) bool { return strings.Contains(l, "msg=second") }) {
		t.Fatalf("Lines(peer=) = %q", got)
	}
}

// fatalRecorder is a testing.TB whose Fatal records its message and ends
// the goroutine, as the real one does.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (f *fatalRecorder) Helper() {}

func (f *fatalRecorder) Fatal(args ...any) {
	f.msg = fmt.Sprint(args...)
	runtime.Goexit()
}

func waitForMessage(t *testing.T, cond func() bool, state ...func() string) string {
	f := &fatalRecorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		WaitFor(f, "the answer", 20*time.Millisecond, cond, state...)
	}()
	<-done
	return f.msg
}

// WaitFor returns once the condition holds, and otherwise fails naming
// what it waited for, how long, and the state the test asked to see. The
// test runs in a synctest bubble: WaitFor's 5 ms polls then take exactly
// that long, where on a loaded machine two of them could outlast the
// 20 ms limit and fail a condition that comes true on the third.
func TestWaitFor(t *testing.T) { synctest.Test(t, testWaitFor) }

func testWaitFor(t *testing.T) {
	n := 0
	if msg := waitForMessage(t, func() bool { n++; return n == 3 }); msg != "" || n != 3 {
		t.Fatalf("a condition that came true failed the test (%q) after %d polls", msg, n)
	}
	msg := waitForMessage(t, func() bool { return false }, func() string { return "got 41" })
	if msg != "timed out after 20ms waiting for the answer; got 41" {
		t.Fatalf("failure message %q", msg)
	}
}
