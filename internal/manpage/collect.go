package manpage

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// runTimeout bounds each help command.
const runTimeout = 30 * time.Second

// Run runs a binary with args and returns what it printed on stdout and
// stderr together (Go's flag package prints -h on stderr).
type Run func(args ...string) (string, error)

// Exec returns a Run for the binary at path.
func Exec(path string) Run {
	return func(args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
		defer cancel()
		var out bytes.Buffer
		cmd := exec.CommandContext(ctx, path, args...)
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			return out.String(), fmt.Errorf("%s %s: %w", filepath.Base(path), strings.Join(args, " "), err)
		}
		return out.String(), nil
	}
}

// skipCommands are cobra's own commands, which are not pineconectl's
// interface.
var skipCommands = map[string]bool{"help": true, "completion": true}

// CobraCommands reads the --help of the root command and, depth first, of
// every command below it.
func CobraCommands(run Run, name string) ([]Command, error) {
	var out []Command
	var walk func(path []string) error
	walk = func(path []string) error {
		help, err := run(append(path, "--help")...)
		if err != nil {
			return err
		}
		c := ParseCobraHelp(strings.Join(append([]string{name}, path...), " "), help)
		out = append(out, c)
		for _, sub := range c.Subcommands {
			if skipCommands[sub] {
				continue
			}
			if err := walk(append(append([]string{}, path...), sub)); err != nil {
				return err
			}
		}
		return nil
	}
	return out, walk(nil)
}

// Pages builds all three pages by running the two binaries, keyed by file
// name.
func Pages(pineconed, pineconectl Run, version string) (map[string][]byte, error) {
	help, err := pineconed("-h")
	if err != nil {
		return nil, err
	}
	conf, err := pineconed("-genconf")
	if err != nil {
		return nil, err
	}
	cmds, err := CobraCommands(pineconectl, "pineconectl")
	if err != nil {
		return nil, err
	}
	return map[string][]byte{
		"pineconed.8":      Pineconed(help, version),
		"pineconed.toml.5": Config(conf, version),
		"pineconectl.8":    Pineconectl(cmds, version),
	}, nil
}
