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

	"github.com/pineconed/pineconed/internal/accept"
	"golang.org/x/sys/unix"
)

// Defaults for zero ServerConfig fields.
const (
	DefaultMaxConns       = 32
	DefaultMaxLineBytes   = 64 << 10
	DefaultRequestTimeout = 10 * time.Second
	// DefaultFirstRequestTimeout is how long a new connection has to send
	// its first complete request line. Every client we ship sends at
	// once; a longer wait only lets idle connections sit on slots.
	DefaultFirstRequestTimeout = 5 * time.Second
	// DefaultIdleTimeout bounds the wait for each later request: longer
	// than the longest ping interval, since `pineconectl ping` sends one
	// probe per request on one connection.
	DefaultIdleTimeout = time.Duration(MaxPingIntervalMS)*time.Millisecond + 5*time.Second
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
	// MaxConns bounds concurrent connections. A new connection beyond it
	// takes the slot of the connection that has waited longest without a
	// request in progress; only when every slot runs a request is it told
	// so and closed. So idle clients cannot lock an operator out.
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
	// FirstRequestTimeout closes a connection that has not sent a complete
	// request line this long after connecting.
	FirstRequestTimeout time.Duration
	// IdleTimeout closes a connection that has not sent its next complete
	// request line this long after its last reply.
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
	// slow bounds lookup and ping requests in flight (they may take
	// LookupTimeout), so that they can never fill every slot.
	slow chan struct{}

	mu     sync.Mutex
	conns  map[net.Conn]*connState // every open connection; len ≤ MaxConns
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
	if cfg.FirstRequestTimeout <= 0 {
		cfg.FirstRequestTimeout = DefaultFirstRequestTimeout
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
		slow:   make(chan struct{}, max(1, cfg.MaxConns/4)),
		conns:  make(map[net.Conn]*connState),
	}
	s.wg.Add(1)
	go s.serve()
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

// connState is what the server knows of one connection: whether it runs a
// request, and since when it has been waiting for one.
type connState struct {
	busy      bool
	idleSince time.Time
}

// serve runs the socket's accept loop (internal/accept) until Close, with
// admit as its admission policy.
func (s *Server) serve() {
	defer s.wg.Done()
	accept.Serve(s.ctx, s.ln, accept.Config{
		Admit:  s.admit,
		Spawn:  s.spawn,
		Refuse: s.refuse,
		Logger: s.log,
		Serve:  func(c net.Conn, _ func()) { s.handle(c) },
	})
}

// spawn runs f on a goroutine Close waits for, unless Close has begun.
func (s *Server) spawn(f func()) bool {
	return accept.Owner{Mu: &s.mu, Closed: &s.closed, WG: &s.wg}.Spawn(f)
}

// admit gives c a slot, taking it from the longest-waiting idle connection
// when all are taken; with every slot running a request it refuses c. The
// slot is held for the connection's whole life: release, called when its
// handler returns, gives it back unless c was evicted meanwhile.
func (s *Server) admit(c net.Conn) (release func(), ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.conns) >= s.cfg.MaxConns {
		var victim net.Conn
		var since time.Time
		for vc, st := range s.conns {
			if !st.busy && (victim == nil || st.idleSince.Before(since)) {
				victim, since = vc, st.idleSince
			}
		}
		if victim == nil {
			return nil, false
		}
		// Its handler sees the closed connection and ends; the slot is
		// free from now on.
		delete(s.conns, victim)
		_ = victim.Close()
		s.log.Debug("admin connection dropped for a new one: idle with every slot taken", "idle", time.Since(since).Round(time.Millisecond))
	}
	st := &connState{idleSince: time.Now()}
	s.conns[c] = st
	return func() {
		s.mu.Lock()
		if s.conns[c] == st {
			delete(s.conns, c)
		}
		s.mu.Unlock()
	}, true
}

// refuse tells a connection refused by admit why, before it is closed.
func (s *Server) refuse(c net.Conn) {
	s.log.Debug("admin connection refused: every slot runs a request", "max", s.cfg.MaxConns)
	_ = c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	_, _ = c.Write(encodeReply(errorReply(fmt.Sprintf("too many admin requests in progress (limit %d connections)", s.cfg.MaxConns))))
}

// setBusy marks st as running a request or waiting for one.
func (s *Server) setBusy(st *connState, busy bool) {
	s.mu.Lock()
	st.busy = busy
	if !busy {
		st.idleSince = time.Now()
	}
	s.mu.Unlock()
}

// handle serves the requests of one admitted connection until it ends,
// fails a deadline or is evicted.
func (s *Server) handle(c net.Conn) {
	defer c.Close()
	s.mu.Lock()
	st := s.conns[c]
	s.mu.Unlock()
	if st == nil {
		// Evicted between admission and now.
		return
	}
	rr := &resumeReader{c: c}
	r := bufio.NewReaderSize(rr, s.cfg.MaxLineBytes)
	wait := s.cfg.FirstRequestTimeout
	for {
		// One deadline for the whole line: a client trickling bytes is
		// dropped as surely as a silent one.
		if err := c.SetReadDeadline(time.Now().Add(wait)); err != nil {
			return
		}
		wait = s.cfg.IdleTimeout
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
			s.setBusy(st, true)
			reply := s.dispatchWatching(c, rr, r, line, eof)
			ok := s.writeReply(c, reply)
			s.setBusy(st, false)
			if !ok {
				return
			}
		}
		if eof {
			return
		}
	}
}

// dispatchWatching runs dispatch with a context that ends when the client
// hangs up, so that an abandoned lookup or ping stops at once instead of
// holding its slot until its timeout. The watch reads one byte in the
// background; a byte that arrives (a pipelined request) is handed back to
// the line reader through rr. With a pipelined request already buffered,
// or the client's end of the stream already seen, there is nothing to
// watch.
func (s *Server) dispatchWatching(c net.Conn, rr *resumeReader, r *bufio.Reader, line []byte, eof bool) Reply {
	if eof || r.Buffered() > 0 || len(rr.pending) > 0 {
		return s.dispatch(s.ctx, line)
	}
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	if err := c.SetReadDeadline(time.Time{}); err != nil {
		return s.dispatch(ctx, line)
	}
	var (
		b    [1]byte
		n    int
		done = make(chan struct{})
	)
	go func() {
		defer close(done)
		var err error
		n, err = c.Read(b[:])
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) && peerGone(c) {
			cancel()
		}
	}()
	reply := s.dispatch(ctx, line)
	// Unblock the watch and wait for it: no goroutine outlives the request.
	_ = c.SetReadDeadline(time.Unix(1, 0))
	<-done
	if n > 0 {
		rr.pending = append(rr.pending[:0], b[:n]...)
	}
	return reply
}

// peerGone tells a client that closed its socket from one that only shut
// down its sending side (shutdown(SHUT_WR), as `socat` does at the end of
// its input) and still waits for the reply: only the first makes the
// kernel report POLLHUP on our end.
func peerGone(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return true
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return true
	}
	gone := true
	_ = raw.Control(func(fd uintptr) {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN | unix.POLLRDHUP}}
		if n, err := unix.Poll(fds, 0); err == nil && n == 1 {
			gone = fds[0].Revents&(unix.POLLHUP|unix.POLLERR) != 0
		}
	})
	return gone
}

// resumeReader reads from the connection after handing out the byte the
// client-gone watch of dispatchWatching read, if any.
type resumeReader struct {
	c       net.Conn
	pending []byte
}

func (rr *resumeReader) Read(p []byte) (int, error) {
	if len(rr.pending) > 0 {
		n := copy(p, rr.pending)
		rr.pending = rr.pending[n:]
		return n, nil
	}
	return rr.c.Read(p)
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

// dispatch answers one request line; ctx ends when the server closes or
// the client hangs up.
func (s *Server) dispatch(ctx context.Context, line []byte) Reply {
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
	if h.selfTimed {
		select {
		case s.slow <- struct{}{}:
			defer func() { <-s.slow }()
		default:
			return errorReply(fmt.Sprintf("%s: too many lookups and pings in progress (limit %d); try again shortly", req.Request, cap(s.slow)))
		}
	} else {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.cfg.RequestTimeout)
		defer cancel()
	}
	resp, err := h.run(s, ctx, req.Arguments)
	if err != nil {
		switch {
		case s.ctx.Err() != nil:
			err = errors.New("server shutting down")
		case ctx.Err() == context.Canceled:
			err = errors.New("cancelled: the client hung up")
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
