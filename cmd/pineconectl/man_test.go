package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/pineconed/pineconed/internal/manpage"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// TestManPageHasEveryCommand: pineconectl(8), generated from the --help
// of each command (as mangen does with the binary), has every command of
// the real command tree with its flags, so the man page cannot fall
// behind the CLI.
func TestManPageHasEveryCommand(t *testing.T) {
	help := func(args ...string) (string, error) {
		var out bytes.Buffer
		run(context.Background(), args, &out, &out, func(string) string { return "" })
		return out.String(), nil
	}
	cmds, err := manpage.CobraCommands(help, "pineconectl")
	if err != nil {
		t.Fatal(err)
	}
	page := string(manpage.Pineconectl(cmds, "v0"))

	a := &app{ctx: context.Background()}
	root := a.rootCommand(func(string) string { return "" })
	root.InitDefaultHelpCmd()
	var walk func(c *cobra.Command)
	count := 0
	walk = func(c *cobra.Command) {
		if c.Hidden || c.Name() == "help" || c.Name() == "completion" {
			return
		}
		count++
		if c != root && !strings.Contains(page, `.SS "`+manpage.Escape(c.UseLine())) {
			t.Errorf("pineconectl(8) has no section for %q", c.UseLine())
		}
		flags := c.LocalNonPersistentFlags()
		if c == root {
			flags = c.PersistentFlags()
		}
		flags.VisitAll(func(f *pflag.Flag) {
			if f.Name != "help" && !strings.Contains(page, manpage.Escape("--"+f.Name)) {
				t.Errorf("pineconectl(8) lacks %s --%s", c.CommandPath(), f.Name)
			}
		})
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	if count != len(cmds) || count < 5 {
		t.Errorf("the man page has %d commands, the command tree %d", len(cmds), count)
	}
}
