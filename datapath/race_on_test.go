//go:build race

package datapath

// raceDetector: the race detector slows every goroutine several times,
// so real-time load scenarios cannot reach their rates under it.
const raceDetector = true
