package parallel

import (
	"errors"
	"sync/atomic"
	"time"
)

// Accounting estimates, on a machine whose cores other processes share, how
// long a computation would take with the pool's cores to itself. There a
// 2-thread run often gets one core, its wall time says little, and the
// share of runs that did get two is small and biased toward short runs.
//
// In accounting mode every loop hands its items to seats statically (each
// seat its span, the items it takes on idle cores when all items cost
// alike) and reads each seat's thread CPU time around its
// items: waiting for a core does not count there, work does, including the
// cost of reading data another core wrote. A loop's estimate is then its
// slowest seat, and a pass's estimate its caller's own CPU time with each
// loop's CPU time in the caller replaced by that: Adjustment sums, over
// loops, the slowest seat's CPU time minus the caller's. What it leaves
// out: the hand-off to a worker (about a microsecond when the worker spins,
// see BenchmarkFor; tens when it must be woken) and the balance that
// claiming items dynamically gives when they cost unlike.
//
// The caller must hold its OS thread (runtime.LockOSThread) for its thread
// CPU time to be its own; a worker holds its own during each accounted loop.

var (
	accounting atomic.Bool
	adjustment atomic.Int64 // nanoseconds
)

// Account turns accounting mode on or off. It fails where the thread CPU
// clock is not available.
func Account(on bool) error {
	if on && threadCPU() < 0 {
		return errors.New("parallel: no thread CPU clock on this system")
	}
	accounting.Store(on)
	return nil
}

// Adjustment is the sum, over the loops run in accounting mode, of the
// slowest seat's CPU time minus the CPU time the caller spent in the loop
// (its own items, the seats no worker took, and the waiting).
func Adjustment() time.Duration { return time.Duration(adjustment.Load()) }

// workSeat runs the items of one seat and keeps the seat's CPU time.
func (j *job) workSeat(seat int) {
	t0 := threadCPU()
	for i := int(j.spans[seat].next.Load()); i < int(j.spans[seat].end); i++ {
		j.run(seat, i)
		if j.done.Add(1) == j.n && j.waiting.Load() == 1 && j.waiting.CompareAndSwap(1, 2) {
			j.wake <- struct{}{}
		}
	}
	j.cpu[seat].Add(threadCPU() - t0)
}

// account adds a finished loop to the adjustment; callerCPU is the caller's
// CPU time from before the loop was published to after it ended.
func (j *job) account(callerCPU int64) {
	var slowest int64
	for s := range j.cpu {
		slowest = max(slowest, j.cpu[s].Load())
	}
	adjustment.Add(slowest - callerCPU)
}
