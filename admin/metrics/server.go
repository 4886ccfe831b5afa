package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Bounds on the metrics HTTP server.
const (
	MaxScrapesInFlight = 4
	ScrapeTimeout      = 10 * time.Second
)

// Server serves /metrics over HTTP, and whatever Page holds at every other
// path (the status page). The zero address turns it off.
type Server struct {
	addr string
	m    *Metrics
	log  *slog.Logger
	// Page, when set before Start, serves every path but /metrics.
	Page http.Handler

	mu   sync.Mutex
	srv  *http.Server
	ln   net.Listener
	done chan struct{}
}

// NewServer returns a server for m on addr (host:port); "" means no
// metrics endpoint. logger may be nil.
func NewServer(addr string, m *Metrics, logger *slog.Logger) *Server {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Server{addr: addr, m: m, log: logger}
}

// Handler returns the /metrics handler on its own, for embedding elsewhere.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: MaxScrapesInFlight,
		Timeout:             ScrapeTimeout,
	})
}

// Start listens and serves in the background. It returns once the listener
// is open, so listen errors (address in use) come back here.
func (s *Server) Start() error {
	if s.addr == "" {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		return errors.New("metrics server already started")
	}
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("metrics listen %s: %w", s.addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.m.Handler())
	if s.Page != nil {
		mux.Handle("/", s.Page)
	}
	s.srv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      ScrapeTimeout + 5*time.Second,
		IdleTimeout:       time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	s.ln = ln
	s.done = make(chan struct{})
	go func(srv *http.Server, done chan struct{}) {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("metrics server stopped", "err", err)
		}
	}(s.srv, s.done)
	s.log.Info("serving metrics", "addr", ln.Addr().String())
	return nil
}

// Addr returns the address actually listened on (useful with port 0), or
// "" when not started.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Close stops the server, drops open connections and waits for the serving
// goroutine.
func (s *Server) Close() error {
	s.mu.Lock()
	srv, done := s.srv, s.done
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	err := srv.Shutdown(ctx)
	if err != nil {
		err = srv.Close()
	}
	<-done
	return err
}
