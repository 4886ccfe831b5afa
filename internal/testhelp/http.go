package testhelp

import (
	"io"
	"net/http"
	"testing"
)

// Fetch makes one HTTP request with c and returns the response with its
// whole body, read and closed, failing the test when the request cannot
// be made or read. prepare, when not nil, edits the request before it is
// sent (a test of Host checks sets req.Host).
func Fetch(t testing.TB, c *http.Client, method, url string, prepare func(req *http.Request)) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if prepare != nil {
		prepare(req)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}
