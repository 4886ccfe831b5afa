package link

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/pineconed/pineconed/internal/testhelp"
	"github.com/pineconed/pineconed/internal/testhelp/testframe"
	"github.com/pineconed/pineconed/overlay/wire"
)

// wsServer serves WebSocketHandler on path and runs each accepted stream as
// a link on s after a handshake with key B. It reports the Origin header of
// each upgrade.
func wsServer(t *testing.T, path string, tlsOn bool, s *fakeSwitch) (*httptest.Server, <-chan string) {
	t.Helper()
	origins := make(chan string, 10)
	h := WebSocketHandler(path, func(nc net.Conn, r *http.Request) {
		origins <- r.Header.Get("Origin")
		k, err := Handshake(context.Background(), nc, privB)
		if err != nil {
			nc.Close()
			return
		}
		l := New(nc, k, Config{})
		l.Start(5, s)
		<-l.Done()
	})
	return httpServer(t, h, tlsOn), origins
}

// httpServer serves h over loopback, with TLS when tlsOn, until the test
// ends.
func httpServer(t *testing.T, h http.Handler, tlsOn bool) *httptest.Server {
	t.Helper()
	var srv *httptest.Server
	if tlsOn {
		srv = httptest.NewTLSServer(h)
	} else {
		srv = httptest.NewServer(h)
	}
	t.Cleanup(srv.Close)
	return srv
}

func TestWebSocketLink(t *testing.T) {
	for _, tlsOn := range []bool{false, true} {
		name := map[bool]string{false: "ws", true: "wss"}[tlsOn]
		t.Run(name, func(t *testing.T) {
			testhelp.CheckNoLeak(t)
			s := newFakeSwitch()
			srv, origins := wsServer(t, "/pinecone", tlsOn, s)
			url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/pinecone"
			var tc *tls.Config
			if tlsOn {
				pool := x509.NewCertPool()
				pool.AddCert(srv.Certificate())
				tc = &tls.Config{RootCAs: pool}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			nc, err := DialWebSocket(ctx, url, tc, 0)
			if err != nil {
				t.Fatal(err)
			}
			k, err := Handshake(ctx, nc, privA)
			if err != nil || k != keyB {
				t.Fatalf("handshake: %s %v", k, err)
			}
			if o := <-origins; o != "" {
				t.Fatalf("client sent Origin %q", o)
			}
			cs := newFakeSwitch()
			l := New(nc, k, Config{})
			l.Start(1, cs)
			for i := range 20 {
				l.Send(testframe.Of(wire.TypeTraffic, 100+i, byte(i)), false)
			}
			testhelp.WaitFor(t, "frames over WebSocket", 5*time.Second, func() bool { return len(nonKeepalive(s.got(5))) == 20 })
			for i, f := range nonKeepalive(s.got(5)) {
				if !bytes.Equal(f, testframe.Of(wire.TypeTraffic, 100+i, byte(i))) {
					t.Fatalf("frame %d differs", i)
				}
			}
			l.Close(nil)
			<-l.Done()
			testhelp.WaitFor(t, "server side detach", 5*time.Second, func() bool { return len(s.detaches(5)) == 1 })
		})
	}
}

// Message boundaries mean nothing: a stock peer's hello and frames split
// across messages, and several frames in one message, read as one stream.
func TestWebSocketMessagesAreAStream(t *testing.T) {
	testhelp.CheckNoLeak(t)
	s := newFakeSwitch()
	srv, _ := wsServer(t, "/", false, s)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	hello := wire.NewHello(privA)
	f1, f2, f3 := testframe.Of(wire.TypeTraffic, 300, 1), testframe.Of(wire.TypeBootstrap, 50, 2), testframe.Of(wire.TypeTraffic, 70, 3)
	stream := append(append(append(hello[:], f1...), f2...), f3...)
	// Cut the stream at awkward places: inside the hello, inside a
	// header, and one message holding the end of f1 and all of f2.
	cuts := []int{0, 30, wire.HelloSize + 4, wire.HelloSize + 280, wire.HelloSize + 300 + 50 + 5, len(stream)}
	for i := 1; i < len(cuts); i++ {
		if err := ws.Write(ctx, websocket.MessageBinary, stream[cuts[i-1]:cuts[i]]); err != nil {
			t.Fatal(err)
		}
	}
	testhelp.WaitFor(t, "three frames", 5*time.Second, func() bool { return len(s.got(5)) == 3 })
	got := s.got(5)
	for i, want := range [][]byte{f1, f2, f3} {
		if !bytes.Equal(got[i], want) {
			t.Fatalf("frame %d differs", i)
		}
	}
	ws.Close(websocket.StatusNormalClosure, "")
	testhelp.WaitFor(t, "detach", 5*time.Second, func() bool { return len(s.detaches(5)) == 1 })
}

func TestWebSocketWrongPath(t *testing.T) {
	srv, _ := wsServer(t, "/pinecone", false, newFakeSwitch())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := DialWebSocket(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/other", nil, 0)
	if err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("dial to the wrong path: %v", err)
	}
}
