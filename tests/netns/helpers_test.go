package netns

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// helperEnv names the helper mode when the test binary runs as a helper
// inside a namespace (ip netns exec NS <test binary> args…).
const helperEnv = "PCD_NETNS_HELPER"

// runHelper runs one helper mode and returns the exit code.
func runHelper(mode string, args []string) int {
	var err error
	switch mode {
	case "udprecv":
		err = helperUDPRecv(args)
	case "udpsend":
		err = helperUDPSend(args)
	case "httpget":
		err = helperHTTPGet(args)
	case "tcpsink":
		err = helperTCPSink(args)
	case "tcpsource":
		err = helperTCPSource(args)
	case "tcpproxy":
		err = helperTCPProxy(args)
	default:
		err = fmt.Errorf("unknown helper mode %q", mode)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "helper %s: %v\n", mode, err)
		return 1
	}
	return 0
}

// helperUDPRecv binds a UDP socket, prints "ready", then prints every
// datagram it receives on a line of its own until it has -n distinct ones
// or -timeout passes (an error: some were missing).
func helperUDPRecv(args []string) error {
	fs := flag.NewFlagSet("udprecv", flag.ContinueOnError)
	listen := fs.String("listen", "", "address:port to bind")
	n := fs.Int("n", 1, "datagrams to wait for")
	timeout := fs.Duration("timeout", 10*time.Second, "give up after")
	if err := fs.Parse(args); err != nil {
		return err
	}
	pc, err := net.ListenPacket("udp6", *listen)
	if err != nil {
		return err
	}
	defer pc.Close()
	fmt.Println("ready")
	if err := pc.SetReadDeadline(time.Now().Add(*timeout)); err != nil {
		return err
	}
	seen := map[string]bool{}
	buf := make([]byte, 65536)
	for len(seen) < *n {
		m, from, err := pc.ReadFrom(buf)
		if err != nil {
			return fmt.Errorf("got %d of %d datagrams: %w", len(seen), *n, err)
		}
		seen[string(buf[:m])] = true
		fmt.Printf("%s from %s\n", buf[:m], from)
	}
	return nil
}

// helperUDPSend sends -n datagrams "<prefix>-<i>" to -to back to back,
// from -from if given.
func helperUDPSend(args []string) error {
	fs := flag.NewFlagSet("udpsend", flag.ContinueOnError)
	to := fs.String("to", "", "destination address:port")
	n := fs.Int("n", 1, "datagrams to send")
	prefix := fs.String("prefix", "pcd", "payload prefix")
	from := fs.String("from", "", "source address to bind (default: any)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	d := net.Dialer{}
	if *from != "" {
		d.LocalAddr = &net.UDPAddr{IP: net.ParseIP(*from)}
	}
	c, err := d.Dial("udp6", *to)
	if err != nil {
		return err
	}
	defer c.Close()
	for i := range *n {
		if _, err := c.Write([]byte(*prefix + "-" + strconv.Itoa(i))); err != nil {
			return fmt.Errorf("datagram %d: %w", i, err)
		}
	}
	return nil
}

// helperHTTPGet prints the body of a GET; a status other than 200 is an
// error.
func helperHTTPGet(args []string) error {
	if len(args) != 1 {
		return errors.New("usage: httpget URL")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, args[0], nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", args[0], resp.Status)
	}
	_, err = io.Copy(os.Stdout, resp.Body)
	return err
}

// helperTCPSink accepts one connection, reads it to the end and prints
// "received N sha256 H".
func helperTCPSink(args []string) error {
	fs := flag.NewFlagSet("tcpsink", flag.ContinueOnError)
	listen := fs.String("listen", "", "address:port to listen on")
	timeout := fs.Duration("timeout", 60*time.Second, "give up after")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ln, err := net.Listen("tcp6", *listen)
	if err != nil {
		return err
	}
	defer ln.Close()
	fmt.Println("ready")
	if err := ln.(*net.TCPListener).SetDeadline(time.Now().Add(*timeout)); err != nil {
		return err
	}
	c, err := ln.Accept()
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(*timeout)); err != nil {
		return err
	}
	h := sha256.New()
	n, err := io.Copy(h, c)
	if err != nil {
		return fmt.Errorf("after %d bytes: %w", n, err)
	}
	fmt.Printf("received %d sha256 %s\n", n, hex.EncodeToString(h.Sum(nil)))
	return nil
}

// helperTCPSource connects, writes -bytes of seeded pseudo-random data in
// writes of varied sizes (no faster than -rate bytes/s when set), closes,
// and prints "sent N sha256 H".
func helperTCPSource(args []string) error {
	fs := flag.NewFlagSet("tcpsource", flag.ContinueOnError)
	to := fs.String("to", "", "address:port to connect to")
	total := fs.Int64("bytes", 1<<20, "bytes to send")
	seed := fs.Uint64("seed", 1, "data seed")
	timeout := fs.Duration("timeout", 60*time.Second, "give up after")
	rate := fs.Int64("rate", 0, "bytes per second at most; 0 is as fast as possible")
	if err := fs.Parse(args); err != nil {
		return err
	}
	c, err := net.DialTimeout("tcp6", *to, 10*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(*timeout)); err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(*seed, *seed^0x9e3779b97f4a7c15))
	h := sha256.New()
	buf := make([]byte, 256<<10)
	var sent int64
	start := time.Now()
	for sent < *total {
		if *rate > 0 {
			// Pace: wait until the time this many bytes are due.
			time.Sleep(time.Until(start.Add(time.Duration(float64(sent) / float64(*rate) * float64(time.Second)))))
		}
		n := int64(1 + rng.IntN(len(buf)))
		n = min(n, *total-sent)
		chunk := buf[:n]
		for i := range chunk {
			chunk[i] = byte(rng.Uint32())
		}
		h.Write(chunk)
		if _, err := c.Write(chunk); err != nil {
			return fmt.Errorf("after %d bytes: %w", sent, err)
		}
		sent += n
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		return err
	}
	fmt.Printf("sent %d sha256 %s\n", sent, hex.EncodeToString(h.Sum(nil)))
	return nil
}

// helperTCPProxy forwards every connection accepted on -listen to -to,
// printing "accepted N" for each. On SIGUSR1 it writes 64 bytes of
// garbage into the client→server direction of the newest connection, in
// between two reads, so that the byte stream loses its framing.
func helperTCPProxy(args []string) error {
	fs := flag.NewFlagSet("tcpproxy", flag.ContinueOnError)
	listen := fs.String("listen", "", "address:port to listen on")
	to := fs.String("to", "", "address:port to forward to")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	defer ln.Close()
	var mu sync.Mutex
	var inject chan struct{} // of the newest connection
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	go func() {
		for range usr1 {
			mu.Lock()
			if inject != nil {
				select {
				case inject <- struct{}{}:
				default:
				}
			}
			mu.Unlock()
		}
	}()
	fmt.Println("ready")
	for n := 1; ; n++ {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		s, err := net.DialTimeout("tcp", *to, 5*time.Second)
		if err != nil {
			fmt.Printf("dial %s: %v\n", *to, err)
			c.Close()
			continue
		}
		fmt.Printf("accepted %d\n", n)
		in := make(chan struct{}, 1)
		mu.Lock()
		inject = in
		mu.Unlock()
		go func() {
			defer s.Close()
			defer c.Close()
			buf := make([]byte, 32<<10)
			for {
				select {
				case <-in:
					garbage := make([]byte, 64)
					for i := range garbage {
						garbage[i] = byte(0xA5 ^ i)
					}
					if _, err := s.Write(garbage); err != nil {
						return
					}
					fmt.Println("injected")
				default:
				}
				// Short deadlines so that an injection request is
				// served even on an idle stream.
				_ = c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
				m, err := c.Read(buf)
				if m > 0 {
					if _, err := s.Write(buf[:m]); err != nil {
						return
					}
				}
				var ne net.Error
				if err != nil && !(errors.As(err, &ne) && ne.Timeout()) {
					return
				}
			}
		}()
		go func() {
			defer s.Close()
			defer c.Close()
			_, _ = io.Copy(c, s)
		}()
	}
}

// Helper builds the command line running helper mode in the namespace.
func (nd *Node) helperArgs(mode string, args ...string) (string, []string) {
	return "env", append([]string{helperEnv + "=" + mode, selfExe}, args...)
}

// RunHelper runs a helper mode to completion in the namespace.
func (nd *Node) RunHelper(mode string, args ...string) (string, error) {
	name, a := nd.helperArgs(mode, args...)
	return nd.Run(name, a...)
}

// StartHelper starts a helper mode in the background in the namespace.
func (nd *Node) StartHelper(mode string, args ...string) *Bg {
	nd.t.Helper()
	name, a := nd.helperArgs(mode, args...)
	return nd.StartBg(mode, name, a...)
}

// Metrics scrapes the daemon's /metrics from inside its namespace.
func (nd *Node) Metrics() Metrics {
	nd.t.Helper()
	out, err := nd.RunHelper("httpget", "http://"+metricsListen+"/metrics")
	if err != nil {
		nd.t.Fatalf("node %s: scraping /metrics: %v\n%s", nd.Name, err, lastLines(out, 5))
	}
	m, err := parseMetrics(out)
	if err != nil {
		nd.t.Fatalf("node %s: /metrics: %v", nd.Name, err)
	}
	return m
}

// Metrics are samples of the Prometheus text format: series (name with
// its labels, as written) to value.
type Metrics map[string]float64

// parseMetrics reads the Prometheus text exposition format, enough of it
// for counters and gauges: "name{labels} value [timestamp]".
func parseMetrics(text string) (Metrics, error) {
	m := Metrics{}
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for line := 1; sc.Scan(); line++ {
		s := strings.TrimSpace(sc.Text())
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		// The value follows the last space outside the label braces.
		end := strings.LastIndexByte(s, '}')
		rest := s
		series := ""
		if end >= 0 {
			series, rest = s[:end+1], strings.TrimSpace(s[end+1:])
		} else {
			name, r, ok := strings.Cut(s, " ")
			if !ok {
				return nil, fmt.Errorf("line %d: no value: %q", line, s)
			}
			series, rest = name, strings.TrimSpace(r)
		}
		val, _, _ := strings.Cut(rest, " ")
		v, err := strconv.ParseFloat(val, 64)
		if err != nil {
			return nil, fmt.Errorf("line %d: value %q: %v", line, val, err)
		}
		m[series] = v
	}
	return m, sc.Err()
}

// Sum adds the values of every series of metric name whose labels include
// all of the given label="value" pairs.
func (m Metrics) Sum(name string, labels ...string) (float64, bool) {
	var sum float64
	found := false
	for series, v := range m {
		n, lab, _ := strings.Cut(series, "{")
		if n != name {
			continue
		}
		ok := true
		for _, l := range labels {
			if !strings.Contains(","+strings.TrimSuffix(lab, "}")+",", ","+l+",") {
				ok = false
				break
			}
		}
		if ok {
			sum += v
			found = true
		}
	}
	return sum, found
}

func TestParseMetrics(t *testing.T) {
	m, err := parseMetrics(`# HELP x y
# TYPE pineconed_frames_total counter
pineconed_frames_total{direction="in",type="traffic"} 12
pineconed_frames_total{direction="out",type="traffic"} 3
pineconed_frames_total{direction="out",type="keepalive"} 100
pineconed_tun_packets_total{direction="read"} 7 1712345678
go_goroutines 42
`)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
		found  bool
	}{
		{"pineconed_frames_total", []string{`type="traffic"`}, 15, true},
		{"pineconed_frames_total", []string{`type="traffic"`, `direction="out"`}, 3, true},
		{"pineconed_frames_total", nil, 115, true},
		{"pineconed_tun_packets_total", []string{`direction="read"`}, 7, true},
		{"go_goroutines", nil, 42, true},
		{"pineconed_frames_total", []string{`type="traf"`}, 0, false},
		{"pineconed_frames", nil, 0, false},
	} {
		got, found := m.Sum(c.name, c.labels...)
		if got != c.want || found != c.found {
			t.Errorf("Sum(%s, %v) = %v, %t; want %v, %t", c.name, c.labels, got, found, c.want, c.found)
		}
	}
	if _, err := parseMetrics("x{a=\"b\"} notanumber\n"); err == nil {
		t.Error("bad value accepted")
	}
}
