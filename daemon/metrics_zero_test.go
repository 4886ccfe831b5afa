package daemon

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pineconed/pineconed/admin"
	"github.com/pineconed/pineconed/internal/testhelp"
)

// A node with no peers exports pineconed_peers for every transport and a
// drop counter for every known reason, at zero, so that alerts such as
// `pineconed_peers == 0` can fire.
func TestMetricsZeroSeries(t *testing.T) {
	a := startNode(t, "")
	text := scrapeMetrics(t, a.d)
	for _, want := range []string{
		`pineconed_peers{transport="tcp"} 0`,
		`pineconed_peers{transport="ws"} 0`,
		`pineconed_peers{transport="wss"} 0`,
		`pineconed_peers{transport="multicast"} 0`,
		`pineconed_drops_total{reason="no_route"} 0`,
		`pineconed_drops_total{reason="link_queue_full"} 0`,
		`pineconed_drops_total{reason="session_replay"} 0`,
		`pineconed_drops_total{reason="lookup_unreachable"} 0`,
		`pineconed_drops_total{reason="daemon_to_self"} 0`,
		`pineconed_drops_total{reason="tun_queue_full"} 0`,
		`pineconed_static_peers{state="waiting"} 0`,
	} {
		if !strings.Contains(text, want+"\n") {
			t.Errorf("no %s in the scrape of a node without peers", want)
		}
	}
}

// A static peer that cannot be reached is listed by getPeers with its
// state, last error and next attempt, and counted in the stats.
func TestStaticPeerDownListed(t *testing.T) {
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := held.Addr().String()
	held.Close() // nobody listens there now: connection refused
	a := startNode(t, fmt.Sprintf("static = [%q]", "tcp://"+dead))
	var down admin.StaticPeer
	testhelp.WaitFor(t, "the static peer to wait after a failure", 10*time.Second, func() bool {
		raw, err := a.client.Do(t.Context(), admin.ReqGetPeers, nil)
		if err != nil {
			return false
		}
		var r admin.PeersResponse
		if json.Unmarshal(raw, &r) != nil || len(r.StaticDown) != 1 {
			return false
		}
		down = r.StaticDown[0]
		return down.State == admin.StaticStateWaiting
	})
	if down.URI != "tcp://"+dead || !strings.Contains(down.LastError, "refused") || down.Failures < 1 || down.NextAttemptSeconds < 1 {
		t.Fatalf("static_down entry %+v", down)
	}
	st, err := a.client.Stats(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if st.StaticPeers[admin.StaticStateConnected] != 0 || st.StaticPeers[admin.StaticStateDialling]+st.StaticPeers[admin.StaticStateWaiting] != 1 {
		t.Fatalf("static_peers %v", st.StaticPeers)
	}
}

// scrapeMetrics fetches the daemon's /metrics page as Prometheus would.
func scrapeMetrics(t *testing.T, d *Daemon) string {
	t.Helper()
	_, body := testhelp.Fetch(t, http.DefaultClient, http.MethodGet, "http://"+d.MetricsAddr()+"/metrics", nil)
	return string(body)
}
