package daemon

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// A node with no peers exports pineconed_peers for every transport and a
// drop counter for every known reason, at zero, so that alerts such as
// `pineconed_peers == 0` can fire.
func TestMetricsZeroSeries(t *testing.T) {
	a := startNode(t, "")
	resp, err := http.Get("http://" + a.d.MetricsAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	text := string(body)
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
	} {
		if !strings.Contains(text, want+"\n") {
			t.Errorf("no %s in the scrape of a node without peers", want)
		}
	}
}
