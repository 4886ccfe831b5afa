package accept

import "sync"

// Owner is the goroutine bookkeeping of a component that starts
// goroutines and waits for them when it closes (the peer manager, LAN
// discovery, the admin server): WG counts them, and once *Closed is set,
// under Mu, none is started. The component keeps its own mutex and closed
// flag, which guard its other state too; Owner only reads them, so this
// logic has one copy instead of one per component. Owner.Spawn is what
// Config.Spawn wants.
type Owner struct {
	Mu     sync.Locker
	Closed *bool
	WG     *sync.WaitGroup
}

// Track counts one more goroutine, unless the component is closed; the
// caller must call WG.Done when it returns true.
func (o Owner) Track() bool {
	o.Mu.Lock()
	defer o.Mu.Unlock()
	if *o.Closed {
		return false
	}
	o.WG.Add(1)
	return true
}

// Spawn runs f on a goroutine counted by WG, unless the component is
// closed (then it returns false without running f).
func (o Owner) Spawn(f func()) bool {
	if !o.Track() {
		return false
	}
	go func() {
		defer o.WG.Done()
		f()
	}()
	return true
}
