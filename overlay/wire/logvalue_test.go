package wire

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"
)

// A key passed to slog as itself logs as its hex form with every handler
// (JSON would otherwise write the array's 32 numbers), and a debug line that
// names it while debug is off skips the hex encoding that k.String() does
// before the level is even checked.
func TestPublicKeyLogValue(t *testing.T) {
	k := PublicKey{0xab, 0xcd, 31: 0xef}
	var text, js bytes.Buffer
	slog.New(slog.NewTextHandler(&text, nil)).Info("m", "peer", k)
	slog.New(slog.NewJSONHandler(&js, nil)).Info("m", "peer", k)
	if !strings.Contains(text.String(), "peer="+k.String()) {
		t.Errorf("text handler wrote %q", text.String())
	}
	var rec map[string]any
	if err := json.Unmarshal(js.Bytes(), &rec); err != nil || rec["peer"] != k.String() {
		t.Errorf("JSON handler wrote %s (%v)", js.String(), err)
	}

	off := slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))
	eager := testing.AllocsPerRun(100, func() { off.Debug("m", "peer", k.String()) })
	lazy := testing.AllocsPerRun(100, func() { off.Debug("m", "peer", k) })
	if lazy >= eager {
		t.Errorf("a disabled debug line allocates %v times with the key itself, %v with k.String()", lazy, eager)
	}
}

// BenchmarkDisabledDebugKey compares a debug line naming a key, with debug
// off, written with k.String() (the baseline) and with the key itself;
// compare the two in one run (-benchmem shows the allocations).
func BenchmarkDisabledDebugKey(b *testing.B) {
	off := slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))
	k := PublicKey{0xab, 31: 0xef}
	b.Run("string", func(b *testing.B) {
		for b.Loop() {
			off.Debug("m", "peer", k.String())
		}
	})
	b.Run("logvaluer", func(b *testing.B) {
		for b.Loop() {
			off.Debug("m", "peer", k)
		}
	})
}
