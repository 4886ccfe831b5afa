package main

import (
	"bytes"
	"flag"
	"io"
	"strings"
	"testing"

	"github.com/pineconed/pineconed/internal/manpage"
)

// TestManPageHasEveryFlag: pineconed(8), generated from `pineconed -h`,
// lists every flag newFlags defines with its usage text, so the man page
// cannot fall behind the flags.
func TestManPageHasEveryFlag(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"-h"}, &stdout, &stderr); code != exitOK {
		t.Fatalf("pineconed -h: exit %d", code)
	}
	page := string(manpage.Pineconed(stderr.String(), "v0"))
	fs, _ := newFlags(io.Discard)
	n := 0
	fs.VisitAll(func(f *flag.Flag) {
		n++
		if !strings.Contains(page, `\fB`+manpage.Escape("-"+f.Name)+`\fR`) {
			t.Errorf("pineconed(8) does not list -%s", f.Name)
		}
		if !strings.Contains(page, manpage.Escape(f.Usage)) {
			t.Errorf("pineconed(8) lacks the usage of -%s: %q", f.Name, f.Usage)
		}
	})
	if got := len(manpage.ParseGoFlags(stderr.String())); got != n || n == 0 {
		t.Errorf("the man page has %d flags, the flag set %d", got, n)
	}
}
