package converter

import (
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"math"
	"runtime"
	"sync"

	"github.com/onnxq/onnxq/converter/calib"
	"github.com/onnxq/onnxq/converter/dataset"
	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/internal/heappace"
	"github.com/onnxq/onnxq/kernels"
	"github.com/onnxq/onnxq/passes"
)

// calibrate runs every sample through the float model once, feeding the
// observed tensors to their observers.
func calibrate(ctx context.Context, m *graph.Model, src dataset.Source, names []string, opt Options, st *settings, means *channelMeans) (map[string][2]float32, map[string]string, error) {
	// Only the observed tensors (and bias correction's inputs) are tapped, so
	// elementwise chains between them still run fused.
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	if means != nil {
		for n := range means.byInput {
			want[n] = true
		}
	}
	if lanes := calibLanes(m, src.Len(), opt, st, names); lanes > 1 {
		return calibrateLanes(ctx, m, src, names, opt, st, means, want, lanes)
	}
	obs := map[string]calib.Observer{}
	async, anyAsync := map[string]bool{}, false
	for _, n := range names {
		c := st.observer(n, opt)
		c.Threads = opt.Threads
		o, err := calib.New(c)
		if err != nil {
			return nil, nil, fmt.Errorf("tensor %q: %v", n, err)
		}
		obs[n] = o
		// With one thread asked for, everything stays on the run's goroutine.
		async[n] = c.Histogram() && opt.Threads != 1 && runtime.GOMAXPROCS(0) > 1
		anyAsync = anyAsync || async[n]
	}
	var s *kernels.Session
	w := startObserverWorker(func(t *graph.Tensor) { s.Release(t) })
	defer w.stop()
	s, err := kernels.NewSession(m, kernels.Options{Threads: opt.Threads, TapOnly: want, TapHolds: anyAsync, Tap: func(name string, t *graph.Tensor) {
		if means != nil {
			means.observe(name, t)
		}
		if o, ok := obs[name]; ok && t.DType == graph.Float {
			if async[name] {
				if t.Len() <= asyncMax {
					w.send(name, o, t)
					return
				}
				// The worker may still have this observer's tensor from an
				// earlier sample (shapes can change between samples).
				w.flush()
			}
			o.Observe(t.Float32s())
		}
		s.Release(t)
	}})
	if err != nil {
		return nil, nil, err
	}
	n := src.Len()
	pacer := heappace.New()
	for i := 0; i < n; i++ {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		smp, err := src.Sample(i)
		if err != nil {
			return nil, nil, err
		}
		outs, err := s.Run(smp)
		if err != nil {
			return nil, nil, fmt.Errorf("calibration sample %d: %w", i, err)
		}
		s.Recycle(outs)
		if err := w.err(); err != nil {
			return nil, nil, err
		}
		pacer.BetweenSamples()
		if opt.Progress != nil {
			opt.Progress(i+1, n)
		}
	}
	w.stop()
	if err := w.err(); err != nil {
		return nil, nil, err
	}
	return ranges(names, obs, opt.Threads)
}

// observerWorker runs histogram observers on a goroutine of its own, so
// counting overlaps the model's next steps instead of stalling them (the
// executor rarely keeps both cores busy): the session holds each tapped
// buffer until its observer is done and the worker releases it. One worker
// keeps each observer's tensors in run order; the queue bounds the tensors
// held at once. Min/max is cheap enough to run in the tap: holding buffers
// would only cost memory.
type observerWorker struct {
	jobs     chan observeJob
	pending  sync.WaitGroup // jobs sent and not yet observed
	done     chan struct{}
	stopOnce sync.Once
	mu       sync.Mutex
	failed   error // the first failure
}

type observeJob struct {
	name string
	o    calib.Observer
	t    *graph.Tensor
}

func startObserverWorker(release func(*graph.Tensor)) *observerWorker {
	w := &observerWorker{jobs: make(chan observeJob, observeQueue), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for j := range w.jobs {
			if err := observe(j.name, j.o, j.t); err != nil {
				w.mu.Lock()
				w.failed = cmp.Or(w.failed, err)
				w.mu.Unlock()
			}
			release(j.t)
			w.pending.Done()
		}
	}()
	return w
}

// send queues t for o, waiting while the queue is full.
func (w *observerWorker) send(name string, o calib.Observer, t *graph.Tensor) {
	w.pending.Add(1)
	w.jobs <- observeJob{name, o, t}
}

// flush waits until every tensor sent has been observed.
func (w *observerWorker) flush() { w.pending.Wait() }

// stop observes what is queued and ends the worker; it may be called again.
func (w *observerWorker) stop() {
	w.stopOnce.Do(func() {
		close(w.jobs)
		<-w.done
	})
}

func (w *observerWorker) err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.failed
}

// rangeOf asks o for its range on a goroutine of ranges, where a panic
// would end the process. A panic is a bug and fails the conversion (crashed
// set); an error is about the tensor's data and keeps only it float.
func rangeOf(o calib.Observer) (r [2]float32, err error, crashed bool) {
	defer func() {
		if p := recover(); p != nil {
			err, crashed = fmt.Errorf("range search failed: %v", p), true
		}
	}()
	r[0], r[1], err = o.Range()
	return r, err, false
}

// observe feeds t to o on the observer worker, where a panic would end the
// process with a stack trace instead of the one-line error every failure gets.
func observe(name string, o calib.Observer, t *graph.Tensor) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("tensor %q: observer failed: %v", name, r)
		}
	}()
	o.Observe(t.Float32s())
	return nil
}

// observeQueue is how many tapped tensors may wait for the observer worker.
const observeQueue = 2

// asyncMax is the largest tensor (in values) handed to the observer worker
// (4 MiB): a held tensor makes the run allocate another for its next use, so
// larger ones are counted in the tap, on two goroutines, where waiting for the
// second costs little next to the count (PaddleOCR det at 640x640, entropy:
// peak RSS 497 MiB handing every tensor over, 414 with this, 416 before any).
var asyncMax = 1 << 20 // a variable for tests

// ranges asks every observer for its range, on as many goroutines as the
// threads allowed: the entropy and MSE searches take a second or more on a
// model with a few hundred tensors. A range the observer cannot give (no
// finite values seen, say) is not the whole conversion's failure: the tensor
// goes into failed with the reason and stays float. A crash is an error; the
// first in names order wins.
func ranges(names []string, obs map[string]calib.Observer, threads int) (got map[string][2]float32, failed map[string]string, err error) {
	if threads <= 0 {
		threads = runtime.GOMAXPROCS(0)
	}
	rs := make([][2]float32, len(names))
	errs := make([]error, len(names))
	crashed := make([]bool, len(names))
	next := make(chan int, len(names))
	for i := range names {
		next <- i
	}
	close(next)
	var wg sync.WaitGroup
	for range min(threads, len(names)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				rs[i], errs[i], crashed[i] = rangeOf(obs[names[i]])
			}
		}()
	}
	wg.Wait()
	got, failed = make(map[string][2]float32, len(names)), map[string]string{}
	for i, n := range names {
		switch {
		case crashed[i]:
			return nil, nil, fmt.Errorf("tensor %q: %v", n, errs[i])
		case errs[i] != nil:
			failed[n] = fmt.Sprintf("observer: %v (is it computed, with finite values, for these inputs?)", errs[i])
		default:
			got[n] = rs[i]
		}
	}
	return got, failed, nil
}

// insertHook lets tests change the plan just before insertion.
var insertHook = func(*passes.QDQPlan) {}

// channelMeans accumulates, for the input of every Conv/Gemm with a quantized
// weight and a bias, the mean of each channel (axis 1) over the calibration data.
type channelMeans struct {
	byInput map[string]*meanAcc // input value name
	byNode  map[*graph.Node]string
}

type meanAcc struct {
	sum   []float64
	count float64
}

func newChannelMeans(g *graph.Graph, pl *plan) *channelMeans {
	cm := &channelMeans{byInput: map[string]*meanAcc{}, byNode: map[*graph.Node]string{}}
	for _, n := range g.Nodes {
		if n.OpType != "Conv" && n.OpType != "Gemm" {
			continue
		}
		w, b := n.Input(1), n.Input(2)
		if w == nil || b == nil {
			continue
		}
		if _, ok := pl.weights[w.Name]; !ok {
			continue
		}
		if in := n.Input(0); in != nil {
			cm.byNode[n] = in.Name
			cm.byInput[in.Name] = &meanAcc{}
		}
	}
	return cm
}

func (cm *channelMeans) observe(name string, t *graph.Tensor) {
	if ms, ok := cm.sample(name, t); ok {
		cm.add(name, ms)
	}
}

// meanSample is one sample's contribution to a tensor's channel means:
// each row's (outer index's) float64 sum of every channel, c channels a
// row, n values a channel.
type meanSample struct {
	sums []float64
	c    int
	n    float64
}

// sample computes name's meanSample from t; false when t is not a tensor
// to average. It reads only t, so lanes compute theirs at once.
func (cm *channelMeans) sample(name string, t *graph.Tensor) (meanSample, bool) {
	if _, ok := cm.byInput[name]; !ok || t.DType != graph.Float || t.Rank() < 2 {
		return meanSample{}, false
	}
	c := t.Shape[1]
	outer, inner := t.Shape[0], graph.Numel(t.Shape[2:])
	d := t.Float32s()
	ms := meanSample{sums: make([]float64, outer*c), c: c, n: float64(outer * inner)}
	for o := 0; o < outer; o++ {
		for ch := 0; ch < c; ch++ {
			var s float64
			for _, v := range d[(o*c+ch)*inner : (o*c+ch+1)*inner] {
				s += float64(v)
			}
			ms.sums[o*c+ch] = s
		}
	}
	return ms, true
}

// add takes one sample into name's means: its rows' sums channel by
// channel, so samples added in sample order give the same bits wherever
// they were computed. A sample whose channels differ from the first's is
// left out.
func (cm *channelMeans) add(name string, ms meanSample) {
	acc := cm.byInput[name]
	if acc.sum == nil {
		acc.sum = make([]float64, ms.c)
	}
	if len(acc.sum) != ms.c {
		return
	}
	for o := 0; o < len(ms.sums)/max(1, ms.c); o++ {
		for ch := 0; ch < ms.c; ch++ {
			acc.sum[ch] += ms.sums[o*ms.c+ch]
		}
	}
	acc.count += ms.n
}

func (cm *channelMeans) InputMean(n *graph.Node) ([]float32, bool) {
	acc, ok := cm.byInput[cm.byNode[n]]
	if !ok || acc.count == 0 {
		return nil, false
	}
	out := make([]float32, len(acc.sum))
	for i, s := range acc.sum {
		out[i] = float32(s / acc.count)
	}
	return out, true
}

// runCalibration opens the dataset for the model's inputs and fills ranges for
// the tensors to observe (and the input means for bias correction).
func runCalibration(ctx context.Context, m *graph.Model, opt Options, pl *plan, st *settings, weights map[string]*passes.Encoding, rounded map[string][]float32, toObserve []string, rep *Report, ranges map[string][2]float32, state uint64) error {
	src, err := dataset.Open(opt.Calib, dataset.InputsOf(m), opt.Dataset)
	if err != nil {
		return err
	}
	rep.Samples = src.Len()
	var means *channelMeans
	if opt.BiasCorrection {
		means = newChannelMeans(m.Graph, pl)
	}
	// Ranges an earlier conversion of the same model and data computed with
	// the same observer need no second pass.
	cache := opt.RangeCache
	if means != nil {
		cache = nil
	}
	var missing []string
	for _, name := range toObserve {
		if r, ok := cache.get(name, st.observer(name, opt), state); ok {
			ranges[name] = r
		} else {
			missing = append(missing, name)
		}
	}
	if len(missing) == 0 && means == nil {
		return nil
	}
	got, failed, err := calibrate(ctx, m, src, missing, opt, st, means)
	if err != nil {
		return err
	}
	for k, v := range got {
		cache.put(k, st.observer(k, opt), state, v)
	}
	pl.keepFloatActivations(failed, rep)
	// The session's buffers and the histograms are garbage now; collect them
	// before quantization allocates, or the heap grows past twice their size
	// first (PaddleOCR rec, entropy, 100 samples: peak RSS 113-116 -> 101-105 MiB).
	runtime.GC()
	for k, v := range got {
		ranges[k] = v
	}
	if means != nil {
		c := &passes.Change{Pass: "bias-correction (empirical)"}
		if err := passes.CorrectBias(m, means, func(n *graph.Node, w *graph.Tensor) ([]float32, error) {
			enc := weights[n.Input(1).Name]
			if enc == nil {
				return nil, nil // a float weight has no quantization error
			}
			if r, ok := rounded[n.Input(1).Name]; ok {
				return r, nil // the rounding engine's codes
			}
			return enc.FakeQuantize(w.Float32s(), w.Shape)
		}, c); err != nil {
			return err
		}
		rep.Passes = append(rep.Passes, c)
	}
	return nil
}

// RangeCache keeps calibrated ranges between conversions of one model on one
// calibration set (tune converts it once per candidate). A range is reused
// only for the same tensor, the same observer settings and the same float
// rewrites before calibration (floatState); entropy and MSE depend on the
// tensor's type, so a raised tensor calibrates again.
type RangeCache struct {
	mu sync.Mutex
	m  map[rangeKey][2]float32
}

type rangeKey struct {
	name  string
	obs   calib.Config
	state uint64
}

func keyOf(name string, c calib.Config, state uint64) rangeKey {
	c.Threads = 0
	if c.Kind == "" || c.Kind == "minmax" || c.Kind == "percentile" {
		c.Levels = 0 // these ranges do not depend on the type
	}
	return rangeKey{name, c, state}
}

func (rc *RangeCache) get(name string, c calib.Config, state uint64) ([2]float32, bool) {
	if rc == nil {
		return [2]float32{}, false
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	r, ok := rc.m[keyOf(name, c, state)]
	return r, ok
}

func (rc *RangeCache) put(name string, c calib.Config, state uint64, r [2]float32) {
	if rc == nil {
		return
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.m == nil {
		rc.m = map[rangeKey][2]float32{}
	}
	rc.m[keyOf(name, c, state)] = r
}

// floatState fingerprints the float rewrites that depend on the tensors'
// types and run before calibration, so that the range cache tells their
// outcomes apart: default SmoothQuant smooths only MatMuls whose inputs are
// 8-bit (a raised input leaves its MatMul and the LayerNorm before it
// unscaled: other values under the same names), and AWQ's inserted Mul by
// 1/s depends on the weight's type. sq is the smoothing change (its notes
// name each tensor and strength), inserted AWQ's Mul outputs.
func floatState(g *graph.Graph, sq *passes.Change, inserted []string) uint64 {
	var h maphash.Hash
	h.SetSeed(stateSeed)
	if sq != nil {
		for _, note := range sq.Notes {
			h.WriteString(note)
			h.WriteByte(0)
		}
	}
	for _, name := range inserted {
		h.WriteString(name)
		v := g.Value(name)
		if v == nil || v.Producer == nil {
			continue
		}
		for _, in := range v.Producer.Inputs {
			if in != nil && in.Const != nil && in.Const.DType == graph.Float && in.Const.Loaded() {
				for _, f := range in.Const.Float32s() {
					var b [4]byte
					binary.LittleEndian.PutUint32(b[:], math.Float32bits(f))
					h.Write(b[:])
				}
			}
		}
	}
	return h.Sum64()
}

// stateSeed keeps floatState's hashes comparable within a process.
var stateSeed = maphash.MakeSeed()
