//go:build ort

package main

import (
	"fmt"
	"runtime"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// crossCoreRoundTrip is how long a cache line takes to go from CPU 0 to CPU
// 1 and back: two threads, one pinned to each, take turns writing a counter
// the other waits on. On the shared 2-core VM this is bimodal: about 75 ns
// for minutes, then about 380 ns for minutes (the hypervisor placing the
// two virtual CPUs apart). In the slow state every op that reads data the
// other thread wrote slows down, and both engines' 2-thread times with it
// (ONNX Runtime's stories260K at 2 threads 4.4 -> 7.5 ms), so the tables
// print it beside the times. ok is false where there are not two CPUs or
// threads cannot be pinned.
func crossCoreRoundTrip() (time.Duration, bool) {
	if runtime.NumCPU() < 2 {
		return 0, false
	}
	const rounds = 100000
	var turn atomic.Int64
	pinned := make(chan bool, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		defer unpin()
		pinned <- pinTo(1)
		for i := int64(0); i < rounds; i++ {
			for turn.Load() != 2*i+1 {
			}
			turn.Store(2*i + 2)
		}
	}()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	defer unpin()
	ok := pinTo(0) && <-pinned
	start := time.Now()
	for i := int64(0); i < rounds; i++ {
		turn.Store(2*i + 1)
		for turn.Load() != 2*i+2 {
		}
	}
	return time.Since(start) / rounds, ok
}

// pinTo binds the calling thread to one CPU; unpin lets it run on any again,
// before the Go runtime reuses the thread for other goroutines.
func pinTo(cpu int) bool {
	var s unix.CPUSet
	s.Set(cpu)
	return unix.SchedSetaffinity(0, &s) == nil
}

func unpin() {
	var all unix.CPUSet
	for c := 0; c < runtime.NumCPU(); c++ {
		all.Set(c)
	}
	unix.SchedSetaffinity(0, &all)
}

// crossCore formats crossCoreRoundTrip for the tables' header (explain)
// and footer.
func crossCore(explain bool) string {
	d, ok := crossCoreRoundTrip()
	if !ok {
		return "cross-core round trip not measured"
	}
	s := fmt.Sprintf("cross-core round trip %d ns", d.Nanoseconds())
	if explain {
		s += " (CPU 0 -> 1 -> 0; about 75 when the two CPUs share a cache, several times that when the VM has placed them apart, and then both engines' 2-thread times are slower)"
	}
	return s
}

// nearRoundTrip is the cross-core round trip below which the two CPUs count
// as near (sharing a cache): the fast state measures 70-110 ns here, the
// slow one 360-450.
const nearRoundTrip = 150 * time.Nanosecond

// nearGate is the -near gate's wait: up to limit for the two CPUs to be
// near, so that 2-thread blocks of both engines are timed in the same state
// of the VM.
func nearGate(limit time.Duration) (time.Duration, bool) {
	start := time.Now()
	for {
		d, ok := crossCoreRoundTrip()
		if !ok {
			return time.Since(start), false
		}
		if d < nearRoundTrip {
			return time.Since(start), true
		}
		if time.Since(start) >= limit {
			return time.Since(start), false
		}
		time.Sleep(2 * time.Second)
	}
}
