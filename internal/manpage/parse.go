package manpage

import (
	"regexp"
	"strings"
)

// Flag is one command-line flag as a help text shows it.
type Flag struct {
	Names string // "-config", or "-c, --count"
	Arg   string // the argument's type or name, "" for a switch
	Usage string
}

// goFlagLine matches the first line of a flag in Go's flag package
// usage output: "  -name type".
var goFlagLine = regexp.MustCompile(`^  (-[\w-]+)(?: (\S+))?$`)

// ParseGoFlags reads the flags from the output of a Go flag.FlagSet's
// usage ("Usage of NAME:" then "  -name type" and "    \tusage" lines).
func ParseGoFlags(help string) []Flag {
	var out []Flag
	for _, l := range strings.Split(help, "\n") {
		if m := goFlagLine.FindStringSubmatch(l); m != nil {
			out = append(out, Flag{Names: m[1], Arg: m[2]})
			continue
		}
		if u, ok := strings.CutPrefix(l, "    \t"); ok && len(out) > 0 {
			f := &out[len(out)-1]
			f.Usage = strings.TrimSpace(f.Usage + " " + u)
		}
	}
	return out
}

// Command is one cobra command as its --help shows it.
type Command struct {
	Path        string   // "pineconectl peer add"
	Description string   // the long text, or the short one
	Usage       []string // the lines under "Usage:"
	Subcommands []string // names under "Available Commands:"
	Flags       []Flag   // "Flags:" without --help
	Global      []Flag   // "Global Flags:"
}

// pflagLine matches a cobra/pflag flag line:
// "  -c, --count int     usage" or "      --json          usage".
var pflagLine = regexp.MustCompile(`^\s+((?:-\w, )?--[\w-]+)(?: ([\w.|]+))?\s{2,}(.*)$`)

// cobraSections are the headings of cobra's help template.
var cobraSections = map[string]bool{
	"Usage:": true, "Aliases:": true, "Examples:": true, "Available Commands:": true,
	"Flags:": true, "Global Flags:": true, "Additional help topics:": true,
}

// ParseCobraHelp reads one command's --help output.
func ParseCobraHelp(path, help string) Command {
	c := Command{Path: path}
	section := ""
	var desc []string
	for _, l := range strings.Split(help, "\n") {
		if cobraSections[l] {
			section = strings.TrimSuffix(l, ":")
			continue
		}
		if strings.HasPrefix(l, "Use \"") {
			continue
		}
		switch section {
		case "":
			desc = append(desc, l)
		case "Usage":
			if s := strings.TrimSpace(l); s != "" {
				c.Usage = append(c.Usage, s)
			}
		case "Available Commands":
			if f := strings.Fields(l); len(f) > 0 {
				c.Subcommands = append(c.Subcommands, f[0])
			}
		case "Flags", "Global Flags":
			m := pflagLine.FindStringSubmatch(l)
			if m == nil || strings.HasSuffix(m[1], "--help") {
				continue
			}
			f := Flag{Names: m[1], Arg: m[2], Usage: strings.TrimSpace(m[3])}
			if section == "Flags" {
				c.Flags = append(c.Flags, f)
			} else {
				c.Global = append(c.Global, f)
			}
		}
	}
	c.Description = strings.Trim(strings.Join(desc, "\n"), "\n")
	return c
}

// ConfigOption is one option of the generated configuration file.
type ConfigOption struct {
	Key     string // dotted: "tun.mtu"
	Default string // the TOML value as printed
	Doc     string
	Section bool // a [table]
}

// ParseGenconf reads the output of pineconed -genconf: a header comment,
// then blocks of "# doc" lines each followed by "[table]" or
// "key = value".
func ParseGenconf(conf string) (header string, opts []ConfigOption) {
	blocks := strings.Split(strings.TrimSpace(conf), "\n\n")
	var doc []string
	table := ""
	for i, blk := range blocks {
		doc = doc[:0]
		for _, l := range strings.Split(blk, "\n") {
			if c, ok := strings.CutPrefix(l, "#"); ok {
				doc = append(doc, strings.TrimPrefix(c, " "))
				continue
			}
			if strings.HasPrefix(l, "[") && strings.HasSuffix(l, "]") {
				table = strings.Trim(l, "[]")
				opts = append(opts, ConfigOption{Key: table, Doc: strings.Join(doc, "\n"), Section: true})
				continue
			}
			if k, v, ok := strings.Cut(l, " = "); ok {
				key := k
				if table != "" {
					key = table + "." + k
				}
				opts = append(opts, ConfigOption{Key: key, Default: v, Doc: strings.Join(doc, "\n")})
			}
		}
		if i == 0 && len(opts) == 0 {
			header = strings.Join(doc, "\n")
		}
	}
	return header, opts
}
