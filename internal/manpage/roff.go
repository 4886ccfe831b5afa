// Package manpage turns the text the binaries print about themselves
// (pineconed -h, pineconed -genconf, pineconectl [command] --help) into the
// man pages pineconed(8), pineconed.toml(5) and pineconectl(8). Generating
// them from that output, at package build time (see mangen), means a new
// flag, option or command reaches the man pages without anyone editing
// them; the tests of cmd/pineconed, cmd/pineconectl and config check that
// every flag, command and option of the real sources appears.
//
// It is outside the data path: nothing in the daemon imports it.
package manpage

import (
	"bytes"
	"fmt"
	"strings"
)

// roff writes man(7) markup.
type roff struct{ b bytes.Buffer }

// Escape makes s safe as roff text, as every page writes it: backslashes
// and hyphens escaped, non-ASCII characters as \[uXXXX] (so no input
// encoding is assumed), and a line that would start with a control
// character guarded.
func Escape(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	s = strings.ReplaceAll(s, "-", `\-`)
	var b strings.Builder
	for _, r := range s {
		if r > 0x7e {
			fmt.Fprintf(&b, `\[u%04X]`, r)
		} else {
			b.WriteRune(r)
		}
	}
	lines := strings.Split(b.String(), "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, ".") || strings.HasPrefix(l, "'") {
			lines[i] = `\&` + l
		}
	}
	return strings.Join(lines, "\n")
}

func (r *roff) line(format string, a ...any) {
	fmt.Fprintf(&r.b, format, a...)
	r.b.WriteByte('\n')
}

func (r *roff) header(name, section, version, manual string) {
	r.line(`.TH %s %s "" "pineconed %s" "%s"`, strings.ToUpper(Escape(name)), section, Escape(version), manual)
}

func (r *roff) section(title string) { r.line(".SH %s", strings.ToUpper(title)) }

func (r *roff) subsection(title string) {
	r.line(`.SS "%s"`, strings.ReplaceAll(Escape(title), `"`, `\(dq`))
}

// text writes paragraphs: blank lines separate them, and lines indented
// by two or more spaces are kept as they are (tables, lists of codes).
func (r *roff) text(s string) {
	s = strings.Trim(s, "\n")
	if s == "" {
		return
	}
	inPre := false
	for _, l := range strings.Split(s, "\n") {
		pre := strings.HasPrefix(l, "  ")
		switch {
		case pre && !inPre:
			r.line(".PP\n.nf\n.RS 4")
			inPre = true
		case !pre && inPre:
			r.line(".RE\n.fi")
			inPre = false
			if l != "" {
				r.line(".PP")
			}
		}
		if l == "" {
			if !inPre {
				r.line(".PP")
			}
			continue
		}
		r.line("%s", Escape(strings.TrimPrefix(l, "  ")))
	}
	if inPre {
		r.line(".RE\n.fi")
	}
}

// item writes a tagged paragraph: tag in bold (with an optional argument
// in italics), then its description.
func (r *roff) item(tag, arg, desc string) {
	r.line(".TP")
	if arg != "" {
		r.line(`\fB%s\fR \fI%s\fR`, Escape(tag), Escape(arg))
	} else {
		r.line(`\fB%s\fR`, Escape(tag))
	}
	r.line("%s", Escape(strings.TrimSpace(desc)))
}

func (r *roff) bytes() []byte { return r.b.Bytes() }
