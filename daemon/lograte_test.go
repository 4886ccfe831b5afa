package daemon

import (
	"bytes"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/pineconed/pineconed/internal/testhelp"
)

func TestRateLimitHandler(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(newRateLimitHandler(slog.NewTextHandler(&buf, nil), 10*time.Second, 5))
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	emit := func(at time.Duration, l *slog.Logger, msg string) {
		r := slog.NewRecord(t0.Add(at), slog.LevelInfo, msg, 0)
		_ = l.Handler().Handle(t.Context(), r)
	}
	comp := log.With("component", "admin")
	for i := range 100 {
		emit(time.Duration(i)*10*time.Millisecond, comp, "flood")
		if i%50 == 0 {
			emit(time.Duration(i)*10*time.Millisecond, log, "other")
		}
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if n := strings.Count(buf.String(), "msg=flood"); n != 5 {
		t.Fatalf("%d flood lines in the first window, want 5:\n%s", n, buf.String())
	}
	if n := strings.Count(buf.String(), "msg=other"); n != 2 {
		t.Fatalf("another message was limited with the flood: %d lines", n)
	}
	if !strings.Contains(lines[0], "component=admin") {
		t.Fatalf("attributes lost: %s", lines[0])
	}
	buf.Reset()
	emit(11*time.Second, log, "other")
	out := buf.String()
	if !strings.Contains(out, `msg="similar messages suppressed" message=flood suppressed=95`) {
		t.Fatalf("no summary after the window:\n%s", out)
	}
	buf.Reset()
	emit(12*time.Second, comp, "flood")
	if !strings.Contains(buf.String(), "msg=flood") {
		t.Fatalf("a new window does not log again:\n%s", buf.String())
	}
}

// A connect/close loop on a full admin socket leaves the log readable.
func TestAdminConnectLoopLogsBounded(t *testing.T) {
	a := startNode(t, "")
	for range 40 {
		c, err := net.Dial("unix", a.d.AdminPath())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
	}
	before := len(strings.Split(a.logs.String(), "\n"))
	for range 2000 {
		c, err := net.Dial("unix", a.d.AdminPath())
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	// Let the server catch up with the last connections.
	testhelp.WaitFor(t, "a status answer", 5*time.Second, func() bool {
		_, err := a.client.Self(t.Context())
		return err == nil
	})
	after := strings.Split(a.logs.String(), "\n")
	t.Logf("%d log lines for 2000 connect/close on a full admin socket", len(after)-before)
	if n := len(after) - before; n > 20 {
		t.Fatalf("%d log lines for 2000 connect/close on a full socket:\n%s", n, strings.Join(after[before:min(len(after), before+30)], "\n"))
	}
}
