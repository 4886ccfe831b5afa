//go:build !race

package daemon

// raceDetector: see race_on_test.go.
const raceDetector = false
