package config

import (
	"strings"
	"testing"

	"github.com/pineconed/pineconed/internal/manpage"
)

// TestManPageHasEveryOption: pineconed.toml(5), generated from the -genconf
// output, lists every option of the options table with its default and
// every line of its documentation, so the man page cannot drift from the
// generated file or the parser.
func TestManPageHasEveryOption(t *testing.T) {
	page := string(manpage.Config(string(Generate(Default())), "v0"))
	for _, o := range options {
		if !strings.Contains(page, manpage.Escape(o.key)) {
			t.Errorf("pineconed.toml(5) does not list %s", o.key)
		}
		for _, l := range o.doc {
			if !strings.Contains(page, manpage.Escape(l)) {
				t.Errorf("pineconed.toml(5) lacks the doc of %s: %q", o.key, l)
			}
		}
	}
	if _, opts := manpage.ParseGenconf(string(Generate(Default()))); len(opts) != len(options) {
		t.Errorf("the man page has %d options, the table %d", len(opts), len(options))
	}
}
