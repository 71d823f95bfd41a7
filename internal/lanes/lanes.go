// Package lanes runs the samples of a loop side by side, a goroutine a
// lane, and hands their results over in sample order: calibration and
// compare run one session (or pair) a lane this way, where a small model's
// run gains little from a second thread inside it.
package lanes

import (
	"context"
	"sync"
	"sync/atomic"
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
