package config

import (
	"github.com/pineconed/pineconed/overlay/peers/peeruri"

	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/pineconed/pineconed/overlay/wire"
)

// Load reads and parses the configuration file at path. Options the file
// does not set keep their defaults. A file that cannot be read is an error
// wrapping the cause: the daemon checks errors.Is(err, fs.ErrNotExist) to
// run on defaults when the default path does not exist.
func Load(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		cause := err
		var pe *fs.PathError
		if errors.As(err, &pe) {
			cause = pe.Err
		}
		return Config{}, Errors{{File: path, Msg: "cannot read: " + cause.Error(), Err: err}}
	}
	return Parse(path, data)
}

// Parse parses a configuration file's contents; name is used in error
// messages (normally the file's path). The result is validated: on success
// it is ready to use, on failure the error is an Errors listing every
// problem found.
func Parse(name string, data []byte) (Config, error) {
	var raw map[string]any
	if _, err := toml.Decode(string(data), &raw); err != nil {
		return Config{}, syntaxError(name, data, err)
	}
	d := decoder{file: name, idx: indexKeys(string(data))}
	cfg := Default()
	d.table(raw, reflect.ValueOf(&cfg).Elem(), nil)
	d.errs = append(d.errs, validate(cfg, name, d.idx, d.failed)...)
	if err := d.errs.orNil(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// syntaxError reports a toml.ParseError on the line of the offending byte.
// The library's own line number is one too far when that byte is the
// newline ending a line ("[tun" followed by a newline), so we count lines
// up to Position.Start ourselves.
func syntaxError(name string, data []byte, err error) error {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		line := pe.Position.Line
		if start := pe.Position.Start; start >= 0 && start <= len(data) && len(data) > 0 {
			if start == len(data) {
				start-- // at EOF: blame the last line with content
			}
			line = 1 + bytes.Count(data[:start], []byte("\n"))
		}
		return Errors{{File: name, Line: line, Msg: "syntax error: " + pe.Message, Err: err}}
	}
	return Errors{{File: name, Msg: err.Error(), Err: err}}
}

// Validate checks a configuration built in code (Parse and Load already
// validate what they return). The error, if any, is an Errors without lines.
func (c Config) Validate() error {
	return validate(c, "", nil, nil).orNil()
}

// decoder walks the generic tree BurntSushi/toml decoded and fills the
// Config by toml tags, collecting every problem instead of stopping at the
// first one as toml.Decode into a struct would.
type decoder struct {
	file string
	idx  *keyIndex
	errs Errors
	// failed holds the keys (with [i] for elements) that could not be
	// decoded. They keep a default or zero value, so validate skips them
	// instead of adding a second, confusing error for the same mistake.
	failed map[string]bool
}

func (d *decoder) fail(path []string, elem int, format string, args ...any) {
	key, line := dotted(path), d.idx.line(path)
	if elem >= 0 {
		key = fmt.Sprintf("%s[%d]", key, elem)
		line = d.idx.elemLine(path, elem)
	}
	if d.failed == nil {
		d.failed = map[string]bool{}
	}
	d.failed[key] = true
	d.errs = append(d.errs, &Error{File: d.file, Line: line, Key: key, Msg: fmt.Sprintf(format, args...)})
}

// tomlFields maps toml tag names to field indexes of a struct type.
func tomlFields(t reflect.Type) map[string]int {
	m := make(map[string]int, t.NumField())
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("toml"), ",")
		if name != "" && name != "-" {
			m[name] = i
		}
	}
	return m
}

func (d *decoder) table(m map[string]any, rv reflect.Value, path []string) {
	fields := tomlFields(rv.Type())
	for k, v := range m {
		p := append(path[:len(path):len(path)], k)
		i, ok := fields[k]
		if !ok {
			d.fail(p, -1, "unknown option")
			continue
		}
		d.value(v, rv.Field(i), p, -1)
	}
}

var (
	levelType     = reflect.TypeFor[slog.Level]()
	publicKeyType = reflect.TypeFor[wire.PublicKey]()
	peerURIType   = reflect.TypeFor[PeerURI]()
	durationType  = reflect.TypeFor[time.Duration]()
)

// value stores v into fv, or records why it cannot. elem >= 0 marks an
// array element, reported as key[elem] on the element's own line.
func (d *decoder) value(v any, fv reflect.Value, path []string, elem int) {
	switch fv.Type() {
	case levelType:
		s, ok := v.(string)
		if !ok {
			d.fail(path, elem, "expected a string (debug, info, warn or error), got %s", describe(v))
			return
		}
		l, err := ParseLevel(s)
		if err != nil {
			d.fail(path, elem, "%v", err)
			return
		}
		fv.Set(reflect.ValueOf(l))
		return
	case publicKeyType:
		s, ok := v.(string)
		if !ok {
			d.fail(path, elem, "expected a hex public key string, got %s", describe(v))
			return
		}
		k, err := parseHexKey(s)
		if err != nil {
			d.fail(path, elem, "%v", err)
			return
		}
		fv.Set(reflect.ValueOf(k))
		return
	case durationType:
		s, ok := v.(string)
		if !ok {
			d.fail(path, elem, "expected a duration string such as \"1.5s\" or \"500ms\", got %s", describe(v))
			return
		}
		dur, err := time.ParseDuration(s)
		if err != nil {
			d.fail(path, elem, "%q is not a duration (want e.g. \"1.5s\" or \"500ms\")", s)
			return
		}
		fv.Set(reflect.ValueOf(dur))
		return
	case peerURIType:
		s, ok := v.(string)
		if !ok {
			d.fail(path, elem, "expected a URI string, got %s", describe(v))
			return
		}
		// Syntax only here; whether a key pin or an empty host is
		// allowed depends on the option and is checked by validate.
		u, err := peeruri.Parse(s)
		if err != nil {
			d.fail(path, elem, "%q: %v", s, err)
			return
		}
		fv.Set(reflect.ValueOf(u))
		return
	}

	switch fv.Kind() {
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			d.fail(path, elem, "expected a table, got %s", describe(v))
			return
		}
		d.table(m, fv, path)
	case reflect.String:
		s, ok := v.(string)
		if !ok {
			d.fail(path, elem, "expected a string, got %s", describe(v))
			return
		}
		fv.SetString(s)
	case reflect.Bool:
		b, ok := v.(bool)
		if !ok {
			d.fail(path, elem, "expected true or false, got %s", describe(v))
			return
		}
		fv.SetBool(b)
	case reflect.Int:
		n, ok := v.(int64)
		if !ok {
			d.fail(path, elem, "expected an integer, got %s", describe(v))
			return
		}
		if n < math.MinInt || n > math.MaxInt {
			d.fail(path, elem, "%d is out of range", n)
			return
		}
		fv.SetInt(n)
	case reflect.Slice:
		arr, ok := v.([]any)
		if !ok {
			d.fail(path, elem, "expected an array, got %s", describe(v))
			return
		}
		s := reflect.MakeSlice(fv.Type(), len(arr), len(arr))
		for i, e := range arr {
			d.value(e, s.Index(i), path, i)
		}
		fv.Set(s)
	default:
		// Only reachable if someone adds a field of a new kind to Config;
		// the round-trip tests catch that before it ships.
		d.fail(path, elem, "internal error: cannot decode into %s", fv.Type())
	}
}

// describe names a decoded TOML value's type for error messages.
func describe(v any) string {
	switch v := v.(type) {
	case string:
		return "string " + strconv.Quote(v)
	case int64:
		return fmt.Sprintf("integer %d", v)
	case float64:
		return fmt.Sprintf("float %v", v)
	case bool:
		return fmt.Sprintf("boolean %v", v)
	case time.Time:
		return "date-time " + v.Format(time.RFC3339)
	case []any:
		return "array"
	case map[string]any:
		return "table"
	case []map[string]any:
		return "array of tables"
	}
	return fmt.Sprintf("%T", v)
}

// ParseLevel parses a log level name: debug, info, warn or error (any case).
// Unlike slog.Level.UnmarshalText it refuses offsets such as "info+2", which
// would be confusing in a config file.
func ParseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("unknown log level %q (want debug, info, warn or error)", s)
}

// levelName is the inverse of ParseLevel for the four levels it knows.
func levelName(l slog.Level) string {
	return strings.ToLower(l.String())
}

// parseHexKey parses an allowed key: exactly 64 hex characters.
func parseHexKey(s string) (wire.PublicKey, error) {
	if len(s) != 2*wire.KeySize {
		return wire.PublicKey{}, fmt.Errorf("public key %q: want %d hex characters, got %d", s, 2*wire.KeySize, len(s))
	}
	k, err := wire.ParsePublicKey(s)
	if err != nil {
		return wire.PublicKey{}, fmt.Errorf("public key %q: not hex", s)
	}
	return k, nil
}
