//go:build ort

package main

import (
	"fmt"
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// sample is one timed forward pass: elapsed wall time, the CPU time of the
// OS thread that ran it, the CPU time of the whole process (every thread)
// over the same interval, this process's run-queue wait around it (see
// contention.go; -1 when unknown), and in the pool's accounting mode the
// estimate of the pass on cores of its own (see parallel.Account).
type sample struct {
	wall, thread, process time.Duration
	waited                time.Duration
	estimate              time.Duration
	// onnxq's parallel loops in the run that offered items to the pool's
	// workers, and those a worker took part in (0 for ONNX Runtime).
	regions, helped int64
}

// measure runs f on the calling goroutine with its OS thread locked, so the
// thread clock read before and after belongs to the thread that ran f (cgo
// calls into ONNX Runtime run on that thread too). The CPU clocks are read
// inside the wall interval, so thread time never exceeds wall time by the
// reads' own cost. Without lock (runs above 1 thread, see childMain) the
// goroutine may change threads, so thread CPU time is left 0.
func measure(f func() error, lock bool) (sample, error) {
	if lock {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
	}
	// thread reads the thread clock only when the goroutine holds its thread.
	thread := func() (time.Duration, error) {
		if !lock {
			return 0, nil
		}
		return cpuTime(unix.CLOCK_THREAD_CPUTIME_ID)
	}
	w0 := runQueueWait()
	start := time.Now()
	t0, err := thread()
	if err != nil {
		return sample{}, err
	}
	p0, err := cpuTime(unix.CLOCK_PROCESS_CPUTIME_ID)
	if err != nil {
		return sample{}, err
	}
	if err := f(); err != nil {
		return sample{}, err
	}
	p1, err := cpuTime(unix.CLOCK_PROCESS_CPUTIME_ID)
	if err != nil {
		return sample{}, err
	}
	t1, err := thread()
	if err != nil {
		return sample{}, err
	}
	wall := time.Since(start)
	w1 := runQueueWait()
	waited := time.Duration(-1)
	if w0 >= 0 && w1 >= 0 {
		waited = time.Duration(max(0, w1-w0))
	}
	return sample{wall: wall, thread: t1 - t0, process: p1 - p0, waited: waited}, nil
}

// cpuTime reads a CPU-time clock (thread or process).
func cpuTime(clock int32) (time.Duration, error) {
	var ts unix.Timespec
	if err := unix.ClockGettime(clock, &ts); err != nil {
		return 0, fmt.Errorf("clock_gettime(%d): %v", clock, err)
	}
	return time.Duration(ts.Nano()), nil
}
