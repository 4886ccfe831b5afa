package readme

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// command is one command line shown in the README.
type command struct {
	line   int      // 1-based line in the file
	text   string   // continuation lines joined, white space collapsed
	output []string // the lines shown after it in a console block
}

// extract returns the commands in md's code blocks and the problems found
// with the blocks themselves.
func extract(md string) ([]command, []string) {
	var cmds []command
	var problems []string
	lines := strings.Split(md, "\n")
	for i := 0; i < len(lines); i++ {
		fence, ok := strings.CutPrefix(strings.TrimSpace(lines[i]), "```")
		if !ok {
			cmds = append(cmds, inlineCommands(lines[i], i+1)...)
			continue
		}
		tag := strings.Fields(fence + " ")
		lang := ""
		if len(tag) > 0 {
			lang = tag[0]
		}
		start := i + 1
		var body []string
		for i++; i < len(lines) && strings.TrimSpace(lines[i]) != "```"; i++ {
			body = append(body, strings.TrimSpace(lines[i]))
		}
		if i == len(lines) {
			problems = append(problems, fmt.Sprintf("line %d: code block is never closed", start))
		}
		switch lang {
		case "sh":
			cmds = append(cmds, shellCommands(body, start+1)...)
		case "console":
			cmds = append(cmds, consoleCommands(body, start+1)...)
		case "text", "toml", "yaml":
		default:
			problems = append(problems, fmt.Sprintf("line %d: code block tagged %q: tag commands sh or console, anything else text, toml or yaml", start, lang))
		}
	}
	return cmds, problems
}

var spaces = regexp.MustCompile(`\s+`)

// inlineSpan is a code span in the text; it is a command when it has
// arguments and starts with one of commandWords.
var inlineSpan = regexp.MustCompile("`([^`]+)`")

var commandWords = map[string]bool{
	"pineconed": true, "pineconectl": true, "./pineconed": true, ".ci/run": true, "sudo": true, "go": true,
	"systemctl": true, "journalctl": true, "docker": true, "curl": true, "ip": true, "ping": true,
}

func inlineCommands(line string, n int) []command {
	var out []command
	for _, m := range inlineSpan.FindAllStringSubmatch(line, -1) {
		f := strings.Fields(m[1])
		if len(f) > 1 && commandWords[f[0]] {
			out = append(out, command{line: n, text: normalize(m[1])})
		}
	}
	return out
}

func normalize(s string) string { return strings.TrimSpace(spaces.ReplaceAllString(s, " ")) }

// joinContinued joins lines ending in a backslash with the next one.
func joinContinued(body []string, i int) (string, int) {
	text := body[i]
	for strings.HasSuffix(text, `\`) && i+1 < len(body) {
		i++
		text = strings.TrimSuffix(text, `\`) + " " + body[i]
	}
	return normalize(text), i
}

func shellCommands(body []string, first int) []command {
	var out []command
	for i := 0; i < len(body); i++ {
		if body[i] == "" || strings.HasPrefix(body[i], "#") {
			continue
		}
		line := first + i
		text, j := joinContinued(body, i)
		i = j
		out = append(out, command{line: line, text: text})
	}
	return out
}

func consoleCommands(body []string, first int) []command {
	var out []command
	for i := 0; i < len(body); i++ {
		rest, ok := strings.CutPrefix(body[i], "$ ")
		if !ok {
			if len(out) > 0 {
				out[len(out)-1].output = append(out[len(out)-1].output, body[i])
			}
			continue
		}
		line := first + i
		body[i] = rest
		text, j := joinContinued(body, i)
		i = j
		out = append(out, command{line: line, text: text})
	}
	return out
}

// testExists reports whether ref ("dir.TestName", dir relative to the
// repository root) names a top-level test function in that directory.
func testExists(root, ref string) (bool, error) {
	dot := strings.LastIndex(ref, ".")
	if dot < 0 || !strings.HasPrefix(ref[dot+1:], "Test") {
		return false, fmt.Errorf("%q is not dir.TestName", ref)
	}
	dir, name := filepath.Join(root, ref[:dot]), ref[dot+1:]
	files, err := filepath.Glob(filepath.Join(dir, "*_test.go"))
	if err != nil || len(files) == 0 {
		return false, fmt.Errorf("%s: no test files in %s", ref, dir)
	}
	fset := token.NewFileSet()
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			return false, err
		}
		af, err := parser.ParseFile(fset, f, src, parser.SkipObjectResolution)
		if err != nil {
			return false, err
		}
		for _, d := range af.Decls {
			if fd, ok := d.(*ast.FuncDecl); ok && fd.Recv == nil && fd.Name.Name == name {
				return true, nil
			}
		}
	}
	return false, nil
}
