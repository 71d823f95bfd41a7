// Package lanes runs the samples of a loop side by side, a goroutine a
// lane, and hands their results over in sample order: calibration and
// compare run one session (or pair) a lane this way, where a small model's
// run gains little from a second thread inside it.
package lanes

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/onnxq/onnxq/graph"
)

// Run calls work(lane, i) for every sample i in [from, n) on lanes
// goroutines, each claiming the next sample in turn, then commit(lane, i)
// under one lock: in sample order when ordered (a lane waits for the
// samples before its own), else as the samples finish. setup(lane), when
// not nil, runs first on each lane's goroutine (lane 0's too). A failing
// sample stops the claims; every sample before it has run when Run
// returns, and the error of the first failing sample is returned, as a
// loop over the samples one at a time would report it; then a setup's
// error, then the context's.
func Run(ctx context.Context, lanes, from, n int, ordered bool, setup func(lane int) error, work func(lane, i int) error, commit func(lane, i int)) error {
	if from >= n {
		return ctx.Err()
	}
	errs := make([]error, n)
	var (
		next      atomic.Int64
		stop      atomic.Bool
		mu        sync.Mutex // commit and committed
		turn      = sync.NewCond(&mu)
		committed = from
		wg        sync.WaitGroup
		other     error
		otherOnce sync.Once
	)
	next.Store(int64(from))
	halt := func() {
		stop.Store(true)
		mu.Lock()
		turn.Broadcast()
		mu.Unlock()
	}
	fail := func(err error) {
		otherOnce.Do(func() { other = err })
		halt()
	}
	for l := range lanes {
		wg.Go(func() {
			if setup != nil {
				if err := setup(l); err != nil {
					fail(err)
					return
				}
			}
			for !stop.Load() {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := ctx.Err(); err != nil {
					fail(err)
					return
				}
				if err := work(l, i); err != nil {
					errs[i] = err
					halt()
					return
				}
				mu.Lock()
				for ordered && committed != i && !stop.Load() {
					turn.Wait()
				}
				if stop.Load() {
					mu.Unlock()
					return
				}
				commit(l, i)
				committed++
				turn.Broadcast()
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return other
}

// Max bounds the lanes of a loop: each holds a session (or pair) and its
// buffers.
const Max = 8

// ConstBytes bounds the models' constants (initializers and Constant
// nodes, where paddle2onnx keeps the weights) for which a loop runs in
// lanes: each lane compiles the models, weights included.
const ConstBytes = 128 << 20

// Count is how many lanes a loop of samples runs on threads: one a sample
// and a thread, at most Max, and one when the models' constants together
// are over ConstBytes.
func Count(threads, samples int, models ...*graph.Model) int {
	n := min(threads, samples, Max)
	if n < 2 {
		return 1
	}
	var bytes int64
	for _, m := range models {
		bytes += graph.Summarize(m).ParameterBytes
	}
	if bytes > ConstBytes {
		return 1
	}
	return n
}
