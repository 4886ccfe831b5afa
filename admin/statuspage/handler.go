package statuspage

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/pineconed/pineconed/admin"
)

//go:embed assets/index.html
var indexHTML []byte

//go:embed assets/status.js
var statusJS []byte

//go:embed assets/status.css
var statusCSS []byte

// backendTimeout bounds the admin Backend calls of one /api/status request.
const backendTimeout = 5 * time.Second

// MaxInFlight bounds the /api/status requests served at once; more get
// 503 at once rather than queueing on the backend.
const MaxInFlight = 8

// CSP is the Content-Security-Policy of every response: nothing but the
// page's own script, style and JSON, no framing, no forms.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Handler serves the page at /, its script and style, and /api/status: a
// JSON object whose members are named after admin.ReadRequests, each
// holding exactly that request's admin API response (see admin/API.md),
// plus "rates" from h. Mount it at "/" beside /metrics.
func Handler(b admin.Backend, h *History) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /{$}", asset(indexHTML, "text/html; charset=utf-8"))
	mux.Handle("GET /status.js", asset(statusJS, "text/javascript; charset=utf-8"))
	mux.Handle("GET /status.css", asset(statusCSS, "text/css; charset=utf-8"))
	slots := make(chan struct{}, MaxInFlight)
	mux.HandleFunc("GET /api/status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		select {
		case slots <- struct{}{}:
			defer func() { <-slots }()
		default:
			w.WriteHeader(http.StatusServiceUnavailable)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": "too many status requests at once"})
			return
		}
		st, err := collect(r.Context(), b, h)
		if err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
			return
		}
		_ = json.NewEncoder(w).Encode(st)
	})
	return guard(mux)
}

func asset(body []byte, ctype string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", ctype)
		_, _ = w.Write(body)
	})
}

// guard sets the safety headers on every response and refuses hosts that
// are neither IP literals nor localhost.
func guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", CSP)
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Cross-Origin-Opener-Policy", "same-origin")
		hd.Set("Cross-Origin-Resource-Policy", "same-origin")
		hd.Set("Cache-Control", "no-store")
		if !allowedHost(r.Host) {
			http.Error(w, "status page: use an IP address or localhost in the URL", http.StatusMisdirectedRequest)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// allowedHost reports whether a Host header names an IP address or
// localhost, with or without a port.
func allowedHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	_, err := netip.ParseAddr(host)
	return err == nil
}

// collect asks the admin API's read-only requests what they would answer.
func collect(ctx context.Context, b admin.Backend, h *History) (map[string]any, error) {
	ctx, cancel := context.WithTimeout(ctx, backendTimeout)
	defer cancel()
	st := make(map[string]any, len(admin.ReadRequests)+1)
	for _, req := range admin.ReadRequests {
		v, err := admin.Read(ctx, b, req)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", req, err)
		}
		st[req] = v
	}
	st["rates"] = h.Rates()
	return st, nil
}
