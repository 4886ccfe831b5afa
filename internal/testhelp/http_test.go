package testhelp

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// Fetch sends the method, applies prepare, and returns the whole body.
func TestFetch(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTeapot)
		io.WriteString(w, r.Method+" "+r.Host+" "+r.URL.Path)
	}))
	defer srv.Close()
	resp, body := Fetch(t, srv.Client(), http.MethodPost, srv.URL+"/x", func(req *http.Request) { req.Host = "example.test" })
	if resp.StatusCode != http.StatusTeapot || string(body) != "POST example.test /x" {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
}
