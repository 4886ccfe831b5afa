package config

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// KeyLock is an exclusive lock on a private key file, held for as long as
// a daemon uses the identity: two daemons with one key would fight over
// the same overlay address, each tearing down the other's sessions.
type KeyLock struct {
	f *os.File
}

// LockKey takes an exclusive, non-blocking flock(2) on the key file at
// path. flock is tied to the open file, not the process's other
// descriptors, so reading the file again elsewhere does not drop it, and
// the kernel releases it when the process dies, so a crash leaves no stale
// lock. When another process holds it, the error names that process (from
// /proc/locks).
func LockKey(path string) (*KeyLock, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("private key %s: locking: %w", path, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		holder := ""
		if errors.Is(err, unix.EWOULDBLOCK) {
			holder = lockHolder(f)
		}
		f.Close()
		if holder != "" {
			return nil, fmt.Errorf("private key %s is in use by %s; one identity runs in one daemon at a time", path, holder)
		}
		return nil, fmt.Errorf("private key %s: locking: %w", path, err)
	}
	return &KeyLock{f: f}, nil
}

// Release drops the lock. It is safe to call on a nil lock and more than
// once.
func (l *KeyLock) Release() {
	if l == nil || l.f == nil {
		return
	}
	l.f.Close()
	l.f = nil
}

// lockHolder describes the process holding a flock on f, as "process PID
// (COMM)", or "another process" when /proc/locks does not say.
func lockHolder(f *os.File) string {
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		return "another process"
	}
	locks, err := os.Open("/proc/locks")
	if err != nil {
		return "another process"
	}
	defer locks.Close()
	// Lines look like "1: FLOCK  ADVISORY  WRITE 4242 08:01:1310723 0 EOF";
	// the device is major:minor in hex, the inode in decimal.
	want := fmt.Sprintf("%02x:%02x:%d", unix.Major(st.Dev), unix.Minor(st.Dev), st.Ino)
	sc := bufio.NewScanner(locks)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 || fields[1] != "FLOCK" || fields[5] != want {
			continue
		}
		pid, err := strconv.Atoi(fields[4])
		if err != nil || pid <= 0 {
			continue
		}
		if pid == os.Getpid() {
			return fmt.Sprintf("this process (%d)", pid)
		}
		comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if c := strings.TrimSpace(string(comm)); c != "" {
			return fmt.Sprintf("process %d (%s)", pid, c)
		}
		return fmt.Sprintf("process %d", pid)
	}
	return "another process"
}
