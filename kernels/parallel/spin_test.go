package parallel

import (
	"runtime"
	"testing"
	"time"

	"github.com/onnxq/onnxq/kernels/fpenv"
)

// goschedsIn spins sp for d and returns how many times it let its goroutine go.
func goschedsIn(sp spinner, d time.Duration) int {
	n0 := spinGoscheds.Load()
	start := time.Now()
	for time.Since(start) < d {
		sp.spin()
	}
	return int(spinGoscheds.Load() - n0)
}

// A spinner whose goroutine holds its OS thread lets it go at most once
// per tiedYield: there a Gosched wakes another thread to take the P and
// this one again to give it back (~20 us a time); an untied one yields
// every 64 turns past spinHot.
func TestTiedSpinnerRarelyLetsGo(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	wait := 4 * tiedYield
	tied := goschedsIn(spinner{tied: true}, wait)
	untied := goschedsIn(spinner{}, wait)
	t.Logf("spinning %v: tied %d Goscheds, untied %d", wait, tied, untied)
	// Spinning may overrun by a turn; a slow machine takes fewer turns.
	if tied > int(wait/tiedYield)+1 {
		t.Errorf("tied spinner: %d Goscheds in %v, want at most %d", tied, wait, int(wait/tiedYield)+1)
	}
	if untied <= tied {
		t.Errorf("untied spinner: %d Goscheds in %v, want more than the tied one's %d", untied, wait, tied)
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
