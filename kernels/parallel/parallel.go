// Package parallel runs loops across a process-wide set of worker goroutines
// that outlive each loop. A worker that finishes spins for a short while
// before it parks, so the next parallel region (the next op of a forward pass,
// tens of microseconds later) finds it awake: a region then costs about a
// microsecond, where starting goroutines and waking an idle thread costs more
// than the work of a convolution on a small feature map.
//
// Each goroutine of a loop (a seat: the caller is seat 0) owns a contiguous
// span of the items, claims them one at a time from the front, and then
// takes items left in the other seats' spans, so a worker that the OS has
// not scheduled in time (a loaded machine) costs nothing: the caller takes
// the items it did not. Only a worker preempted in the middle of an item
// makes the caller wait. Spans rather than one shared counter keep a core
// on the same part of the data from one op to the next (the caller on the
// first half of a tensor's rows, the worker on the second): an op that
// reads rows another core has just written waits for them to move between
// the cores' caches, which made the small ops of a transformer at 2 threads
// slower than at 1. (In accounting mode, for benchmarks, each seat runs
// exactly its span: see Account.)
package parallel

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/onnxq/onnxq/kernels/fpenv"
)

// spinFor is how long an idle worker keeps looking for work before it parks:
// longer than the gap between two ops of a forward pass and than most gaps
// between two passes (a calibration loop's observers and reads, a timing
// loop's collection), short enough that an idle process gives its cores
// back soon. A parked worker is slow to come back for more than its
// wake-up: on the 2-vCPU VM, ResNet-20 at 2 threads after 230 us idle took
// 20% longer than run back to back and after 1 ms 33% longer (its first
// layers 30-50 us slower: the woken vCPU runs slowly for a while), with
// 200 us here; at 2 ms, 8-13% less at those gaps (measured with the two
// vCPUs placed apart, where every run is slower), no change back to
// back. (ONNX Runtime's workers spin longer still: 2^20 pauses.)
const spinFor = 2 * time.Millisecond

// spinHot is how long a waiting goroutine (a worker between loops, a caller
// waiting for the last items) only spins before it starts to yield its CPU
// now and then (Gosched, sched_yield): a yield takes about a microsecond on
// a VM, and yielding from the first microsecond on made a loop's hand-offs
// cost ~2 us (an LSTM step split over 2 threads: 2.3 us of work each in a
// 4.3 us loop). Past it, yields keep a worker that the OS put on the
// caller's CPU (a loaded machine) from holding the caller off for long.
const spinHot = 5 * time.Microsecond

// waitSpin is how long a caller waits for a loop's last items spinning
// before it sleeps until they end.
const waitSpin = 50 * time.Microsecond

// job is one call of For. Jobs are reused (jobPool): a job per call was
// most of a 2-thread run's garbage (ResNet-20: 8 of 26 KB a run), and
// garbage grows the heap into fresh pages, each a page fault at its first
// touch. A worker holds a reference (refs) from before it checks that the
// job is still the one published until it is done with it, and a job is
// initialized again only when no worker holds one, so a worker that picks
// a job up late either finds it still published, items and seats of one
// loop, or lets it go untouched.
type job struct {
	id      atomic.Uint64     // tells a worker it has not seen this job yet
	refs    atomic.Int32      // workers between finding the job and leaving it
	fp      uint32            // the caller thread's floating-point mode, which seats adopt
	f       func(seat, i int) // the items (ForSeat), or
	fi      func(i int)       // the items (For)
	n       int64
	spans   []span       // each seat's items
	inline  [4]span      // spans for up to 4 seats, without an allocation
	done    atomic.Int64 // items finished
	seats   atomic.Int64 // workers that may still join
	waiting atomic.Int32 // 1: the caller sleeps on wake; 2: it was woken
	wake    chan struct{}
	panicv  atomic.Pointer[any]
	joined  atomic.Bool // a worker ran one of the items

	// Set in accounting mode (see Account): items go to seats statically,
	// item i to seat i mod seatCount, and each seat's CPU time in its items
	// is kept in cpu.
	seatCount int
	cpu       []atomic.Int64
}

// span is one seat's items [next, end), claimed from the front by the seat
// and, when their own are done, by the others; a cache line each, so that
// seats claiming from their own spans do not contend.
type span struct {
	next atomic.Int64
	end  int64
	_    [48]byte
}

type worker struct {
	parked atomic.Bool
	wake   chan struct{}
}

type pool struct {
	cur     atomic.Pointer[job] // the job in progress, nil when idle
	ids     atomic.Uint64
	workers []*worker
}

var (
	once   sync.Once
	shared *pool

	forced atomic.Int64 // see ForceSplit
)

func get() *pool {
	once.Do(func() {
		shared = &pool{}
		for i := 0; i < runtime.GOMAXPROCS(0)-1; i++ {
			w := &worker{wake: make(chan struct{}, 1)}
			shared.workers = append(shared.workers, w)
			go shared.loop(w)
		}
	})
	return shared
}

// Workers is how many goroutines can run one loop at once: the caller and
// the pool's workers (one per core besides the caller's).
func Workers() int { return len(get().workers) + 1 }

// For runs f(i) for every i in [0, n) on up to threads goroutines, the
// caller's included, and returns when all calls have returned. A call made
// while another loop is running (a nested loop, or another session's) runs
// on the caller alone. A panic in f is re-raised in the caller.
func For(threads, n int, f func(i int)) { forLoop(threads, n, nil, f) }

// ForSeat is For that also tells f which of the goroutines runs the item: a
// seat in [0, threads), 0 for the caller, each held by one goroutine at a
// time, so items can share scratch per seat.
func ForSeat(threads, n int, f func(seat, i int)) { forLoop(threads, n, f, nil) }

// forLoop is For (fi) and ForSeat (f): the job calls whichever is set, so
// that For does not wrap its function in a closure, an allocation a loop.
func forLoop(threads, n int, f func(seat, i int), fi func(i int)) {
	if n <= 0 {
		return
	}
	p := get()
	helpers := min(threads-1, n-1, len(p.workers))
	if helpers <= 0 {
		runAll(n, f, fi)
		return
	}
	j := getJob()
	defer putJob(j)
	j.id.Store(p.ids.Add(1))
	j.f, j.fi, j.n, j.fp = f, fi, int64(n), fpenv.Mode()
	j.done.Store(0)
	j.waiting.Store(0)
	j.wake = nil
	j.panicv.Store(nil)
	j.joined.Store(false)
	j.seatCount, j.cpu = 0, nil
	j.seats.Store(int64(helpers))
	seats := helpers + 1
	j.spans = j.inline[:]
	if seats > len(j.inline) {
		j.spans = make([]span, seats)
	}
	j.spans = j.spans[:seats]
	for s := range j.spans {
		j.spans[s].next.Store(int64(s * n / seats))
		j.spans[s].end = int64((s + 1) * n / seats)
	}
	var c0 int64
	if accounting.Load() {
		j.seatCount = helpers + 1
		j.cpu = make([]atomic.Int64, j.seatCount)
		c0 = threadCPU()
	}
	if !p.cur.CompareAndSwap(nil, j) {
		runAll(n, f, fi)
		return
	}
	// Wake parked workers, as many as may join.
	for _, w := range p.workers[:helpers] {
		if w.parked.Load() && w.parked.CompareAndSwap(true, false) {
			w.wake <- struct{}{}
		}
	}
	j.work(0)
	p.cur.CompareAndSwap(j, nil) // no new worker joins from here
	if j.seatCount > 0 {
		// Seats no worker took (1 to left, workers take them from the top)
		// run here, each timed as its own.
		for s := j.seats.Swap(-1 << 30); s >= 1; s-- {
			j.work(int(s))
		}
	}
	j.wait()
	regions.Add(1)
	if j.joined.Load() { // stored before an item's done count, which wait saw
		joined.Add(1)
	}
	if j.seatCount > 0 {
		j.account(threadCPU() - c0)
	}
	if v := j.panicv.Load(); v != nil {
		panic(*v)
	}
}

// runAll runs a loop's items on the caller alone.
func runAll(n int, f func(seat, i int), fi func(i int)) {
	for i := 0; i < n; i++ {
		if fi != nil {
			fi(i)
		} else {
			f(0, i)
		}
	}
}

// regions counts the loops that offered items to the workers, and joined
// those in which a worker ran at least one: on a machine that gives the
// pool's workers no core in time (another process, a hypervisor that has
// descheduled the virtual CPU) the caller runs every item and the loop
// takes its 1-thread time.
var regions, joined atomic.Int64

// Regions returns, over the process's life, how many loops offered items to
// the pool's workers and in how many a worker took part. Loops on one
// thread (threads 1, one item, nested) are not counted.
func Regions() (offered, helped int64) { return regions.Load(), joined.Load() }

var jobPool = sync.Pool{New: func() any { return new(job) }}

// getJob returns a job no worker holds.
func getJob() *job {
	j := jobPool.Get().(*job)
	for j.refs.Load() != 0 { // a worker leaving it: a few instructions
		spinPause()
	}
	return j
}

// putJob gives back a finished job, without what its items referenced.
func putJob(j *job) {
	j.f, j.fi = nil, nil
	jobPool.Put(j)
}

// work claims and runs items until none are left.
func (j *job) work(seat int) {
	if j.seatCount > 0 {
		j.workSeat(seat)
		return
	}
	for ran := false; ; ran = true {
		i, ok := j.claim(seat)
		if !ok {
			return
		}
		if seat != 0 && !ran {
			j.joined.Store(true)
		}
		j.run(seat, i)
		if j.done.Add(1) == j.n && j.waiting.Load() == 1 && j.waiting.CompareAndSwap(1, 2) {
			j.wake <- struct{}{}
		}
	}
}

// claim returns the next item of seat's span, or else of the next span
// that has one left; false when none has.
func (j *job) claim(seat int) (int, bool) {
	for k := range j.spans {
		sp := &j.spans[(seat+k)%len(j.spans)]
		if sp.next.Load() >= sp.end {
			continue
		}
		if i := sp.next.Add(1) - 1; i < sp.end {
			return int(i), true
		}
	}
	return 0, false
}

func (j *job) run(seat, i int) {
	defer func() {
		if r := recover(); r != nil {
			v := r // on the heap only when there was a panic
			j.panicv.CompareAndSwap(nil, &v)
		}
	}()
	if j.fi != nil {
		j.fi(i)
		return
	}
	j.f(seat, i)
}

// wait returns when every item has finished: it spins while the items still
// running are likely short, then sleeps until the last one ends.
func (j *job) wait() {
	sp := callerSpinner()
	for j.done.Load() != j.n {
		if sp.spin() > waitSpin {
			j.wake = make(chan struct{}, 1)
			j.waiting.Store(1)
			if j.done.Load() == j.n && j.waiting.CompareAndSwap(1, 0) {
				return
			}
			<-j.wake
			return
		}
	}
}

// spinner paces a spin-wait (a caller waiting for a loop's last items,
// Steps' barrier): a PAUSE each turn and, from spinHot on, a yield of the
// CPU every 64 turns (see spinHot). The worker's idle loop (loop) keeps the
// same pacing written out: through a spinner its pickup of the next loop
// measured slower (BenchmarkFor 400 -> 450 ns).
type spinner struct {
	turns int
	start time.Time
	// tied: the goroutine holds its OS thread (a caller in Session.Run's
	// flush mode, a worker inside a job; see tiedYield).
	tied bool
	// yielded is when (into the wait) the last Gosched of a tied spinner was.
	yielded time.Duration
}

// tiedYield is how often a tied spinner lets its goroutine go
// (runtime.Gosched): a goroutine that holds its OS thread cannot be run
// by another one, so its Gosched hands the P to another thread and wakes
// this one again, 17-24 us against 0.1-0.25 us untied (measured on the
// 2-vCPU VM, Go 1.26). Yielding every 64 turns from spinHot on, a tied
// caller waiting for a loop's last items spent its wait in those hand-offs.
// It still yields the CPU (osYield) as often as an untied one, and lets
// the goroutine go now and then, for a part whose goroutine waits for a P.
const tiedYield = time.Millisecond

// spinGoscheds counts the spinners' Goscheds, for the tests.
var spinGoscheds atomic.Int64

// callerSpinner paces a caller's wait for a loop's last items: tied where
// the caller set the flush mode, which Session.Run does holding its thread.
func callerSpinner() spinner { return spinner{tied: fpenv.Flushing()} }

// spin takes one turn and returns how long the wait has spun, measured
// every 64th turn from the 128th on (0 on the other turns).
func (s *spinner) spin() time.Duration {
	spinPause()
	s.turns++
	if s.turns&63 != 0 {
		return 0
	}
	if s.turns == 64 {
		s.start = time.Now()
		return 0
	}
	d := time.Since(s.start)
	if d > spinHot {
		if !s.tied || d-s.yielded > tiedYield {
			spinGoscheds.Add(1)
			runtime.Gosched()
			s.yielded = d
		}
		osYield()
	}
	return d
}

// loop is a worker: take seats in jobs while they come, park when none has
// come for spinFor.
func (p *pool) loop(w *worker) {
	// The id, not the pointer, of the last job seen: a pointer would keep
	// the job's closure, and the buffers it references, alive.
	var last uint64
	idleSince := time.Now()
	for s := 0; ; s++ {
		if j := p.cur.Load(); j != nil && j.id.Load() != last {
			j.refs.Add(1)
			if p.cur.Load() != j { // finished meanwhile, maybe being reused
				j.refs.Add(-1)
				continue
			}
			last = j.id.Load()
			if left := j.seats.Add(-1); left >= 0 {
				// The goroutine stays on its thread for this job only:
				// the items run in the caller's floating-point mode (a
				// worker computes what the caller would: subnormals
				// flushed or not), and accounting reads this thread's
				// CPU clock around them.
				runtime.LockOSThread()
				prev := fpenv.Adopt(j.fp)
				if j.seatCount > 0 { // accounting: the seat's span is this worker's
					j.joined.Store(true)
				}
				j.work(int(left) + 1)
				fpenv.Restore(prev)
				runtime.UnlockOSThread()
			}
			j.refs.Add(-1)
			idleSince, s = time.Now(), 0
			continue
		}
		spinPause()
		if s&63 != 63 {
			continue
		}
		if idle := time.Since(idleSince); idle < spinFor {
			if idle > spinHot {
				runtime.Gosched()
				osYield()
			}
			continue
		}
		// Park. A job published after parked was set finds parked set and
		// sends a wake-up; one published before is seen by the load below.
		w.parked.Store(true)
		if j := p.cur.Load(); j != nil && j.id.Load() != last && w.parked.CompareAndSwap(true, false) {
			idleSince, s = time.Now(), 0
			continue
		}
		<-w.wake
		idleSince, s = time.Now(), 0
	}
}

// Warm wakes the parked workers that a loop of this many threads would
// take, without waiting for them: a caller about to run parallel loops
// after a pause (a forward pass after the caller's own work between
// passes) calls it first, so that the worker's wake-up (tens of
// microseconds on a VM) overlaps what the caller does before its first
// loop instead of delaying that loop. A woken worker spins for spinFor,
// then parks again if no loop came.
func Warm(threads int) {
	p := get()
	for _, w := range p.workers[:min(max(threads-1, 0), len(p.workers))] {
		if w.parked.Load() && w.parked.CompareAndSwap(true, false) {
			w.wake <- struct{}{}
		}
	}
}

// Split is how many threads to use for work units of work when each thread
// should get at least minWork of them: at most threads, at least 1.
func Split(threads, work, minWork int) int {
	fromEnv()
	if f := int(forced.Load()); f > 0 {
		return min(f, max(1, work))
	}
	if w := work / max(1, minWork); w < threads {
		return max(1, w)
	}
	return max(1, threads)
}

// ONNXQ_FORCE_SPLIT=N (N >= 1) acts as ForceSplit(N) from the first Split,
// so that any package's tests can run every kernel's parallel path:
// ONNXQ_FORCE_SPLIT=2 go test ./kernels/... (read then, not at init, so that
// go test's cache knows the result depends on it).
var fromEnv = sync.OnceFunc(func() {
	if v := os.Getenv("ONNXQ_FORCE_SPLIT"); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n >= 1 {
			envForced = n
			forced.Store(int64(n))
		} else {
			fmt.Fprintf(os.Stderr, "onnxq: ignoring ONNXQ_FORCE_SPLIT=%q: want a thread count >= 1\n", v)
		}
	}
})

// envForced is ONNXQ_FORCE_SPLIT's thread count (0: unset).
var envForced int

// ForceSplit, for tests, makes Split ignore minWork and answer threads, so
// that small test inputs take the same parallel paths as large models.
// threads <= 0 restores the default: ONNXQ_FORCE_SPLIT's count when set
// (a test that forces a split for a while and then restores must not turn
// the variable off for the tests after it), else none.
func ForceSplit(threads int) {
	fromEnv() // so that a later first Split does not override this
	if threads <= 0 {
		threads = envForced
	}
	forced.Store(int64(threads))
}

// ForcedSplit is the thread count ForceSplit or ONNXQ_FORCE_SPLIT set (0:
// none), for a test that turns it off for a while and back.
func ForcedSplit() int {
	fromEnv()
	return int(forced.Load())
}
