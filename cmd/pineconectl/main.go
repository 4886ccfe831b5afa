// Command pineconectl controls a running pineconed over its admin socket.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"os/user"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pineconed/pineconed/admin"
	"github.com/pineconed/pineconed/internal/version"
	"github.com/spf13/cobra"
)

// Exit codes. They are part of the interface: scripts test them.
const (
	exitOK         = 0
	exitAPI        = 1 // the daemon answered with an error, or talking to it failed
	exitUsage      = 2 // bad command line
	exitNotRunning = 3 // no socket, or nothing listening on it
	exitPermission = 4 // not allowed to connect to the socket
	exitNoReplies  = 5 // ping got no replies at all
)

// DefaultSocket is used when neither --socket nor PINECONED_ADMIN_SOCKET is
// set.
const DefaultSocket = "/run/pineconed/admin.sock"

// SocketEnv names the environment variable that overrides DefaultSocket.
const SocketEnv = "PINECONED_ADMIN_SOCKET"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

// cmdError marks an error returned by a command's own work, as opposed to
// a command-line error found by cobra.
type cmdError struct{ err error }

func (e *cmdError) Error() string { return e.err.Error() }
func (e *cmdError) Unwrap() error { return e.err }

// errNoReplies is returned by ping when nothing came back.
var errNoReplies = errors.New("no replies")

// stdin is what 'card import -' reads; tests replace it.
var stdin io.Reader = os.Stdin

// run executes one command line and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	a := &app{ctx: ctx, stdin: stdin, stdout: stdout, stderr: stderr}
	root := a.rootCommand(getenv)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	code, msg := classify(err, a.socket)
	if msg != "" {
		fmt.Fprintln(stderr, "pineconectl: "+msg)
	}
	if code == exitUsage {
		fmt.Fprintln(stderr, "Run 'pineconectl --help' for usage.")
	}
	return code
}

// classify maps an error to an exit code and the message to print.
func classify(err error, socket string) (int, string) {
	var ce *cmdError
	if !errors.As(err, &ce) {
		return exitUsage, err.Error()
	}
	var apiErr *admin.APIError
	switch {
	case errors.Is(err, errNoReplies):
		return exitNoReplies, ""
	case errors.Is(err, admin.ErrNotRunning):
		return exitNotRunning, fmt.Sprintf("pineconed is not running: nothing is listening on %s (%s).\n"+
			"Start it (e.g. 'systemctl start pineconed') or point --socket / %s at the right socket.",
			socket, rootCause(err), SocketEnv)
	case errors.Is(err, admin.ErrPermission):
		return exitPermission, fmt.Sprintf("permission denied opening %s.\n%s", socket, permissionHint(socket))
	case errors.As(err, &apiErr):
		return exitAPI, "daemon: " + apiErr.Message
	}
	return exitAPI, ce.err.Error()
}

// rootCause returns the system error text ("no such file or directory",
// "connection refused") when there is one.
func rootCause(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno.Error()
	}
	return err.Error()
}

// permissionHint names the socket's group when it can. It never advises
// joining group root (gid 0): that would hand out far more than the admin
// socket. A socket left in group root means the daemon has no [admin]
// group set, which is what to fix.
func permissionHint(socket string) string {
	group := "the socket's group"
	if fi, err := os.Stat(socket); err == nil {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			if st.Gid == 0 {
				return "The socket belongs to group root: set [admin] group in the daemon's configuration to a group for its operators (e.g. pineconed) and reload, or run pineconectl with sudo."
			}
			gid := strconv.FormatUint(uint64(st.Gid), 10)
			group = "group " + gid
			if g, err := user.LookupGroupId(gid); err == nil {
				group = "group '" + g.Name + "'"
			}
		}
	}
	return fmt.Sprintf("Add your user to %s (then log in again), or run pineconectl with sudo.", group)
}

type app struct {
	ctx      context.Context
	stdin    io.Reader
	stdout   io.Writer
	stderr   io.Writer
	socket   string
	jsonOut  bool
	fullKeys bool
	wide     bool
	timeout  time.Duration
}

func (a *app) view() view { return view{fullKeys: a.fullKeys, wide: a.wide} }

// withClient connects, runs fn and wraps its error for classify.
func (a *app) withClient(fn func(*admin.Client) error) error {
	ctx, cancel := context.WithTimeout(a.ctx, a.timeout)
	c, err := admin.DialContext(ctx, a.socket)
	cancel()
	if err != nil {
		return &cmdError{err}
	}
	defer c.Close()
	if err := fn(c); err != nil {
		return &cmdError{err}
	}
	return nil
}

// reqCtx bounds one request by --timeout.
func (a *app) reqCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(a.ctx, a.timeout)
}

// printJSON writes a raw response indented, keeping every byte of content.
func (a *app) printJSON(raw []byte) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return fmt.Errorf("daemon sent invalid JSON: %w", err)
	}
	buf.WriteByte('\n')
	_, err := a.stdout.Write(buf.Bytes())
	return err
}

// simple builds a read-only command: with --json it prints the raw
// response, otherwise decodes it into T and renders it.
func simple[T any](a *app, use, short, request string, render func(io.Writer, view, T) error) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withClient(func(c *admin.Client) error {
				ctx, cancel := a.reqCtx()
				defer cancel()
				raw, err := c.Do(ctx, request, nil)
				if err != nil {
					return err
				}
				if a.jsonOut {
					return a.printJSON(raw)
				}
				var v T
				if err := json.Unmarshal(raw, &v); err != nil {
					return fmt.Errorf("decoding %s response: %w", request, err)
				}
				return render(a.stdout, a.view(), v)
			})
		},
	}
}

const rootLong = `pineconectl talks to a running pineconed over its admin socket and shows
the node's state as tables, or as the daemon's raw JSON with --json.

The socket is --socket, else $PINECONED_ADMIN_SOCKET, else ` + DefaultSocket + `.
It is writable by root and the group pineconed gives it, so either run as a
member of that group or use sudo.

Exit codes:
  0  success
  1  the daemon reported an error (or the connection to it failed)
  2  bad usage (unknown command, bad flag or argument)
  3  the daemon is not running: no socket, or nothing listening on it
  4  permission denied on the socket
  5  ping: no replies at all`

func (a *app) rootCommand(getenv func(string) string) *cobra.Command {
	root := &cobra.Command{
		Use:           "pineconectl",
		Short:         "Control and inspect a running pineconed",
		Long:          rootLong,
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	socket := DefaultSocket
	if s := getenv(SocketEnv); s != "" {
		socket = s
	}
	pf := root.PersistentFlags()
	pf.StringVar(&a.socket, "socket", socket, "admin socket of the daemon (env "+SocketEnv+")")
	pf.BoolVar(&a.jsonOut, "json", false, "print the daemon's raw JSON response")
	pf.BoolVar(&a.fullKeys, "full-keys", false, "show public keys in full in tables")
	pf.BoolVar(&a.wide, "wide", false, "show tables in full: keys, URIs, errors and the extra columns that do not fit 100 columns")
	pf.DurationVar(&a.timeout, "timeout", 10*time.Second, "how long to wait for the daemon")
	// Flag errors are usage errors; cobra returns them unwrapped, which
	// classify maps to exit code 2.
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return err })

	peer := &cobra.Command{Use: "peer", Short: "Add or remove static peers at run time", Args: cobra.NoArgs}
	peer.AddCommand(a.peerCommand("add", "Start peering with URI (tcp://host:port, ws://…, wss://…)", admin.ReqAddPeer, "added"),
		a.peerCommand("remove", "Stop peering with URI and drop its links", admin.ReqRemovePeer, "removed"))

	root.AddCommand(
		a.statusCommand(),
		simple(a, "peers", "List the peerings", admin.ReqGetPeers, func(w io.Writer, v view, r admin.PeersResponse) error {
			return writePeers(w, v, r)
		}),
		simple(a, "tree", "Show the spanning tree: root, coordinates, parent, peers' announcements", admin.ReqGetTree, writeTree),
		simple(a, "snake", "Show the SNEK neighbours and routing table", admin.ReqGetSnake, writeSnake),
		simple(a, "sessions", "List the end-to-end encrypted sessions", admin.ReqGetSessions, func(w io.Writer, v view, r admin.SessionsResponse) error {
			return writeSessions(w, v, r.Sessions)
		}),
		peer,
		a.lookupCommand(),
		a.pingCommand(),
		a.versionCommand(),
		a.cardCommand(),
	)
	return root
}

func (a *app) statusCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show this node's identity, tree position and counters",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withClient(func(c *admin.Client) error {
				ctx, cancel := a.reqCtx()
				defer cancel()
				selfRaw, err := c.Do(ctx, admin.ReqGetSelf, nil)
				if err != nil {
					return err
				}
				statsRaw, err := c.Do(ctx, admin.ReqGetStats, nil)
				if err != nil {
					return err
				}
				if a.jsonOut {
					b, err := json.Marshal(map[string]json.RawMessage{"self": selfRaw, "stats": statsRaw})
					if err != nil {
						return err
					}
					return a.printJSON(b)
				}
				var self admin.Self
				var st admin.Stats
				if err := json.Unmarshal(selfRaw, &self); err != nil {
					return fmt.Errorf("decoding getSelf response: %w", err)
				}
				if err := json.Unmarshal(statsRaw, &st); err != nil {
					return fmt.Errorf("decoding getStats response: %w", err)
				}
				return writeStatus(a.stdout, a.view(), self, st)
			})
		},
	}
}

func (a *app) peerCommand(name, short, request, done string) *cobra.Command {
	return &cobra.Command{
		Use:   name + " URI",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(func(c *admin.Client) error {
				ctx, cancel := a.reqCtx()
				defer cancel()
				raw, err := c.Do(ctx, request, admin.URIArgs{URI: args[0]})
				if err != nil {
					return err
				}
				if a.jsonOut {
					return a.printJSON(raw)
				}
				_, err = fmt.Fprintf(a.stdout, "%s peer %s\n", done, args[0])
				return err
			})
		},
	}
}

func (a *app) lookupCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "lookup ADDRESS",
		Short: "Find the public key that owns an overlay IPv6 address",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := admin.ParseOverlayAddress(args[0]); err != nil {
				return err // usage error: exit 2
			}
			return a.withClient(func(c *admin.Client) error {
				// A lookup of an address nobody owns takes as long as
				// the daemon's resolver needs to give up (about 11 s);
				// wait for its answer unless --timeout says otherwise.
				timeout := a.timeout
				if !cmd.Flags().Changed("timeout") {
					timeout = max(timeout, admin.DefaultLookupTimeout+time.Second)
				}
				ctx, cancel := context.WithTimeout(a.ctx, timeout)
				defer cancel()
				raw, err := c.Do(ctx, admin.ReqLookup, admin.LookupArgs{Address: args[0]})
				if err != nil {
					return err
				}
				if a.jsonOut {
					return a.printJSON(raw)
				}
				var r admin.LookupResponse
				if err := json.Unmarshal(raw, &r); err != nil {
					return fmt.Errorf("decoding lookup response: %w", err)
				}
				return writeLookup(a.stdout, r)
			})
		},
	}
}

func (a *app) versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print pineconectl's version and, if it answers, the daemon's",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			daemon, derr := "", error(nil)
			ctx, cancel := context.WithTimeout(a.ctx, min(a.timeout, 2*time.Second))
			defer cancel()
			if c, err := admin.DialContext(ctx, a.socket); err != nil {
				derr = err
			} else {
				self, err := c.Self(ctx)
				c.Close()
				daemon, derr = self.Version, err
			}
			if a.jsonOut {
				out := map[string]string{"pineconectl": version.String(), "pineconed": daemon}
				if derr != nil {
					out["pineconed_error"] = derr.Error()
				}
				b, _ := json.Marshal(out)
				return a.printJSON(b)
			}
			fmt.Fprintf(a.stdout, "pineconectl %s\n", version.String())
			if derr != nil {
				fmt.Fprintf(a.stdout, "pineconed   unknown (%s)\n", firstLine(derr.Error()))
			} else {
				fmt.Fprintf(a.stdout, "pineconed   %s\n", daemon)
			}
			return nil
		},
	}
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}
