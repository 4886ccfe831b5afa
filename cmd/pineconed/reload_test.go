package main

import (
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/pineconed/pineconed/internal/testhelp"
)

// TestRelayReloadsStops: SIGHUPs become reload requests, several pending
// ones make one, and stopping the relay ends its goroutine (the leak check
// fails if it outlives the daemon's run).
func TestRelayReloadsStops(t *testing.T) {
	testhelp.CheckNoLeak(t)
	hup := make(chan os.Signal, 1)
	reload, stop := relayReloads(hup)
	defer stop()

	hup <- syscall.SIGHUP
	select {
	case <-reload:
	case <-time.After(10 * time.Second):
		t.Fatal("a SIGHUP did not become a reload request")
	}

	// Three signals while the daemon is busy: the relay keeps at most one
	// request waiting, so once they are all taken one request is pending.
	for range 3 {
		hup <- syscall.SIGHUP
	}
	testhelp.WaitFor(t, "the relay to take the signals", 10*time.Second, func() bool {
		return len(hup) == 0 && len(reload) == 1
	})
	<-reload
	if len(reload) != 0 {
		t.Fatalf("%d reload requests pending after three signals were taken as one", len(reload))
	}
}
