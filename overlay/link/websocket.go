package link

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/coder/websocket"
)

// WebSocket carriage (docs/protocol.md §1.1). A peering over WebSocket is the same
// byte stream as over TCP, carried in binary messages. Stock nodes write
// one message per Write call and read the messages as one continuous
// stream, ignoring boundaries; websocket.NetConn behaves exactly so (each
// Write is one binary message, Read runs across message boundaries), which
// lets the batching writer put many frames in one message and lets a frame
// span messages a stock peer wrote.

// DialWebSocket opens a WebSocket to url (ws:// or wss://) and returns it
// as a stream. It sends no Origin header (a stock server's default upgrader
// refuses a cross-origin one) and asks for no subprotocol. tlsConf is used
// for wss:// (nil means the system roots); ctx bounds the dial and the HTTP
// upgrade only, not the connection's life. userTimeout is the TCP socket's
// TCP_USER_TIMEOUT (see ControlTCP; 0 means the default).
func DialWebSocket(ctx context.Context, url string, tlsConf *tls.Config, userTimeout time.Duration) (net.Conn, error) {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, Control: ControlTCP(userTimeout), KeepAliveConfig: TCPKeepAlive()}).DialContext,
		TLSClientConfig:     tlsConf,
		TLSHandshakeTimeout: 10 * time.Second,
		ForceAttemptHTTP2:   false,
	}
	// The transport is only used for this upgrade; the WebSocket takes the
	// connection over, so nothing idle is left behind in it.
	defer tr.CloseIdleConnections()
	ws, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{
		HTTPClient: &http.Client{Transport: tr},
	})
	if err != nil {
		return nil, fmt.Errorf("websocket dial %s: %w", url, err)
	}
	return websocket.NetConn(context.Background(), ws, websocket.MessageBinary), nil
}

// WebSocketHandler upgrades requests for exactly path to WebSocket and
// passes each connection, as a stream, to serve, which runs for the life of
// the peering (returning from it is fine too: the connection stays with
// whoever holds it). Other paths get 404. No subprotocol is negotiated, and
// as with a stock server a cross-origin Origin header is refused; stock
// clients send none. The reference answers on any path; we answer only on
// the configured one, so a reverse proxy can share the port.
func WebSocketHandler(path string, serve func(nc net.Conn, r *http.Request)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != path {
			http.NotFound(w, r)
			return
		}
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			// Accept has already written the HTTP error response.
			return
		}
		serve(websocket.NetConn(context.Background(), ws, websocket.MessageBinary), r)
	})
}
