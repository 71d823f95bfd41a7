package parallel

import (
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

var spinSink atomic.Uint64

// spin does n steps of an LCG: CPU work whose cost does not depend on waits.
func spin(n int) {
	x := uint64(n) | 1
	for i := 0; i < n; i++ {
		x = x*6364136223846793005 + 1442695040888963407
	}
	spinSink.Add(x)
}

func accountOn(t *testing.T) {
	t.Helper()
	if err := Account(true); err != nil {
		t.Skip(err)
	}
	t.Cleanup(func() { Account(false) })
}

// In accounting mode every item still runs exactly once, and each seat is
// held by one goroutine at a time (the static hand-out, with the seats no
// worker took run by the caller).
func TestAccountingRunsEachItemOnce(t *testing.T) {
	accountOn(t)
	for _, threads := range []int{1, 2, 3, 8} {
		for _, n := range []int{1, 2, 3, 7, 64} {
			counts := make([]atomic.Int32, n)
			var busy [8]atomic.Int32
			var bad atomic.Int32
			ForSeat(threads, n, func(seat, i int) {
				if busy[seat].Add(1) != 1 {
					bad.Add(1)
				}
				counts[i].Add(1)
				busy[seat].Add(-1)
			})
			for i := range counts {
				if c := counts[i].Load(); c != 1 {
					t.Fatalf("threads=%d n=%d: item %d ran %d times", threads, n, i, c)
				}
			}
			if bad.Load() != 0 {
				t.Fatalf("threads=%d n=%d: %d items shared a seat", threads, n, bad.Load())
			}
		}
	}
}

// The estimate of a loop is its slowest seat's CPU time, whether or not the
// worker got a core: items of costs 4, 1, 1, 1 on two seats are seat 0
// (items 0 and 2: 5 units) and seat 1 (items 1 and 3: 2 units), so a loop's
// estimate is 5 units, the caller's CPU time plus the adjustment.
func TestAccountingEstimatesTheSlowestSeat(t *testing.T) {
	if Workers() < 2 {
		t.Skip("one core: no second seat")
	}
	accountOn(t)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	const unit = 200_000
	costs := []int{4, 1, 1, 1}
	cpu := func(f func()) time.Duration {
		t0 := threadCPU()
		f()
		return time.Duration(threadCPU() - t0)
	}
	// Medians over interleaved tries of seat 0's items run here (the
	// reference), all items run here, and the estimate of the loop; up to
	// three rounds of them, the first within 0.85-1.3 passing. One round
	// is at the mercy of the machine: on the Zen 5 VM, whose two CPUs
	// differ in speed for a while and slow each other when both run, make
	// test saw 0.73 once and 1.35 once. A broken estimate is off in every
	// round: the faster seat's (2 units) would be 0.4, the sum of the
	// seats' or the caller's whole loop (7 units) 1.4.
	var tries []string
	for round := 0; round < 3; round++ {
		var seat0, all, est []time.Duration
		for r := 0; r < 9; r++ {
			seat0 = append(seat0, cpu(func() { spin(4 * unit); spin(unit) }))
			all = append(all, cpu(func() {
				for _, c := range costs {
					spin(c * unit)
				}
			}))
			a0 := Adjustment()
			c := cpu(func() { For(2, len(costs), func(i int) { spin(costs[i] * unit) }) })
			est = append(est, c+Adjustment()-a0)
		}
		ref, total, got := median(seat0), median(all), median(est)
		r := float64(got) / float64(ref)
		t.Logf("estimate %v, seat 0 alone %v, all items %v", got, ref, total)
		if r >= 0.85 && r <= 1.3 {
			return
		}
		tries = append(tries, fmt.Sprintf("%.2f (%v against %v; all items %v)", r, got, ref, total))
	}
	t.Errorf("estimate of a loop of items 4+1+1+1 on 2 seats against seat 0's items run alone, three rounds: %s; want 0.85-1.3", strings.Join(tries, ", "))
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// Off, loops leave the adjustment alone.
func TestNoAccountingNoAdjustment(t *testing.T) {
	Account(false)
	a := Adjustment()
	For(2, 8, func(i int) { spin(1000) })
	if d := Adjustment() - a; d != 0 {
		t.Errorf("adjustment moved by %v with accounting off", d)
	}
}
