package converter

import (
	"context"
	"fmt"
	"runtime"
	"sync"

	"github.com/onnxq/onnxq/converter/calib"
	"github.com/onnxq/onnxq/converter/dataset"
	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/internal/heappace"
	"github.com/onnxq/onnxq/internal/lanes"
	"github.com/onnxq/onnxq/kernels"
)

// calibLanes is how many samples calibration runs at once, each on a
// session of its own: more than one when threads allow it and the result
// cannot depend on the order the samples are run in. Min/max (without a
// moving average) and the histograms (whose grid is the same whatever the
// order, see calib) are order-free; bias correction's float64 channel sums
// are added in sample order (see calibrateLanes); a moving average would
// need its observations in order, and keeps one session. A small model's
// run gains little from a second thread inside it (FastestDet at 2 threads
// took longer than at 1), two runs at once keep both cores busy.
func calibLanes(m *graph.Model, samples int, opt Options, st *settings, names []string) int {
	threads := opt.Threads
	if threads <= 0 {
		threads = runtime.GOMAXPROCS(0)
	}
	for _, n := range names {
		if st.observer(n, opt).Momentum > 0 {
			return 1
		}
	}
	return lanes.Count(threads, samples, m)
}

// calibrateLanes is calibrate on count > 1 sessions (see calibLanes),
// claiming the samples in turn (lanes.Run); each observer takes one tensor
// at a time. Bias correction's channel sums (means, or nil) are computed in
// the lanes and added in sample order, so the means have the bits one
// session gives; the error is the one a single session would give.
func calibrateLanes(ctx context.Context, m *graph.Model, src dataset.Source, names []string, opt Options, st *settings, means *channelMeans, want map[string]bool, count int) (map[string][2]float32, map[string]string, error) {
	threads := opt.Threads
	if threads <= 0 {
		threads = runtime.GOMAXPROCS(0)
	}
	type observed struct {
		mu sync.Mutex
		o  calib.Observer
	}
	obs := map[string]*observed{}
	plain := map[string]calib.Observer{}
	for _, n := range names {
		c := st.observer(n, opt)
		c.Threads = 1 // the lanes are the parallelism
		o, err := calib.New(c)
		if err != nil {
			return nil, nil, fmt.Errorf("tensor %q: %v", n, err)
		}
		obs[n], plain[n] = &observed{o: o}, o
	}
	type pendingMean struct {
		name string
		ms   meanSample
	}
	sessions := make([]*kernels.Session, count)
	packs := kernels.NewPackCache()         // the lanes' sessions, of one model, pack its weights once
	pending := make([][]pendingMean, count) // a lane's sample's means, to add in turn
	for l := range sessions {
		s, err := kernels.NewSession(m, kernels.Options{Threads: max(1, threads/count), Packs: packs, TapOnly: want, Tap: func(name string, t *graph.Tensor) {
			if means != nil {
				if ms, ok := means.sample(name, t); ok {
					pending[l] = append(pending[l], pendingMean{name, ms})
				}
			}
			if o, ok := obs[name]; ok && t.DType == graph.Float {
				o.mu.Lock()
				o.o.Observe(t.Float32s())
				o.mu.Unlock()
			}
		}})
		if err != nil {
			return nil, nil, err
		}
		sessions[l] = s
	}
	n := src.Len()
	dataset.KeepAhead(src, count)
	// The pacer collects once 1 MiB of garbage has built up, not a quarter
	// of the heap: with two lanes' garbage interleaved, a quarter let
	// stories260K's calibration peak 11% higher with 100 samples than with
	// 10 (38.0 -> 42.0-42.6 MiB; now 37.2-37.6 -> 38.3-39.4), at no cost in
	// time there (0.98-1.00 s both ways) and less memory on the YOLO-style
	// detector (120 -> 101 MB).
	pacer := heappace.NewAllowing(1 << 20)
	done := 0
	work := func(l, i int) error {
		pending[l] = pending[l][:0]
		smp, err := src.Sample(i) // each lane decodes its own images
		if err != nil {
			return err
		}
		outs, err := sessions[l].Run(smp)
		if err != nil {
			return fmt.Errorf("calibration sample %d: %w", i, err)
		}
		sessions[l].Recycle(outs)
		return nil
	}
	commit := func(l, i int) {
		for _, p := range pending[l] {
			means.add(p.name, p.ms)
		}
		done++
		pacer.BetweenSamples()
		if opt.Progress != nil {
			opt.Progress(done, n)
		}
	}
	// Bias correction's sums go in in sample order; the observers take
	// their tensors as they come (their results do not depend on it).
	if err := lanes.Run(ctx, count, 0, n, means != nil, nil, work, commit); err != nil {
		return nil, nil, err
	}
	return ranges(names, plain, opt.Threads)
}
