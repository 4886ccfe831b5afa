// Package readme holds only tests: they keep the promise at the end of the
// repository's README.md that every command it shows is exercised by a test
// or by .ci/run.
//
// The tests read README.md and take every command from its fenced code
// blocks: in a block tagged sh every line that is not empty or a # comment
// is a command (a trailing backslash continues it); in a block tagged
// console the lines starting with "$ " are commands and the others their
// output. Blocks tagged text, toml or yaml hold no commands, and a block
// with no tag or another one is an error, so a command cannot hide in an
// untagged block. In the text, a code span with arguments whose first word
// is a command this project's users type (pineconed, pineconectl, sudo,
// systemctl, journalctl, docker, go, curl, ip, ping, ./pineconed, .ci/run)
// is a command too.
//
// A command is covered when one of these tests runs it (the build lines,
// -genconf, --help, the bad-configuration example, the first start on
// built-in defaults in a fresh network and mount namespace with pineconectl
// and curl against it, and the install steps rehearsed under a scratch
// root), or when the table in coverage_test.go names the tests that
// exercise it (each of which must exist) and says why that is the closest
// check, or when it is what .ci/run runs. A command nobody covers, a table
// entry that no longer matches any command and a named test that does not
// exist all fail the check.
//
// TestImportGraph keeps a second document true: the package import graph
// in CONTRIBUTING.md must be the one the code has (its -update flag
// rewrites it).
package readme
