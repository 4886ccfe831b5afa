package admin

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"sync"
	"syscall"
	"time"
)

// Errors a client can tell apart with errors.Is.
var (
	// ErrNotRunning: no socket at the path, or nobody listening on it.
	ErrNotRunning = errors.New("daemon not running")
	// ErrPermission: the socket exists but we may not connect to it.
	ErrPermission = errors.New("permission denied")
)

// DialError is returned by Dial. It matches ErrNotRunning or ErrPermission
// with errors.Is when the cause is one of those, as well as the underlying
// system error.
type DialError struct {
	Path string
	Kind error // ErrNotRunning, ErrPermission or nil
	Err  error
}

func (e *DialError) Error() string {
	switch e.Kind {
	case ErrNotRunning:
		return fmt.Sprintf("pineconed is not running (nothing listening on admin socket %s): %v", e.Path, e.Err)
	case ErrPermission:
		return fmt.Sprintf("permission denied on admin socket %s: %v", e.Path, e.Err)
	}
	return fmt.Sprintf("connecting to admin socket %s: %v", e.Path, e.Err)
}

// Unwrap exposes both the kind and the cause to errors.Is and errors.As.
func (e *DialError) Unwrap() []error {
	if e.Kind == nil {
		return []error{e.Err}
	}
	return []error{e.Kind, e.Err}
}

// ClassifyDialError maps a connection error to ErrNotRunning, ErrPermission
// or nil (anything else).
func ClassifyDialError(err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOENT),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ENOTDIR):
		return ErrNotRunning
	case errors.Is(err, fs.ErrPermission), errors.Is(err, syscall.EACCES),
		errors.Is(err, syscall.EPERM):
		return ErrPermission
	}
	return nil
}

// APIError is an error reply from the daemon.
type APIError struct {
	Request string
	Message string
}

func (e *APIError) Error() string { return e.Message }

// Client talks to the daemon over its admin socket. One request is in flight
// at a time; methods are safe for concurrent use and take turns.
type Client struct {
	path string
	mu   sync.Mutex // held for a whole request
	// connMu guards conn against Close while a request replaces it; the
	// request path itself reads conn under mu.
	connMu sync.Mutex
	conn   net.Conn
	r      *bufio.Reader
	bad    error // set once the stream is out of step; every later call fails
}

// MaxReplyBytes bounds one reply line read by the client.
const MaxReplyBytes = 16 << 20

// Dial connects to the admin socket at path.
func Dial(path string) (*Client, error) {
	return DialContext(context.Background(), path)
}

// DialContext is Dial with a context bounding the connection attempt.
func DialContext(ctx context.Context, path string) (*Client, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, &DialError{Path: path, Kind: ClassifyDialError(err), Err: err}
	}
	return &Client{path: path, conn: conn, r: bufio.NewReaderSize(conn, 64<<10)}, nil
}

// Path returns the socket path the client is connected to.
func (c *Client) Path() string { return c.path }

// Close closes the connection.
func (c *Client) Close() error {
	c.connMu.Lock()
	defer c.connMu.Unlock()
	return c.conn.Close()
}

// Do sends one request with args (any value encoding to a JSON object, or
// nil) and returns the raw response on success. An error reply from the
// daemon comes back as *APIError. If ctx ends mid-request the connection is
// closed, since a late reply would put it out of step.
func (c *Client) Do(ctx context.Context, request string, args any) (json.RawMessage, error) {
	req := Request{Request: request}
	if args != nil {
		b, err := json.Marshal(args)
		if err != nil {
			return nil, fmt.Errorf("%s: encoding arguments: %w", request, err)
		}
		req.Arguments = b
	}
	line, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", request, err)
	}
	line = append(line, '\n')

	c.mu.Lock()
	defer c.mu.Unlock()
	if c.bad != nil {
		return nil, c.bad
	}
	// ctx alone bounds the call: AfterFunc runs after ctx.Err is set, so a
	// failed read can be reported as ctx's error.
	_ = c.conn.SetDeadline(time.Time{})
	stop := context.AfterFunc(ctx, func() { _ = c.conn.SetDeadline(time.Unix(1, 0)) })
	reply, err := c.roundTrip(line)
	if err != nil && ctx.Err() == nil && serverHungUp(err) {
		// The server drops connections that wait too long for a request,
		// and idle ones when its slots are full; it had not read this
		// request, so sending it again on a new connection is safe.
		if stop() {
			if rerr := c.redial(ctx); rerr == nil {
				stop = context.AfterFunc(ctx, func() { _ = c.conn.SetDeadline(time.Unix(1, 0)) })
				reply, err = c.roundTrip(line)
			}
		} else {
			stop = func() bool { return false }
		}
	}
	if stopped := stop(); err != nil || !stopped {
		// Either the stream is out of step, or the deadline-setting func may
		// still run and spoil the next call: this connection is done.
		if err != nil && ctx.Err() != nil {
			err = ctx.Err()
		}
		c.bad = fmt.Errorf("admin connection closed after an interrupted request: %w", cmpErr(err, ctx.Err()))
		_ = c.conn.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", request, err)
		}
	}
	switch reply.Status {
	case StatusSuccess:
		if len(reply.Response) == 0 {
			return json.RawMessage("{}"), nil
		}
		return reply.Response, nil
	case StatusError:
		return nil, &APIError{Request: request, Message: reply.Error}
	}
	return nil, fmt.Errorf("%s: reply with unknown status %q", request, reply.Status)
}

// serverHungUp reports whether err means the server closed the
// connection before answering.
func serverHungUp(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET)
}

// redial replaces the connection with a new one to the same socket.
func (c *Client) redial(ctx context.Context) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", c.path)
	if err != nil {
		return err
	}
	c.connMu.Lock()
	_ = c.conn.Close()
	c.conn, c.r = conn, bufio.NewReaderSize(conn, 64<<10)
	c.connMu.Unlock()
	return nil
}

func (c *Client) roundTrip(line []byte) (Reply, error) {
	var reply Reply
	if _, err := c.conn.Write(line); err != nil {
		return reply, err
	}
	var buf []byte
	for {
		chunk, err := c.r.ReadSlice('\n')
		buf = append(buf, chunk...)
		if err == nil {
			break
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			if errors.Is(err, io.EOF) && len(buf) > 0 {
				// Part of a reply: the request was seen.
				err = io.ErrUnexpectedEOF
			}
			return reply, err
		}
		if len(buf) > MaxReplyBytes {
			return reply, fmt.Errorf("reply longer than %d bytes", MaxReplyBytes)
		}
	}
	if err := json.Unmarshal(bytes.TrimSpace(buf), &reply); err != nil {
		return reply, fmt.Errorf("malformed reply: %w", err)
	}
	return reply, nil
}

func call[T any](c *Client, ctx context.Context, request string, args any) (T, error) {
	var v T
	raw, err := c.Do(ctx, request, args)
	if err != nil {
		return v, err
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return v, fmt.Errorf("%s: decoding response: %w", request, err)
	}
	return v, nil
}

// Self calls getSelf.
func (c *Client) Self(ctx context.Context) (Self, error) {
	return call[Self](c, ctx, ReqGetSelf, nil)
}

// Peers calls getPeers.
func (c *Client) Peers(ctx context.Context) ([]Peer, error) {
	r, err := call[PeersResponse](c, ctx, ReqGetPeers, nil)
	return r.Peers, err
}

// Tree calls getTree.
func (c *Client) Tree(ctx context.Context) (Tree, error) {
	return call[Tree](c, ctx, ReqGetTree, nil)
}

// Snake calls getSnake.
func (c *Client) Snake(ctx context.Context) (Snake, error) {
	return call[Snake](c, ctx, ReqGetSnake, nil)
}

// Sessions calls getSessions.
func (c *Client) Sessions(ctx context.Context) ([]Session, error) {
	r, err := call[SessionsResponse](c, ctx, ReqGetSessions, nil)
	return r.Sessions, err
}

// Stats calls getStats.
func (c *Client) Stats(ctx context.Context) (Stats, error) {
	return call[Stats](c, ctx, ReqGetStats, nil)
}

// AddPeer calls addPeer.
func (c *Client) AddPeer(ctx context.Context, uri string) error {
	_, err := c.Do(ctx, ReqAddPeer, URIArgs{URI: uri})
	return err
}

// RemovePeer calls removePeer.
func (c *Client) RemovePeer(ctx context.Context, uri string) error {
	_, err := c.Do(ctx, ReqRemovePeer, URIArgs{URI: uri})
	return err
}

// Lookup calls lookup.
func (c *Client) Lookup(ctx context.Context, address string) (LookupResponse, error) {
	return call[LookupResponse](c, ctx, ReqLookup, LookupArgs{Address: address})
}

// Ping calls ping. The daemon answers once all probes are done, so ctx must
// allow for count×interval plus the timeout.
func (c *Client) Ping(ctx context.Context, args PingArgs) (PingResponse, error) {
	return call[PingResponse](c, ctx, ReqPing, args)
}

// Card calls getCard.
func (c *Client) Card(ctx context.Context, args CardArgs) (CardResponse, error) {
	return call[CardResponse](c, ctx, ReqGetCard, args)
}

// ImportCard calls importCard.
func (c *Client) ImportCard(ctx context.Context, text string) (ImportCardResponse, error) {
	return call[ImportCardResponse](c, ctx, ReqImportCard, ImportCardArgs{Card: text})
}

// Cards calls listCards.
func (c *Client) Cards(ctx context.Context) ([]CardInfo, error) {
	r, err := call[CardsResponse](c, ctx, ReqListCards, nil)
	return r.Cards, err
}

// RemoveCard calls removeCard with a key or a name.
func (c *Client) RemoveCard(ctx context.Context, id string) (CardInfo, error) {
	return call[CardInfo](c, ctx, ReqRemoveCard, RemoveCardArgs{Card: id})
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}
