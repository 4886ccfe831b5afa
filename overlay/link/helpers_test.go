package link

import (
	"bytes"
	"sync"
	"time"

	"github.com/pineconed/pineconed/internal/testhelp"
	"github.com/pineconed/pineconed/overlay/router"
	"github.com/pineconed/pineconed/overlay/wire"
)

var (
	privA, privB = testhelp.SeedKey(1), testhelp.SeedKey(2)
	keyA, keyB   = wire.PublicKeyOf(privA), wire.PublicKeyOf(privB)
)

// fakeSwitch is the node as a link sees it: it records frames and detaches
// per port, and lets a test slow down or refuse frames.
type fakeSwitch struct {
	mu       sync.Mutex
	frames   map[router.Port][][]byte
	detached map[router.Port][]error
	// keepalives sums the sizes KeepaliveSent reported per port.
	keepalives map[router.Port]int
	// hook, when set, runs on every Receive (outside the lock) and its
	// error is returned to the link.
	hook func(port router.Port, frame []byte) error
}

func newFakeSwitch() *fakeSwitch {
	return &fakeSwitch{frames: map[router.Port][][]byte{}, detached: map[router.Port][]error{}, keepalives: map[router.Port]int{}}
}

func (s *fakeSwitch) Receive(port router.Port, frame []byte) error {
	s.mu.Lock()
	hook := s.hook
	s.frames[port] = append(s.frames[port], bytes.Clone(frame))
	s.mu.Unlock()
	if hook != nil {
		return hook(port, frame)
	}
	return nil
}

func (s *fakeSwitch) KeepaliveSent(port router.Port, size int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keepalives[port] += size
}

// keepaliveBytes is how many keepalive bytes the link on port reported.
func (s *fakeSwitch) keepaliveBytes(port router.Port) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.keepalives[port]
}

func (s *fakeSwitch) Detach(port router.Port, reason error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.detached[port] = append(s.detached[port], reason)
}

func (s *fakeSwitch) got(port router.Port) [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]byte(nil), s.frames[port]...)
}

func (s *fakeSwitch) detaches(port router.Port) []error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]error(nil), s.detached[port]...)
}

// fastConfig makes the protocol's timers short enough for tests.
func fastConfig() Config {
	return Config{
		KeepaliveInterval: 50 * time.Millisecond,
		ReadTimeout:       300 * time.Millisecond,
		WriteTimeout:      300 * time.Millisecond,
	}
}
