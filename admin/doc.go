// Package admin is pineconed's control API: a server speaking
// line-delimited JSON on a Unix socket, a Client for it, the Backend
// interface the daemon implements, and the Stats snapshot the metrics are
// built from (package admin/metrics turns it into Prometheus metrics).
//
// Every request is one line, {"request": "getPeers", "arguments": {…}},
// answered by one line, {"status": "success", "response": {…}} or
// {"status": "error", "error": "…"}. A connection carries any number of
// requests, answered in order. Malformed lines, unknown requests and bad or
// unknown arguments get an error reply and the connection stays open; only
// a line longer than the limit is answered and then closed. The requests,
// their arguments and every response field are listed in API.md beside
// this file, and pinned by the golden files in testdata.
package admin
