//go:build ort

package main

import (
	"runtime"
	"sync"
	"testing"
	"time"
)

// busy keeps n OS threads of this process computing for d.
func busy(n int, d time.Duration) {
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			x := uint64(i) | 1
			for start := time.Now(); time.Since(start) < d; {
				for k := 0; k < 1000; k++ {
					x = x*6364136223846793005 + 1442695040888963407
				}
			}
			sink += x
		}()
	}
	wg.Wait()
}

// One thread more than there are CPUs, all runnable for 300 ms: at every
// instant at least one of them waits for a CPU, so together they wait at
// least 300 ms, whatever else runs (the test asks for half, as threads
// start and end a little apart).
func TestRunQueueWaitCountsThreadsThatWantACPU(t *testing.T) {
	cpus := runtime.NumCPU()
	if runtime.GOMAXPROCS(0) < cpus+1 {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(cpus + 1))
	}
	w0 := runQueueWait()
	if w0 < 0 {
		t.Skip("no /proc/self/task/*/schedstat on this kernel")
	}
	const d = 300 * time.Millisecond
	busy(cpus+1, d)
	w := time.Duration(runQueueWait() - w0)
	if w < d/2 {
		t.Errorf("%d threads computing for %v on %d CPUs waited %v in all; want >= %v", cpus+1, d, cpus, w, d/2)
	}
	t.Logf("%d threads, %v each: run-queue wait %v", cpus+1, d, w)
}

// A sleeping process waits for no CPU, and its wait does not go backwards.
func TestRunQueueWaitOfASleep(t *testing.T) {
	w0 := runQueueWait()
	if w0 < 0 {
		t.Skip("no /proc/self/task/*/schedstat on this kernel")
	}
	time.Sleep(50 * time.Millisecond)
	w := time.Duration(runQueueWait() - w0)
	if w < 0 || w > 40*time.Millisecond {
		t.Errorf("run-queue wait over a 50 ms sleep: %v; want 0 <= wait < 40 ms", w)
	}
}

func TestQuietGateKeepsItsLimit(t *testing.T) {
	if d, ok := quietGate(0); d != 0 || ok {
		t.Errorf("quietGate(0) = %v, %v; want 0, false (no waiting)", d, ok)
	}
	start := time.Now()
	d, ok := quietGate(300 * time.Millisecond)
	if el := time.Since(start); el > 300*time.Millisecond+2*quietWindow {
		t.Errorf("quietGate(300ms) took %v", el)
	}
	if !ok && d < 300*time.Millisecond {
		t.Errorf("quietGate(300ms) gave up after %v", d)
	}
	if i, tot, ok := cpuIdle(); !ok || i <= 0 || tot < i {
		t.Errorf("cpuIdle() = %d, %d, %v; want 0 < idle <= total", i, tot, ok)
	}
}
