package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/pineconed/pineconed/admin"
	"github.com/spf13/cobra"
)

// parseSpan accepts a Go duration ("500ms", "2s") or, like ping6, a plain
// number of seconds ("0.5").
func parseSpan(s string) (time.Duration, error) {
	if d, err := time.ParseDuration(s); err == nil {
		return d, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 || f > 3600 {
		return 0, fmt.Errorf("%q is not a duration (e.g. 500ms, 2s, 0.5)", s)
	}
	return time.Duration(f * float64(time.Second)), nil
}

func (a *app) pingCommand() *cobra.Command {
	var (
		count               int
		intervalS, timeoutS string
	)
	cmd := &cobra.Command{
		Use:   "ping ADDRESS|KEY",
		Short: "Send echo requests over the overlay to an address or key",
		Long: `Send echo requests through the overlay to the node owning ADDRESS (an
overlay IPv6 address) or KEY (a 64-character hex public key), printing a
line per probe and a summary, like ping6. Exits with 5 when no reply came
back at all. Probes are sent one after another: with a timeout longer than
the interval, a lost probe delays the next.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			target := args[0]
			if _, kerr := admin.ParseKey(target); kerr != nil {
				if _, aerr := admin.ParseOverlayAddress(target); aerr != nil {
					return fmt.Errorf("%q is neither an overlay IPv6 address nor a 64-character hex key", target)
				}
			}
			interval, err := parseSpan(intervalS)
			if err != nil {
				return fmt.Errorf("-i: %w", err)
			}
			timeout, err := parseSpan(timeoutS)
			if err != nil {
				return fmt.Errorf("-W: %w", err)
			}
			args2 := admin.PingArgs{
				Target:     target,
				Count:      count,
				IntervalMS: int(interval / time.Millisecond),
				TimeoutMS:  int(timeout / time.Millisecond),
			}
			switch {
			case count < 1 || count > admin.MaxPingCount:
				return fmt.Errorf("-c must be 1..%d", admin.MaxPingCount)
			case args2.IntervalMS < admin.MinPingIntervalMS || args2.IntervalMS > admin.MaxPingIntervalMS:
				return fmt.Errorf("-i must be %dms..%ds", admin.MinPingIntervalMS, admin.MaxPingIntervalMS/1000)
			case args2.TimeoutMS < 1 || args2.TimeoutMS > admin.MaxPingTimeoutMS:
				return fmt.Errorf("-W must be 1ms..%ds", admin.MaxPingTimeoutMS/1000)
			}
			return a.withClient(func(c *admin.Client) error {
				if a.jsonOut {
					return a.pingJSON(c, args2)
				}
				return a.pingLive(c, args2, interval, timeout)
			})
		},
	}
	f := cmd.Flags()
	f.IntVarP(&count, "count", "c", admin.DefaultPingCount, "number of probes")
	f.StringVarP(&intervalS, "interval", "i", "1s", "time between probes (e.g. 500ms, or seconds like 0.5)")
	f.StringVarP(&timeoutS, "timeout-probe", "W", "2s", "how long to wait for each reply")
	return cmd
}

// pingJSON sends all probes in one request and prints the daemon's answer.
func (a *app) pingJSON(c *admin.Client, args admin.PingArgs) error {
	total := time.Duration((args.Count-1)*args.IntervalMS+args.TimeoutMS)*time.Millisecond + a.timeout
	ctx, cancel := context.WithTimeout(a.ctx, total)
	defer cancel()
	raw, err := c.Do(ctx, admin.ReqPing, args)
	if err != nil {
		return err
	}
	if err := a.printJSON(raw); err != nil {
		return err
	}
	var r admin.PingResponse
	if err := json.Unmarshal(raw, &r); err != nil {
		return fmt.Errorf("decoding ping response: %w", err)
	}
	if r.Received == 0 {
		return errNoReplies
	}
	return nil
}

// pingLive sends one probe per request so each reply prints as it comes.
// An interrupt (a.ctx ending) stops it early with the summary still shown.
func (a *app) pingLive(c *admin.Client, args admin.PingArgs, interval, timeout time.Duration) error {
	v := a.view()
	sum := admin.PingResponse{Target: args.Target}
	probeTarget := args.Target
	start := time.Now()
	timer := time.NewTimer(0)
	defer timer.Stop()
probing:
	for i := range args.Count {
		if i > 0 {
			timer.Reset(time.Until(start.Add(time.Duration(i) * interval)))
			select {
			case <-timer.C:
			case <-a.ctx.Done():
				break probing
			}
		}
		ctx, cancel := context.WithTimeout(a.ctx, timeout+a.timeout)
		r, err := c.Ping(ctx, admin.PingArgs{Target: probeTarget, Count: 1, TimeoutMS: args.TimeoutMS})
		cancel()
		if err != nil {
			if a.ctx.Err() != nil {
				break
			}
			return err
		}
		if len(r.Probes) != 1 {
			return fmt.Errorf("daemon answered a one-probe ping with %d probes", len(r.Probes))
		}
		if i == 0 {
			writePingHeader(a.stdout, v, args.Target, r.PublicKey, args.Count, interval)
			sum.PublicKey, sum.Address = r.PublicKey, r.Address
			probeTarget = r.PublicKey // resolve the address once
		}
		p := r.Probes[0]
		p.Seq = i + 1
		sum.Probes = append(sum.Probes, p)
		writePingProbe(a.stdout, v, args.Target, p)
	}
	admin.SummarisePing(&sum)
	writePingSummary(a.stdout, v, sum)
	if sum.Received == 0 {
		return errNoReplies
	}
	return nil
}
