// Package statuspage serves pineconed's read-only status page beside
// /metrics: a single embedded HTML page with a little JavaScript that polls
// /api/status, a JSON document made of the admin API's own responses
// (getSelf, getPeers, getTree, getSnake, getSessions, getStats, read
// through the same admin.Backend the Unix socket serves) plus the traffic
// rates kept by History.
//
// It sits outside the data path: it only reads. The page has no forms and
// the handler answers GET and HEAD only; every response carries a strict
// Content-Security-Policy (scripts, styles and fetches from the page's own
// origin, nothing else) and no asset comes from elsewhere, so the page works
// offline. Requests naming a Host other than an IP address or localhost are
// refused, so a web page elsewhere cannot read the node's status through
// DNS rebinding while an operator's browser is open. At most MaxInFlight
// /api/status requests run at once; more are refused with 503.
package statuspage
