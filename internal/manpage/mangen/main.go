// Command mangen writes the man pages pineconed(8), pineconed.toml(5) and
// pineconectl(8) into a directory, from the help output of the binaries
// given (see package manpage). The Debian package build runs it on the
// binaries it packages:
//
//	go run ./internal/manpage/mangen -pineconed ./pineconed -pineconectl ./pineconectl -version v1.2.3 -out build/man
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/pineconed/pineconed/internal/manpage"
)

func main() {
	d := flag.String("pineconed", "pineconed", "the pineconed binary")
	c := flag.String("pineconectl", "pineconectl", "the pineconectl binary")
	version := flag.String("version", "devel", "version shown in the pages' header")
	out := flag.String("out", ".", "directory to write the pages into")
	flag.Parse()
	if err := generate(*d, *c, *version, *out); err != nil {
		fmt.Fprintln(os.Stderr, "mangen:", err)
		os.Exit(1)
	}
}

func generate(d, c, version, out string) error {
	pages, err := manpage.Pages(manpage.Exec(d), manpage.Exec(c), version)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	for name, body := range pages {
		if err := os.WriteFile(filepath.Join(out, name), body, 0o644); err != nil {
			return err
		}
	}
	return nil
}
