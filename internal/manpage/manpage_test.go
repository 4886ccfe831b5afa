package manpage

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestEscape(t *testing.T) {
	for in, want := range map[string]string{
		`-config`:            `\-config`,
		`a\b`:                `a\eb`,
		".TH not a macro":    `\&.TH not a macro`,
		"x\n'quoted":         "x\n\\&'quoted",
		"ellipsis…":          `ellipsis\[u2026]`,
		`"quoted" is fine`:   `"quoted" is fine`,
		"no change at all 1": "no change at all 1",
	} {
		if got := Escape(in); got != want {
			t.Errorf("Escape(%q) = %q, want %q", in, got, want)
		}
	}
}

const goHelp = `Usage of pineconed:
  -address
    	print the address and exit
  -config string
    	configuration file (default "/etc/x.toml")
  -multi string
    	first line
    	second line
`

const cobraRoot = `Talks to the daemon.

Exit codes:
  0  success
  1  failure

Usage:
  pineconectl [command]

Available Commands:
  completion  Generate the autocompletion script for the specified shell
  help        Help about any command
  ping        Send echo requests

Flags:
  -h, --help               help for pineconectl
      --json               print JSON
      --socket string      admin socket (default "/run/x.sock")

Use "pineconectl [command] --help" for more information about a command.
`

const cobraPing = `Send echo requests to ADDRESS.

Usage:
  pineconectl ping ADDRESS|KEY [flags]

Flags:
  -c, --count int              number of probes (default 4)
  -h, --help                   help for ping

Global Flags:
      --json               print JSON
`

const genconf = `# header line one.
# header line two.

# The key file.
private_key_file = "/var/lib/x"

# The TUN.
[tun]

# Its MTU: 0 = automatic,
# else 1280..65378. (restart)
mtu = 0
`

func TestParsers(t *testing.T) {
	flags := ParseGoFlags(goHelp)
	if len(flags) != 3 || flags[0] != (Flag{Names: "-address", Usage: "print the address and exit"}) ||
		flags[1].Arg != "string" || flags[2].Usage != "first line second line" {
		t.Errorf("ParseGoFlags: %+v", flags)
	}
	root := ParseCobraHelp("pineconectl", cobraRoot)
	if !strings.HasPrefix(root.Description, "Talks to the daemon.") || !strings.Contains(root.Description, "  1  failure") ||
		len(root.Subcommands) != 3 || root.Subcommands[2] != "ping" || len(root.Flags) != 2 ||
		root.Flags[1] != (Flag{Names: "--socket", Arg: "string", Usage: `admin socket (default "/run/x.sock")`}) {
		t.Errorf("ParseCobraHelp(root): %+v", root)
	}
	ping := ParseCobraHelp("pineconectl ping", cobraPing)
	if len(ping.Usage) != 1 || ping.Usage[0] != "pineconectl ping ADDRESS|KEY [flags]" ||
		len(ping.Flags) != 1 || ping.Flags[0].Names != "-c, --count" || len(ping.Global) != 1 {
		t.Errorf("ParseCobraHelp(ping): %+v", ping)
	}
	header, opts := ParseGenconf(genconf)
	if header != "header line one.\nheader line two." || len(opts) != 3 ||
		opts[0] != (ConfigOption{Key: "private_key_file", Default: `"/var/lib/x"`, Doc: "The key file."}) ||
		!opts[1].Section || opts[1].Key != "tun" ||
		opts[2] != (ConfigOption{Key: "tun.mtu", Default: "0", Doc: "Its MTU: 0 = automatic,\nelse 1280..65378. (restart)"}) {
		t.Errorf("ParseGenconf: %q %+v", header, opts)
	}
}

// TestPagesAreValidRoff runs the pages through groff with all warnings
// and lexgrog (which reads the NAME line whatis and apropos use).
func TestPagesAreValidRoff(t *testing.T) {
	groff, err := exec.LookPath("groff")
	if err != nil {
		t.Skip("groff is not installed (apt-get install groff-base)")
	}
	run := func(help map[string]string) Run {
		return func(args ...string) (string, error) { return help[strings.Join(args, " ")], nil }
	}
	pages, err := Pages(
		run(map[string]string{"-h": goHelp, "-genconf": genconf}),
		run(map[string]string{"--help": cobraRoot, "ping --help": cobraPing}), "v1.2.3")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for name, body := range pages {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, body, 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(groff, "-man", "-Tutf8", "-ww", "-z", path).CombinedOutput()
		if err != nil || len(out) > 0 {
			t.Errorf("groff on %s: %v\n%s\n%s", name, err, out, body)
		}
		if lexgrog, err := exec.LookPath("lexgrog"); err == nil {
			out, err := exec.Command(lexgrog, path).CombinedOutput()
			want := strings.TrimSuffix(strings.TrimSuffix(name, ".8"), ".5") + " - "
			if err != nil || !strings.Contains(string(out), want) {
				t.Errorf("lexgrog %s: %v: %s", name, err, out)
			}
		}
		if !strings.Contains(string(body), `"pineconed v1.2.3"`) {
			t.Errorf("%s: version missing from the header", name)
		}
	}
	if ctl := string(pages["pineconectl.8"]); !strings.Contains(ctl, `.SS "pineconectl ping ADDRESS|KEY [flags]"`) ||
		strings.Contains(ctl, "completion") {
		t.Errorf("pineconectl.8 lacks ping or lists cobra's own commands:\n%s", ctl)
	}
}
