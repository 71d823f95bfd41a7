package diagnose

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/onnxq/onnxq/converter/dataset"
	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/internal/heappace"
)

// laneConstBytes bounds the two models' constants for which Compare runs
// samples side by side: each lane compiles both models, weights included.
const laneConstBytes = 128 << 20

// compareLanes is how many samples Compare runs at once after the first,
// each lane with a session per model: one thread a lane where a small
// model's run gains little from a second thread inside it, and the lanes
// keep the cores busy (as calibration and sensitivity do). One lane with
// Stats (a histogram's grid follows the order it sees the values in) or
// constants over laneConstBytes.
func compareLanes(ref, test *graph.Model, samples int, opt Options) int {
	lanes := min(opt.Threads, samples-1, maxLanes)
	if lanes < 2 || opt.Stats {
		return 1
	}
	if graph.Summarize(ref).ParameterBytes+graph.Summarize(test).ParameterBytes > laneConstBytes {
		return 1
	}
	return lanes
}

// foldRec is one fold of a sample into a pair, measured in a lane: the
// sums it adds, or a note (with soft, only where the pair has none yet).
type foldRec struct {
	pair int
	m    AccSample
	note string
	soft bool
}

// apply adds a lane's fold to the pair's state.
func (st *pairState) apply(f foldRec) {
	if f.note != "" {
		if !f.soft || st.note == "" {
			st.note = f.note
		}
		return
	}
	st.acc.Apply(f.m)
}

// compareInLanes runs samples [1, n) of Compare on lanes runners (first,
// which ran sample 0 and so decided every pair's layout, and lanes-1 new
// ones), claiming the samples in turn. Each lane measures its sample's
// folds against the decided layouts and adds them to the states in sample
// order, waiting for the samples before its own: the sums are those one
// runner gives, bit for bit. Every sample before the first that fails has
// run when that one's error is returned, as one runner would report it.
func compareInLanes(ctx context.Context, ref, test *graph.Model, src dataset.Source, states []*pairState, first *runner, lanes int, opt Options) error {
	dataset.KeepAhead(src, lanes)
	runners := make([]*runner, lanes)
	runners[0] = first
	pending := make([][]foldRec, lanes)
	first.pending = &pending[0]
	defer func() { first.pending = nil }()
	n := src.Len()
	errs := make([]error, n)
	var (
		next      atomic.Int64
		stop      atomic.Bool
		mu        sync.Mutex // the states, committed, the pacer and Progress
		turn      = sync.NewCond(&mu)
		committed = 1 // samples whose folds are in
		pacer     = heappace.New()
		wg        sync.WaitGroup
		ctxErr    error // the context's error, or a lane's sessions'
		errOnce   sync.Once
	)
	next.Store(1)
	halt := func() {
		stop.Store(true)
		mu.Lock()
		turn.Broadcast()
		mu.Unlock()
	}
	for l := range runners {
		wg.Go(func() {
			// The other lanes compile their sessions side by side with
			// the first lane's samples (FastestDet: two models, 20-30 ms).
			r := runners[l]
			if r == nil {
				var err error
				if r, err = newRunner(ref, test, states, max(1, opt.Threads/lanes), opt.Reference); err != nil {
					errOnce.Do(func() { ctxErr = err })
					halt()
					return
				}
				r.pending = &pending[l]
			}
			for !stop.Load() {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := ctx.Err(); err != nil {
					errOnce.Do(func() { ctxErr = err })
					halt()
					return
				}
				pending[l] = pending[l][:0]
				smp, err := src.Sample(i) // each lane decodes its own images
				if err == nil {
					if err = r.run(i, smp); err != nil {
						err = fmt.Errorf("sample %d: %w", i, err)
					}
				}
				if err != nil {
					errs[i] = err
					halt()
					return
				}
				mu.Lock()
				for committed != i && !stop.Load() {
					turn.Wait()
				}
				if stop.Load() {
					mu.Unlock()
					return
				}
				for _, f := range pending[l] {
					states[f.pair].apply(f)
				}
				committed++
				turn.Broadcast()
				pacer.BetweenSamples()
				if opt.Progress != nil {
					opt.Progress(i+1, n)
				}
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
	return ctxErr
}
