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
	"log/slog"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Defaults for zero ServerConfig fields.
const (
	DefaultMaxConns       = 32
	DefaultMaxLineBytes   = 64 << 10
	DefaultRequestTimeout = 10 * time.Second
	DefaultIdleTimeout    = 5 * time.Minute
	// DefaultLookupTimeout bounds a lookup request (and the lookup step
	// of a ping by address). It is longer than the daemon's resolver takes
	// to give up (about 11 s), so a lookup of an address nobody owns ends
	// with the resolver's answer, not with this bound.
	DefaultLookupTimeout = 15 * time.Second
	// SocketMode is the permission of the socket file: owner and group may
	// connect, others may not.
	SocketMode = 0o660
)

// ErrInUse is returned by Listen when another process answers on the
// socket path.
var ErrInUse = errors.New("admin socket in use by another process")

// ServerConfig configures Listen.
type ServerConfig struct {
	// Path of the Unix socket to create.
	Path string
	// Group owning the socket: a group name or a numeric gid; "" leaves the
	// daemon's own group.
	Group string
	// Backend answers the requests. Required.
	Backend Backend
	// Logger for connection-level events; nil discards them.
	Logger *slog.Logger
	// MaxConns bounds concurrent connections; more are told so and closed.
	MaxConns int
	// MaxLineBytes bounds one request line including its newline. A longer
	// line gets an error reply and the connection is closed, since the
	// stream cannot be resynchronised.
	MaxLineBytes int
	// RequestTimeout bounds every request except lookup and ping, whose
	// own arguments bound it (see MaxPingDurationMS).
	RequestTimeout time.Duration
	// LookupTimeout bounds lookup, and the lookup a ping by address starts
	// with.
	LookupTimeout time.Duration
	// IdleTimeout closes connections that send nothing for this long.
	IdleTimeout time.Duration
}

// Server serves the admin API on a Unix socket. Create it with Listen and
// stop it with Close.
type Server struct {
	cfg    ServerConfig
	log    *slog.Logger
	ln     *net.UnixListener
	sockFI os.FileInfo // the socket file we created, so Close removes only ours

	ctx    context.Context // cancelled by Close; parent of every request
	cancel context.CancelFunc
	sem    chan struct{} // one token per open connection

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool

	wg        sync.WaitGroup // the accept loop and every connection handler
	closeOnce sync.Once
	closeErr  error
}

// Listen creates the socket at cfg.Path and starts serving. If a socket file
// already exists there, Listen connects to it: when a process answers it
// fails with ErrInUse; when nobody listens (a stale file left by a crash) it
// replaces it. It never removes a file that is not a socket.
//
// The socket is created in a private directory, given SocketMode and its
// group, and only then linked into place, so it is never reachable with
// looser permissions.
func Listen(cfg ServerConfig) (*Server, error) {
	if cfg.Backend == nil {
		return nil, errors.New("admin: no backend")
	}
	if cfg.Path == "" {
		return nil, errors.New("admin: no socket path")
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	if cfg.MaxLineBytes <= 0 {
		cfg.MaxLineBytes = DefaultMaxLineBytes
	}
	if cfg.MaxLineBytes < 64 {
		cfg.MaxLineBytes = 64
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.LookupTimeout <= 0 {
		cfg.LookupTimeout = DefaultLookupTimeout
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	gid, err := ResolveGroup(cfg.Group)
	if err != nil {
		return nil, fmt.Errorf("admin socket %s: %w", cfg.Path, err)
	}
	ln, fi, err := listenUnix(cfg.Path, gid)
	if err != nil {
		return nil, fmt.Errorf("admin socket %s: %w", cfg.Path, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		cfg:    cfg,
		log:    log.With("socket", cfg.Path),
		ln:     ln,
		sockFI: fi,
		ctx:    ctx,
		cancel: cancel,
		sem:    make(chan struct{}, cfg.MaxConns),
		conns:  make(map[net.Conn]struct{}),
	}
	s.wg.Add(1)
	go s.acceptLoop()
	return s, nil
}

// Path returns the socket path.
func (s *Server) Path() string { return s.cfg.Path }

// Close stops accepting, closes every connection, cancels requests in
// flight, waits for all of the server's goroutines to end and removes the
// socket file if it is still ours. It is safe to call more than once.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.cancel()
		s.closeErr = s.ln.Close()
		s.mu.Lock()
		s.closed = true
		for c := range s.conns {
			_ = c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
		if fi, err := os.Lstat(s.cfg.Path); err == nil && os.SameFile(fi, s.sockFI) {
			if err := os.Remove(s.cfg.Path); err != nil && s.closeErr == nil {
				s.closeErr = err
			}
		}
	})
	return s.closeErr
}

// ResolveGroup turns an admin.group value (a name or a numeric gid) into a
// gid; "" gives -1, which leaves the daemon's own group. The daemon calls it
// before touching the system, so a missing group is a configuration error.
func ResolveGroup(g string) (int, error) {
	if g == "" {
		return -1, nil
	}
	if n, err := strconv.Atoi(g); err == nil {
		if n < 0 {
			return -1, fmt.Errorf("bad group id %d", n)
		}
		return n, nil
	}
	grp, err := user.LookupGroup(g)
	if err != nil {
		return -1, fmt.Errorf("group %q: %w", g, err)
	}
	n, err := strconv.Atoi(grp.Gid)
	if err != nil {
		return -1, fmt.Errorf("group %q has non-numeric gid %q", g, grp.Gid)
	}
	return n, nil
}

// listenUnix binds a socket in a fresh private directory beside path, sets
// its mode and group, and hard-links it to path. link(2) fails rather than
// replacing an existing file, so two daemons starting at once cannot both
// win.
func listenUnix(path string, gid int) (*net.UnixListener, os.FileInfo, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, err
	}
	tmpDir, err := os.MkdirTemp(dir, ".a")
	if err != nil {
		return nil, nil, err
	}
	defer os.RemoveAll(tmpDir)
	tmp := filepath.Join(tmpDir, "s")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, nil, err
	}
	ln.SetUnlinkOnClose(false)
	fail := func(err error) (*net.UnixListener, os.FileInfo, error) {
		_ = ln.Close()
		return nil, nil, err
	}
	if err := os.Chmod(tmp, SocketMode); err != nil {
		return fail(err)
	}
	if gid >= 0 {
		if err := os.Chown(tmp, -1, gid); err != nil {
			return fail(fmt.Errorf("setting group %d: %w", gid, err))
		}
	}
	for attempt := 0; ; attempt++ {
		err := os.Link(tmp, path)
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrExist) || attempt > 0 {
			return fail(err)
		}
		if err := removeStale(path); err != nil {
			return fail(err)
		}
	}
	fi, err := os.Lstat(path)
	if err != nil {
		return fail(err)
	}
	return ln, fi, nil
}

// removeStale removes path if it is a socket nobody listens on.
func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("%s exists and is not a socket; not replacing it", path)
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		_ = c.Close()
		return ErrInUse
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("checking existing socket: %w", err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing stale socket: %w", err)
	}
	return nil
}

func (s *Server) acceptLoop() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if s.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// Typically EMFILE: wait a little instead of spinning.
			s.log.Warn("admin accept failed", "err", err)
			select {
			case <-time.After(100 * time.Millisecond):
			case <-s.ctx.Done():
				return
			}
			continue
		}
		select {
		case s.sem <- struct{}{}:
		default:
			s.log.Info("admin connection refused: too many connections", "max", s.cfg.MaxConns)
			_ = c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
			_, _ = c.Write(encodeReply(errorReply(fmt.Sprintf("too many admin connections (limit %d)", s.cfg.MaxConns))))
			_ = c.Close()
			continue
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			_ = c.Close()
			<-s.sem
			return
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.handle(c)
	}
}

func (s *Server) handle(c net.Conn) {
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		_ = c.Close()
		<-s.sem
		s.wg.Done()
	}()
	r := bufio.NewReaderSize(c, s.cfg.MaxLineBytes)
	for {
		if err := c.SetReadDeadline(time.Now().Add(s.cfg.IdleTimeout)); err != nil {
			return
		}
		line, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			s.writeReply(c, errorReply(fmt.Sprintf("request line longer than %d bytes; closing connection", s.cfg.MaxLineBytes)))
			return
		}
		eof := err != nil
		if err != nil && !(errors.Is(err, io.EOF) && len(line) > 0) {
			return
		}
		if line = bytes.TrimSpace(line); len(line) > 0 {
			if !s.writeReply(c, s.dispatch(line)) {
				return
			}
		}
		if eof {
			return
		}
	}
}

func (s *Server) writeReply(c net.Conn, r Reply) bool {
	if err := c.SetWriteDeadline(time.Now().Add(s.cfg.RequestTimeout)); err != nil {
		return false
	}
	_, err := c.Write(encodeReply(r))
	return err == nil
}

func errorReply(msg string) Reply { return Reply{Status: StatusError, Error: msg} }

func encodeReply(r Reply) []byte {
	b, err := json.Marshal(r)
	if err != nil {
		// Only a response that cannot be encoded gets here.
		b, _ = json.Marshal(errorReply("encoding response: " + err.Error()))
	}
	return append(b, '\n')
}

// dispatch answers one request line.
func (s *Server) dispatch(line []byte) Reply {
	var req Request
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return errorReply("malformed request: " + err.Error())
	}
	if _, err := dec.Token(); err != io.EOF {
		return errorReply("malformed request: data after the JSON object")
	}
	if req.Request == "" {
		return errorReply(`malformed request: missing "request" field`)
	}
	h, ok := handlers[req.Request]
	if !ok {
		return errorReply(fmt.Sprintf("unknown request %q (known: %s)", req.Request, knownRequests))
	}
	ctx := s.ctx
	if !h.selfTimed {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.cfg.RequestTimeout)
		defer cancel()
	}
	resp, err := h.run(s, ctx, req.Arguments)
	if err != nil {
		switch {
		case s.ctx.Err() != nil:
			err = errors.New("server shutting down")
		case errors.Is(err, context.DeadlineExceeded):
			err = fmt.Errorf("timed out: %w", err)
		}
		s.log.Debug("admin request failed", "request", req.Request, "err", err)
		return errorReply(req.Request + ": " + err.Error())
	}
	b, err := json.Marshal(resp)
	if err != nil {
		return errorReply(req.Request + ": encoding response: " + err.Error())
	}
	return Reply{Status: StatusSuccess, Response: b}
}
