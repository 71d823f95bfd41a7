package parallel

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Every item runs exactly once, whatever the thread count and item count.
func TestForRunsEachItemOnce(t *testing.T) {
	for _, threads := range []int{0, 1, 2, 3, 8} {
		for _, n := range []int{0, 1, 2, 3, 7, 64, 1000} {
			counts := make([]atomic.Int32, n)
			For(threads, n, func(i int) { counts[i].Add(1) })
			for i := range counts {
				if c := counts[i].Load(); c != 1 {
					t.Fatalf("threads=%d n=%d: item %d ran %d times", threads, n, i, c)
				}
			}
		}
	}
}

// Loops started from many goroutines at once, and loops nested in loops,
// each run all their items; the race detector checks the hand-offs.
func TestForConcurrentAndNested(t *testing.T) {
	var wg sync.WaitGroup
	for g := 0; g < 6; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := 0; r < 200; r++ {
				out := make([]int, 16*4)
				For(2, 16, func(i int) {
					For(2, 4, func(k int) { out[i*4+k] = i*4 + k + g })
				})
				for i, v := range out {
					if v != i+g {
						t.Errorf("goroutine %d round %d: out[%d] = %d, want %d", g, r, i, v, i+g)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
}

// After the workers have parked, a new loop wakes them and still completes.
func TestForAfterWorkersPark(t *testing.T) {
	for r := 0; r < 3; r++ {
		time.Sleep(3 * spinFor)
		var sum atomic.Int64
		For(Workers(), 100, func(i int) { sum.Add(int64(i)) })
		if s := sum.Load(); s != 4950 {
			t.Fatalf("round %d: sum %d, want 4950", r, s)
		}
	}
}

// Warm wakes a parked worker without waiting for it, only as many as the
// thread count would take, and the next loop still completes.
func TestWarmWakesParked(t *testing.T) {
	if Workers() < 2 {
		t.Skip("one core: no worker to wake")
	}
	p := get()
	w := p.workers[0]
	parkedBy := func(d time.Duration) bool {
		for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(100 * time.Microsecond) {
			if w.parked.Load() {
				return true
			}
		}
		return w.parked.Load()
	}
	if !parkedBy(20 * spinFor) {
		t.Fatal("the worker did not park")
	}
	Warm(1) // one thread: no worker to wake
	if !w.parked.Load() {
		t.Error("Warm(1) woke a worker")
	}
	Warm(2)
	if w.parked.Load() {
		t.Error("Warm(2) left the worker parked")
	}
	var sum atomic.Int64
	For(2, 100, func(i int) { sum.Add(int64(i)) })
	if s := sum.Load(); s != 4950 {
		t.Fatalf("sum %d, want 4950", s)
	}
	// Woken, it spins for spinFor, then parks again.
	if !parkedBy(20 * spinFor) {
		t.Error("the worker did not park again after Warm")
	}
}

// When the work is spread, more than one goroutine takes part (on a machine
// with more than one core).
func TestForUsesWorkers(t *testing.T) {
	if Workers() < 2 {
		t.Skip("one core: nothing to spread over")
	}
	var ids sync.Map
	var n atomic.Int32
	for r := 0; r < 50 && n.Load() < 2; r++ {
		For(2, 64, func(i int) {
			// Long enough items that a spinning worker claims some.
			deadline := time.Now().Add(20 * time.Microsecond)
			for time.Now().Before(deadline) {
			}
			if _, loaded := ids.LoadOrStore(goid(), true); !loaded {
				n.Add(1)
			}
		})
	}
	if n.Load() < 2 {
		t.Fatalf("50 loops of 64 items ran on %d goroutine(s)", n.Load())
	}
}

// Regions counts each loop that offered items to the workers, and as
// helped those in which a worker ran one; loops on one thread are not
// counted.
func TestRegionsCountsTheWorkersShare(t *testing.T) {
	if Workers() < 2 {
		t.Skip("one core: nothing to spread over")
	}
	o0, h0 := Regions()
	For(1, 64, func(int) {})
	For(2, 1, func(int) {})
	if o, h := Regions(); o != o0 || h != h0 {
		t.Fatalf("loops on one thread counted: offered %d, helped %d", o-o0, h-h0)
	}
	// Items that only a worker can finish: the caller's first item waits
	// until another goroutine has run one.
	const loops = 20
	for r := 0; r < loops; r++ {
		var other atomic.Bool
		caller := goid()
		For(2, 2, func(i int) {
			if goid() != caller {
				other.Store(true)
				return
			}
			deadline := time.Now().Add(time.Second)
			for !other.Load() && time.Now().Before(deadline) {
			}
		})
	}
	// Loops whose items the caller ran alone: it finishes both before a
	// worker could claim one only when the worker is late, which the
	// count then shows as not helped.
	for r := 0; r < loops; r++ {
		For(2, 2, func(int) {})
	}
	o, h := Regions()
	if o-o0 != 2*loops {
		t.Fatalf("offered %d loops, want %d", o-o0, 2*loops)
	}
	if h-h0 < loops || h-h0 > 2*loops {
		t.Fatalf("helped %d of %d loops, want at least the %d a worker had to finish", h-h0, o-o0, loops)
	}
}

// No two goroutines hold one seat at once, and seats stay below threads.
func TestForSeatIsExclusive(t *testing.T) {
	for _, threads := range []int{1, 2, 3} {
		var busy [3]atomic.Int32
		var bad atomic.Int32
		for r := 0; r < 100; r++ {
			ForSeat(threads, 32, func(seat, i int) {
				if seat < 0 || seat >= threads || busy[seat].Add(1) != 1 {
					bad.Add(1)
					return
				}
				for k := 0; k < 200; k++ {
					_ = k * i
				}
				busy[seat].Add(-1)
			})
		}
		if bad.Load() != 0 {
			t.Fatalf("threads=%d: %d items found their seat out of range or taken", threads, bad.Load())
		}
	}
}

// A panic in an item reaches the caller, and the pool keeps working.
func TestForPanic(t *testing.T) {
	got := func() (v any) {
		defer func() { v = recover() }()
		For(2, 10, func(i int) {
			if i == 7 {
				panic(fmt.Sprintf("item %d", i))
			}
		})
		return nil
	}()
	if got != "item 7" {
		t.Fatalf("recovered %v, want the item's panic", got)
	}
	var c atomic.Int32
	For(2, 10, func(int) { c.Add(1) })
	if c.Load() != 10 {
		t.Fatalf("after a panic: %d of 10 items ran", c.Load())
	}
}

func TestSplit(t *testing.T) {
	fromEnv()
	defer forced.Store(forced.Load())
	forced.Store(0) // unforced, whatever ONNXQ_FORCE_SPLIT says
	cases := []struct{ threads, work, minWork, want int }{
		{2, 100, 10, 2}, {2, 15, 10, 1}, {4, 25, 10, 2}, {2, 0, 10, 1}, {0, 100, 1, 1},
	}
	for _, c := range cases {
		if got := Split(c.threads, c.work, c.minWork); got != c.want {
			t.Errorf("Split(%d, %d, %d) = %d, want %d", c.threads, c.work, c.minWork, got, c.want)
		}
	}
	ForceSplit(3)
	if got := Split(2, 15, 10); got != 3 {
		t.Errorf("forced: Split(2, 15, 10) = %d, want 3", got)
	}
	// ForceSplit(0) goes back to ONNXQ_FORCE_SPLIT's count, not to none: a
	// test that forces a split for a while leaves the variable's in force.
	defer func(e int) { envForced = e }(envForced)
	for _, env := range []int{0, 5} {
		envForced = env
		ForceSplit(0)
		want := 1 // unforced: 15 units of work, 10 a thread at least
		if env > 0 {
			want = env
		}
		if got := Split(2, 15, 10); got != want || ForcedSplit() != env {
			t.Errorf("ONNXQ_FORCE_SPLIT=%d, ForceSplit(3), ForceSplit(0): Split(2, 15, 10) = %d, want %d (ForcedSplit %d)", env, got, want, ForcedSplit())
		}
	}
}

// BenchmarkFor is the cost of one parallel region of two tiny items: the
// pool's workers against a goroutine per item.
func BenchmarkFor(b *testing.B) {
	var sink atomic.Int64
	b.Run("pool", func(b *testing.B) {
		for b.Loop() {
			For(2, 2, func(i int) { sink.Add(int64(i)) })
		}
	})
	b.Run("goroutines", func(b *testing.B) {
		for b.Loop() {
			var wg sync.WaitGroup
			for i := 0; i < 2; i++ {
				wg.Add(1)
				go func() { defer wg.Done(); sink.Add(int64(i)) }()
			}
			wg.Wait()
		}
	})
}

// TestClaimOwnSpanFirst checks the order in which a seat claims items: its
// own span from the front, then the spans after it, wrapping around, each
// item once, as seats that come late or finish early leave and take them.
func TestClaimOwnSpanFirst(t *testing.T) {
	for _, tc := range []struct{ n, seats int }{{10, 3}, {2, 2}, {7, 4}, {9, 6}} {
		j := &job{n: int64(tc.n)}
		j.spans = make([]span, tc.seats)
		for s := range j.spans {
			j.spans[s].next.Store(int64(s * tc.n / tc.seats))
			j.spans[s].end = int64((s + 1) * tc.n / tc.seats)
		}
		// Seat 1 takes one item, then seat 0 drains everything.
		var got []int
		if i, ok := j.claim(1); ok {
			got = append(got, i)
		}
		for {
			i, ok := j.claim(0)
			if !ok {
				break
			}
			got = append(got, i)
		}
		first := tc.n / tc.seats
		want := []int{first}
		for i := 0; i < tc.n; i++ {
			if i != first {
				want = append(want, i)
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("n=%d seats=%d: claimed %v, want %v", tc.n, tc.seats, got, want)
		}
	}
}

// TestForReusesJobs: back-to-back loops of a few tiny items, where a worker
// often picks up a loop as it ends and the job is then reused for the
// next: every item of every loop runs once, on a seat no other item of the
// loop holds at the time, and never after its loop returned. A loop's
// bookkeeping allocates nothing once jobs are pooled.
func TestForReusesJobs(t *testing.T) {
	const loops, n = 20000, 3
	var ran [n]atomic.Int32
	var busy [4]atomic.Int32
	var late, bad atomic.Int32
	var open atomic.Bool
	item := func(seat, i int) {
		if !open.Load() {
			late.Add(1)
		}
		if busy[seat].Add(1) != 1 {
			bad.Add(1)
		}
		ran[i].Add(1)
		busy[seat].Add(-1)
	}
	for l := 0; l < loops; l++ {
		open.Store(true)
		ForSeat(Workers(), n, item)
		open.Store(false)
		for i := range ran {
			if c := ran[i].Swap(0); c != 1 {
				t.Fatalf("loop %d: item %d ran %d times", l, i, c)
			}
		}
	}
	if late.Load() != 0 || bad.Load() != 0 {
		t.Fatalf("%d items ran after their loop returned, %d on a taken seat", late.Load(), bad.Load())
	}
	if a := testing.AllocsPerRun(100, func() { ForSeat(Workers(), n, item) }); a > 0 {
		t.Fatalf("%.1f allocations a loop, want none", a)
	}
}
