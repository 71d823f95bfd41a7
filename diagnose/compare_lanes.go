package diagnose

import (
	"context"
	"fmt"

	"github.com/onnxq/onnxq/converter/dataset"
	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/internal/heappace"
	"github.com/onnxq/onnxq/internal/lanes"
)

// laneHeldBytes bounds the tensors the first sample held at once (a
// layerwise comparison holds the first model's matched tensors until the
// second model's come) for which Compare runs samples side by side: each
// lane holds as much again.
const laneHeldBytes = 32 << 20

// compareLanes is how many samples Compare runs at once after the first,
// each lane with a session per model: one thread a lane where a small
// model's run gains little from a second thread inside it, and the lanes
// keep the cores busy (as calibration and sensitivity do). One lane with
// Stats (a histogram's grid follows the order it sees the values in); see
// lanes.Count for the rest.
func compareLanes(ref, test *graph.Model, samples int, opt Options) int {
	if opt.Stats {
		return 1
	}
	return lanes.Count(opt.Threads, samples-1, ref, test)
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

// compareInLanes runs samples [1, n) of Compare on count runners (first,
// which ran sample 0 and so decided every pair's layout, and count-1 new
// ones) with lanes.Run. Each lane measures its sample's folds against the
// decided layouts and adds them to the states in sample order: the sums
// are those one runner gives, bit for bit, and the error the one a runner
// would report.
func compareInLanes(ctx context.Context, ref, test *graph.Model, src dataset.Source, states []*pairState, first *runner, count int, opt Options) error {
	dataset.KeepAhead(src, count)
	runners := make([]*runner, count)
	runners[0] = first
	pending := make([][]foldRec, count)
	first.pending = &pending[0]
	defer func() { first.pending = nil }()
	n := src.Len()
	pacer := heappace.New()
	// The other lanes compile their sessions side by side with the first
	// lane's samples (FastestDet: two models, 20-30 ms).
	setup := func(l int) error {
		if runners[l] != nil {
			return nil
		}
		r, err := newRunner(ref, test, states, max(1, opt.Threads/count), opt.Reference, opt.Packs)
		if err != nil {
			return err
		}
		r.pending, runners[l] = &pending[l], r
		return nil
	}
	work := func(l, i int) error {
		pending[l] = pending[l][:0]
		smp, err := src.Sample(i) // each lane decodes its own images
		if err != nil {
			return err
		}
		if err := runners[l].run(i, smp); err != nil {
			return fmt.Errorf("sample %d: %w", i, err)
		}
		return nil
	}
	commit := func(l, i int) {
		for _, f := range pending[l] {
			states[f.pair].apply(f)
		}
		pacer.BetweenSamples()
		if opt.Progress != nil {
			opt.Progress(i+1, n)
		}
	}
	return lanes.Run(ctx, count, 1, n, true, setup, work, commit)
}
