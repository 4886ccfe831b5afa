package config

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Error is one problem in a configuration. Its message has the form
//
//	file:line: key: message
//
// for example "pineconed.toml:12: peers.statc: unknown option". Parts that
// are unknown are left out: no line for a configuration built in code, no
// key for a file that cannot be read or a syntax error.
type Error struct {
	// File is the name given to Parse or the path given to Load.
	File string
	// Line is 1-based, 0 when unknown.
	Line int
	// Key is the dotted option, with [i] for an array element:
	// "peers.static[2]". Empty for problems with the file as a whole.
	Key string
	// Msg says what is wrong.
	Msg string
	// Err is the underlying error, if any (for errors.Is, e.g. fs.ErrNotExist).
	Err error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		if e.File == "" {
			b.WriteString("line ")
		} else {
			b.WriteByte(':')
		}
		fmt.Fprintf(&b, "%d", e.Line)
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// Errors is every problem found in one configuration, in file order. Parse,
// Load and Validate return it (never empty) as their error, so a user sees
// all mistakes at once. Its message has one Error per line.
type Errors []*Error

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap lets errors.Is and errors.As look at each problem.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// sorted orders problems by line, then key, so output does not depend on
// Go's map iteration order. Problems without a line keep to the end.
func (es Errors) sorted() Errors {
	slices.SortStableFunc(es, func(a, b *Error) int {
		la, lb := a.Line, b.Line
		if la == 0 {
			la = int(^uint(0) >> 1)
		}
		if lb == 0 {
			lb = int(^uint(0) >> 1)
		}
		if c := cmp.Compare(la, lb); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Key, b.Key); c != 0 {
			return c
		}
		return cmp.Compare(a.Msg, b.Msg)
	})
	return es
}

// orNil returns nil for no problems, so callers can write `return x.orNil()`
// without handing back a non-nil interface holding an empty list.
func (es Errors) orNil() error {
	if len(es) == 0 {
		return nil
	}
	return es.sorted()
}
