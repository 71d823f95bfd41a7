package parallel

import (
	"runtime"
	"testing"
	"time"

	"github.com/onnxq/onnxq/kernels/fpenv"
)

// goschedsIn spins sp for at least d and 6400 turns (on a loaded machine a
// time alone may pass in few turns) and returns how many times it let its
// goroutine go, and for how long it spun.
func goschedsIn(sp spinner, d time.Duration) (int, time.Duration) {
	n0 := spinGoscheds.Load()
	start := time.Now()
	for turns := 0; turns < 6400 || time.Since(start) < d; turns++ {
		sp.spin()
	}
	return int(spinGoscheds.Load() - n0), time.Since(start)
}

// A spinner whose goroutine holds its OS thread lets it go at most once
// per tiedYield: there a Gosched wakes another thread to take the P and
// this one again to give it back (~20 us a time); an untied one yields
// every 64 turns past spinHot.
func TestTiedSpinnerRarelyLetsGo(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	wait := 4 * tiedYield
	tied, spun := goschedsIn(spinner{tied: true}, wait)
	untied, _ := goschedsIn(spinner{}, wait)
	t.Logf("spinning %v: tied %d Goscheds in %v, untied %d", wait, tied, spun, untied)
	if most := int(spun/tiedYield) + 1; tied > most {
		t.Errorf("tied spinner: %d Goscheds in %v, want at most %d", tied, spun, most)
	}
	// 6400 turns past the first 128 and spinHot: one every 64 from then on.
	if untied < 50 {
		t.Errorf("untied spinner: %d Goscheds in 6400 turns, want one every 64 turns past spinHot", untied)
	}
}

// A caller in the flush mode (Session.Run sets it holding its thread)
// waits with a tied spinner; one in the default mode does not.
func TestCallerSpinnerTiedInFlushMode(t *testing.T) {
	if !fpenv.Supported {
		t.Skip("no flush mode on this architecture")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if callerSpinner().tied {
		t.Fatal("caller spinner tied outside the flush mode")
	}
	prev := fpenv.Flush()
	tied := callerSpinner().tied
	fpenv.Restore(prev)
	if !tied {
		t.Fatal("caller spinner not tied in the flush mode")
	}
}
