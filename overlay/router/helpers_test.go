package router

import (
	"testing"
	"time"

	"github.com/pineconed/pineconed/internal/testhelp"
	"github.com/pineconed/pineconed/overlay/wire"
)

// Keys of docs/protocol.md §12 (ed25519 seeds of one repeated byte). B < A < C.
var (
	privA, privB, privC = testhelp.SeedKey(1), testhelp.SeedKey(2), testhelp.SeedKey(3)
	keyA, keyB, keyC    = wire.PublicKeyOf(privA), wire.PublicKeyOf(privB), wire.PublicKeyOf(privC)
)

// t0 is an arbitrary start for fake clocks.
var t0 = time.Unix(1_700_000_000, 0)

// own copies a returned action slice, which the Router reuses.
func own(acts []Action) []Action { return append([]Action(nil), acts...) }

// sends returns the Send actions, optionally only of one frame type
// (typ < 0 for all) and one port (NoPort for all).
func sends(acts []Action, port Port, typ int) []Action {
	var out []Action
	for _, a := range acts {
		if a.Kind != ActionSend || (port != NoPort && a.Port != port) || (typ >= 0 && int(a.Type) != typ) {
			continue
		}
		out = append(out, a)
	}
	return out
}

func ofKind(acts []Action, k ActionKind) []Action {
	var out []Action
	for _, a := range acts {
		if a.Kind == k {
			out = append(out, a)
		}
	}
	return out
}

func decode(t testing.TB, frame []byte) wire.Message {
	t.Helper()
	m, err := wire.Decode(frame)
	if err != nil {
		t.Fatalf("router produced an undecodable frame: %v\n%x", err, frame)
	}
	return m
}

// mustNoDisconnect fails if acts hold a Disconnect.
func mustNoDisconnect(t testing.TB, acts []Action) {
	t.Helper()
	for _, a := range ofKind(acts, ActionDisconnect) {
		t.Fatalf("unexpected disconnect: %v", a.Reason)
	}
}
