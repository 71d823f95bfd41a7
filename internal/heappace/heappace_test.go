package heappace

import (
	"runtime"
	"runtime/debug"
	"testing"
)

var sink []byte

// TestAllowance: a pacer collects once the garbage since its base passes
// its allowance, and not before (the collector's own pacing off, so that
// only the pacer collects).
func TestAllowance(t *testing.T) {
	runtime.GC()
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	gcs := func() uint32 {
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.NumGC
	}
	p := NewAllowing(8 << 20)
	n := gcs()
	for i := 0; i < 4; i++ { // 4 MiB
		sink = make([]byte, 1<<20)
	}
	p.BetweenSamples()
	if gcs() != n {
		t.Fatalf("collected with 4 of 8 MiB garbage")
	}
	for i := 0; i < 8; i++ { // 12 MiB in all
		sink = make([]byte, 1<<20)
	}
	p.BetweenSamples()
	if gcs() == n {
		t.Fatalf("no collection with 12 MiB garbage over an 8 MiB allowance")
	}
}
