package datapath

import (
	"time"

	"github.com/pineconed/pineconed/addressing"
)

// timerLoop drives the resolver's retries and the session timers, and
// retries pending lookups as soon as the overlay gains a route.
func (p *Path) timerLoop() {
	defer p.wg.Done()
	t := time.NewTicker(resolverTick)
	defer t.Stop()
	var lastSession time.Time
	for {
		select {
		case <-p.stop:
			return
		case <-p.cfg.Overlay.RoutesChanged():
			if sent, owed := p.resolver.RoutesChanged(time.Now()); sent+owed > 0 {
				p.log.Debug("routes changed: pending lookups retried", "sent", sent, "owed", owed)
			}
		case now := <-t.C:
			p.resolver.Tick(now)
			if now.Sub(lastSession) >= sessionTick-resolverTick/2 {
				p.sessions.Tick(now)
				if p.cfg.Tick != nil {
					p.cfg.Tick(now)
				}
				lastSession = now
			}
		}
	}
}

// onLookupDone logs how a lookup ended and tells Config.LookupDone.
func (p *Path) onLookupDone(prefix addressing.KeyPrefix, latency time.Duration, ok bool) {
	if ok {
		p.log.Debug("address lookup found", "prefix", prefix, "after", latency)
	} else {
		p.log.Debug("address lookup gave up", "prefix", prefix, "after", latency)
	}
	if p.cfg.LookupDone != nil {
		p.cfg.LookupDone(prefix, latency, ok)
	}
}
