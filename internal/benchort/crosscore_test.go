//go:build ort

package main

import (
	"runtime"
	"testing"
	"time"
)

func TestCrossCoreRoundTrip(t *testing.T) {
	if runtime.NumCPU() < 2 {
		t.Skip("one CPU")
	}
	d, ok := crossCoreRoundTrip()
	if !ok {
		t.Skip("threads cannot be pinned here")
	}
	// A cache line's round trip between two cores: tens of nanoseconds to a
	// few microseconds (a loaded or cross-socket VM), never zero.
	if d < 10*time.Nanosecond || d > 100*time.Microsecond {
		t.Errorf("round trip %v", d)
	}
}
