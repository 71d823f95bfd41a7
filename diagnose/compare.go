package diagnose

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/onnxq/onnxq/converter/calib"
	"github.com/onnxq/onnxq/converter/dataset"
	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/kernels"
)

// Options configure a comparison.
type Options struct {
	// Threads for each model's run (0: all cores); the models run one after
	// the other on each sample.
	Threads int
	// Layerwise compares every matched intermediate tensor, not only outputs.
	Layerwise bool
	// Stats keeps a histogram per matched tensor and side, for quartiles and
	// plots (the MindSpore debug set).
	Stats bool
	// Bins of the statistics histograms (default 2048).
	Bins int
	// CosThreshold and SQNRThreshold mark the first bad tensor (defaults 0.99
	// and 20 dB).
	CosThreshold, SQNRThreshold float64
	// Progress, when set, is called after each sample.
	Progress func(done, total int)
	// Reference, when set, holds the first model's outputs on the samples
	// (NewReference): the first model is not run. Outputs only.
	Reference *Reference
	// Packs, when set, is where the sessions find and leave their packed
	// weights (tune passes one for all its candidates, which share most
	// weights); by default the call has a cache of its own, which the
	// lanes' sessions of each model share.
	Packs *kernels.PackCache
}

func (o *Options) defaults() {
	if o.CosThreshold == 0 {
		o.CosThreshold = 0.99
	}
	if o.SQNRThreshold == 0 {
		o.SQNRThreshold = 20
	}
	if o.Threads <= 0 {
		o.Threads = runtime.GOMAXPROCS(0)
	}
	if o.Packs == nil {
		o.Packs = kernels.NewPackCache()
	}
}

// Summary describes one side of a tensor over all samples.
type Summary struct {
	Min       float64 `json:"min"`
	Q1        float64 `json:"q1"`
	Median    float64 `json:"median"`
	Q3        float64 `json:"q3"`
	Max       float64 `json:"max"`
	Mean      float64 `json:"mean"`
	Variance  float64 `json:"variance"`
	ZeroShare float64 `json:"zero_share"`
}

// Hist is an equal-width histogram over [Lo, Hi].
type Hist struct {
	Lo     float64   `json:"lo"`
	Hi     float64   `json:"hi"`
	Counts []float64 `json:"counts"`
}

// TensorStats are the float and dequantized statistics of one tensor.
type TensorStats struct {
	Float    Summary `json:"float"`
	Dequant  Summary `json:"dequantized"`
	ClipRate float64 `json:"clip_rate"` // share of float values outside the quantization range
	Hist     *Hist   `json:"histogram,omitempty"`
}

// TensorResult is the comparison of one tensor.
type TensorResult struct {
	Name     string   `json:"name"`
	TestName string   `json:"test_name,omitempty"`
	Node     string   `json:"node,omitempty"`
	OpType   string   `json:"op_type,omitempty"`
	Index    int      `json:"index"`
	Cosine   float64  `json:"cosine"`
	SQNR     float64  `json:"sqnr_db"`
	MSE      float64  `json:"mse"`
	MaxAbs   float64  `json:"max_abs_error"`
	Top1     *float64 `json:"top1_agreement,omitempty"`
	// ChannelSQNR is the median of the per-channel SQNRs (dB): low where a
	// per-tensor encoding rounded the small channels away while the big one
	// carries the total.
	ChannelSQNR *float64     `json:"channel_sqnr_db,omitempty"`
	Values      int64        `json:"values"`
	Quant       *QuantInfo   `json:"quantization,omitempty"`
	Stats       *TensorStats `json:"stats,omitempty"`
	Note        string       `json:"note,omitempty"`
}

// Bad reports whether the tensor misses a threshold.
func (t *TensorResult) Bad(cos, sqnr float64) bool {
	return t.Values > 0 && (t.Cosine < cos || t.EffectiveSQNR() < sqnr)
}

// EffectiveSQNR is the lower of the total and the median channel SQNR.
func (t *TensorResult) EffectiveSQNR() float64 {
	if t.ChannelSQNR != nil {
		return math.Min(t.SQNR, *t.ChannelSQNR)
	}
	return t.SQNR
}

// Result is a finished comparison.
type Result struct {
	Samples int            `json:"samples"`
	Outputs []TensorResult `json:"outputs"`
	Layers  []TensorResult `json:"layers,omitempty"`
	// FirstBad is the first tensor in topological order under a threshold.
	FirstBad string `json:"first_bad,omitempty"`
	// WorstContributor is the tensor that adds the most noise relative to
	// its producer's inputs (noise-to-signal ratio after, minus the worst
	// one before): where the error is made, not where it is seen.
	WorstContributor string  `json:"worst_contributor,omitempty"`
	WorstAddedNSR    float64 `json:"worst_added_nsr,omitempty"`
	Thresholds       struct {
		Cos  float64 `json:"cosine"`
		SQNR float64 `json:"sqnr_db"`
	} `json:"thresholds"`
	Seconds float64 `json:"seconds"`
}

// pairState accumulates one pair over the samples.
type pairState struct {
	Pair
	acc       Acc
	ref, test *calib.Distribution
	note      string
	// decided: the first tensors compared set the channel and class layout
	// of acc (decide), which every later sample keeps; untyped: the pair
	// is not float32 on both sides, which the graph fixes for every sample.
	decided, untyped bool
}

// Compare runs ref and test on every sample of src, side by side, and measures
// test against ref on the outputs (and, with Layerwise, every matched tensor).
// Memory does not grow with the number of samples: each tensor pair is folded
// into running sums as soon as both sides have produced it.
func Compare(ctx context.Context, ref, test *graph.Model, src dataset.Source, opt Options) (*Result, error) {
	opt.defaults()
	if opt.Reference != nil {
		if why := opt.Reference.fits(ref, src, opt); why != "" {
			return nil, fmt.Errorf("compare: %s", why)
		}
	}
	pairs, err := Match(ref, test, opt.Layerwise)
	if err != nil {
		return nil, err
	}
	if opt.Layerwise && !slices.ContainsFunc(pairs, func(p Pair) bool { return !p.Output }) {
		return nil, fmt.Errorf("the models have no intermediate tensors in common (by name or through Q/DQ pairs): nothing to compare layer by layer")
	}
	states := make([]*pairState, len(pairs))
	for i, p := range pairs {
		st := &pairState{Pair: p}
		if opt.Stats {
			st.ref, st.test = calib.NewDistribution(opt.Bins), calib.NewDistribution(opt.Bins)
			if q := p.Quant; q != nil && q.Hi > q.Lo {
				// Clipped: rounds to a level outside the grid. Half a step
				// beyond the last level still rounds onto it.
				st.ref.SetClip(q.Lo-q.Scale/2, q.Hi+q.Scale/2)
			}
		}
		states[i] = st
	}
	markClassOutputs(ref, states)
	start := time.Now()
	n := src.Len()
	lanes := compareLanes(ref, test, n, opt)
	r, err := newRunner(ref, test, states, max(1, opt.Threads/lanes), opt.Reference, opt.Packs)
	if err != nil {
		return nil, err
	}
	for i := 0; i < n; i++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		// After the first sample, which decides every pair's layout, the
		// others run side by side (compare_lanes.go) if it held few
		// tensors at once: each lane holds as many again (a layerwise
		// comparison holds the first model's matched tensors until the
		// second's come). Else one runner on every thread: that, too, when
		// a pair is still undecided (not produced in the first sample, or
		// of other shapes), which any later sample could decide.
		if i == 1 && lanes > 1 {
			settled := !slices.ContainsFunc(states, func(st *pairState) bool { return !st.decided && !st.untyped })
			if settled && r.peakHeld <= laneHeldBytes {
				if err := compareInLanes(ctx, ref, test, src, states, r, lanes, opt); err != nil {
					return nil, err
				}
				break
			}
			r = nil
			runtime.GC() // the first runner's sessions and pool go before the next is made
			if r, err = newRunner(ref, test, states, opt.Threads, opt.Reference, opt.Packs); err != nil {
				return nil, err
			}
		}
		smp, err := src.Sample(i)
		if err != nil {
			return nil, err
		}
		if err := r.run(i, smp); err != nil {
			return nil, fmt.Errorf("sample %d: %w", i, err)
		}
		// Collect between samples every so often, when only the sessions and
		// the accumulators are live, so the heap is sized from that baseline
		// and peak RSS stays flat however many samples run (as calibration does).
		if i%8 == 7 {
			runtime.GC()
		}
		if opt.Progress != nil {
			opt.Progress(i+1, n)
		}
	}
	res := &Result{Samples: n, Seconds: time.Since(start).Seconds()}
	res.Thresholds.Cos, res.Thresholds.SQNR = opt.CosThreshold, opt.SQNRThreshold
	bySQNR := map[string]float64{} // effective SQNR
	for _, st := range states {
		tr := st.result()
		if st.Output {
			res.Outputs = append(res.Outputs, tr)
		} else {
			res.Layers = append(res.Layers, tr)
		}
		if tr.Values > 0 {
			bySQNR[st.Ref] = tr.EffectiveSQNR()
		}
	}
	for i := range res.Layers {
		if res.Layers[i].Bad(opt.CosThreshold, opt.SQNRThreshold) {
			res.FirstBad = res.Layers[i].Name
			break
		}
	}
	if res.FirstBad == "" {
		for i := range res.Outputs {
			if res.Outputs[i].Bad(opt.CosThreshold, opt.SQNRThreshold) {
				res.FirstBad = res.Outputs[i].Name
				break
			}
		}
	}
	res.WorstContributor, res.WorstAddedNSR = worstContributor(ref.Graph, states, bySQNR)
	return res, nil
}

// worstContributor finds the tensor that adds the most noise: its
// noise-to-signal ratio minus the largest of its producer's inputs (graph
// inputs carry none). Ratios, not dB: a first layer going from exact to
// 40 dB adds 1e-4, a layer going from 25 dB to 0 dB adds about 1.
func worstContributor(g *graph.Graph, states []*pairState, bySQNR map[string]float64) (string, float64) {
	nsr := func(db float64) float64 { return math.Pow(10, -db/10) }
	best, added := "", 0.0
	for _, st := range states {
		out, ok := bySQNR[st.Ref]
		v := g.Value(st.Ref)
		if !ok || v == nil || v.Producer == nil {
			continue
		}
		in, known := 0.0, false
		for _, x := range v.Producer.Inputs {
			switch {
			case x == nil || x.Const != nil:
			case g.IsInput(x):
				known = true
			default:
				if s, ok := bySQNR[x.Name]; ok {
					in, known = math.Max(in, nsr(s)), true
				}
			}
		}
		if a := nsr(out) - in; known && a > added {
			best, added = st.Ref, a
		}
	}
	return best, added
}

func (st *pairState) result() TensorResult {
	tr := TensorResult{Name: st.Ref, Node: st.Node, OpType: st.OpType, Index: st.Index, Quant: st.Quant, Note: st.note}
	if st.Test != st.Ref {
		tr.TestName = st.Test
	}
	a := &st.acc
	tr.Values = a.N
	if a.N == 0 {
		if tr.Note == "" {
			tr.Note = "not produced as float32 by both models"
		}
		return tr
	}
	tr.Cosine, tr.SQNR, tr.MSE, tr.MaxAbs = a.Cosine(), a.SQNR(), a.MSE(), a.MaxAbs()
	if t, ok := a.Top1(); ok {
		tr.Top1 = &t
	}
	if c, ok := a.ChannelSQNR(); ok {
		tr.ChannelSQNR = &c
	}
	if st.ref != nil {
		s := &TensorStats{Float: summarize(st.ref), Dequant: summarize(st.test)}
		if st.Quant != nil && st.Quant.Hi > st.Quant.Lo {
			s.ClipRate = st.ref.ClipRate()
		}
		if lo, hi, c := st.ref.Histogram(128); len(c) > 0 {
			s.Hist = &Hist{Lo: lo, Hi: hi, Counts: c}
		}
		tr.Stats = s
	}
	return tr
}

func summarize(d *calib.Distribution) Summary {
	return Summary{Min: d.Min(), Q1: d.Quantile(0.25), Median: d.Quantile(0.5), Q3: d.Quantile(0.75), Max: d.Max(),
		Mean: d.Mean(), Variance: d.Variance(), ZeroShare: d.ZeroShare()}
}

// runner runs the two sessions of a comparison and pairs their tensors.
type runner struct {
	ref, test *kernels.Session
	states    []*pairState
	byRef     map[string][]int
	byTest    map[string][]int

	mu   sync.Mutex
	got  [2][]*graph.Tensor            // per side, per pair: this sample's tensor
	held [2]map[*graph.Tensor]*holding // per side: tapped tensors not yet released
	// The bytes of the tensors held now, and the most held at once: a
	// lane holds as much again (compareLanes).
	heldBytes, peakHeld int64

	// cached, when set, stands in for the first model's runs (Options.Reference).
	cached *Reference

	// pending, in a lane (compare_lanes.go), collects the sample's folds
	// for the states instead of adding them: the lanes add them in sample
	// order. nil: each fold goes into its state at once.
	pending *[]foldRec
}

// holding counts the pairs that still need a tapped tensor and how often the
// session handed it over (each hand-over is released once).
type holding struct{ uses, taps int }

// newRunner compiles the sessions of a comparison on threads; with cached,
// only the second model's.
func newRunner(ref, test *graph.Model, states []*pairState, threads int, cached *Reference, packs *kernels.PackCache) (*runner, error) {
	r := &runner{states: states, byRef: map[string][]int{}, byTest: map[string][]int{}, cached: cached}
	r.held = [2]map[*graph.Tensor]*holding{{}, {}}
	refNames, testNames := map[string]bool{}, map[string]bool{}
	for i, st := range states {
		r.byRef[st.Ref] = append(r.byRef[st.Ref], i)
		r.byTest[st.Test] = append(r.byTest[st.Test], i)
		refNames[st.Ref], testNames[st.Test] = true, true
	}
	r.got = [2][]*graph.Tensor{make([]*graph.Tensor, len(states)), make([]*graph.Tensor, len(states))}
	each := threads
	// One buffer pool for both sessions: they run one after the other, and
	// the second takes the buffers the first gave back (its tapped ones stay
	// out until their pairs are folded).
	pool := kernels.NewBufferPool()
	var err error
	if cached == nil {
		r.ref, err = kernels.NewSession(ref, kernels.Options{Threads: each, Pool: pool, Packs: packs, TapOnly: refNames, TapHolds: true, Tap: func(name string, t *graph.Tensor) { r.arrive(0, name, t) }})
		if err != nil {
			return nil, fmt.Errorf("first model: %w", err)
		}
	}
	r.test, err = kernels.NewSession(test, kernels.Options{Threads: each, Pool: pool, Packs: packs, TapOnly: testNames, TapHolds: true, Tap: func(name string, t *graph.Tensor) { r.arrive(1, name, t) }})
	if err != nil {
		return nil, fmt.Errorf("second model: %w", err)
	}
	return r, nil
}

// markClassOutputs gives outputs that look like class scores top-1
// agreement: [N, C] logits (see decide), or a Softmax over the last axis.
func markClassOutputs(ref *graph.Model, states []*pairState) {
	for _, st := range states {
		if !st.Output {
			continue
		}
		v := ref.Graph.Value(st.Ref)
		for v != nil && v.Producer != nil && (v.Producer.OpType == "Identity" || v.Producer.OpType == "Reshape" || v.Producer.OpType == "Flatten") {
			v = v.Producer.Input(0)
		}
		if v != nil && v.Producer != nil && (v.Producer.OpType == "Softmax" || v.Producer.OpType == "LogSoftmax") {
			st.acc.ClassAxisLen = -1 // the size comes with the first tensor
		}
	}
}

// arrive takes a tapped tensor from side s and completes its pairs.
func (r *runner) arrive(s int, name string, t *graph.Tensor) {
	idx := r.byRef[name]
	if s == 1 {
		idx = r.byTest[name]
	}
	var ready []int
	r.mu.Lock()
	h := r.held[s][t]
	if h == nil {
		h = &holding{}
		r.held[s][t] = h
		r.heldBytes += t.ByteSize()
		r.peakHeld = max(r.peakHeld, r.heldBytes)
	}
	h.uses += len(idx)
	h.taps++
	for _, i := range idx {
		r.got[s][i] = t
		if r.got[1-s][i] != nil {
			ready = append(ready, i)
		}
	}
	r.mu.Unlock()
	if len(idx) == 0 {
		r.release(s, t, 0)
	}
	for _, i := range ready {
		a, b := r.got[0][i], r.got[1][i]
		r.fold(i, a, b)
		r.mu.Lock()
		r.got[0][i], r.got[1][i] = nil, nil
		r.mu.Unlock()
		r.release(0, a, 1)
		r.release(1, b, 1)
	}
}

// fold adds one sample of pair i to its running metrics (or, in a lane,
// to the sample's pending folds).
func (r *runner) fold(i int, a, b *graph.Tensor) {
	st := r.states[i]
	switch {
	case a.DType != graph.Float || b.DType != graph.Float:
		r.note(i, fmt.Sprintf("types differ or are not float32 (%s, %s)", a.DType.Short(), b.DType.Short()), false)
		if r.pending == nil {
			st.untyped = true
		}
		return
	case !slices.Equal(a.Shape, b.Shape):
		r.note(i, fmt.Sprintf("shapes differ (%v, %v)", a.Shape, b.Shape), false)
		return
	}
	if r.pending == nil {
		st.decide(a.Shape)
	}
	x, y := a.Float32s(), b.Float32s()
	m := st.acc.Measure(x, y)
	if r.pending != nil {
		*r.pending = append(*r.pending, foldRec{pair: i, m: m})
		return
	}
	st.acc.Apply(m)
	if st.ref != nil {
		st.ref.Observe(x)
		st.test.Observe(y)
	}
}

// note sets pair i's note (when it has none yet, with soft), or in a lane
// adds it to the sample's pending folds.
func (r *runner) note(i int, msg string, soft bool) {
	if r.pending != nil {
		*r.pending = append(*r.pending, foldRec{pair: i, note: msg, soft: soft})
		return
	}
	if st := r.states[i]; !soft || st.note == "" {
		st.note = msg
	}
}

// decide sets the pair's layout from its first tensors' shape: an output
// of [N, C] logits (or a Softmax's) gets top-1 agreement along its class
// axis, a tensor inside the network per-channel sums. Later samples keep it.
func (st *pairState) decide(shape []int) {
	if st.decided {
		return
	}
	st.decided = true
	if st.Output && st.acc.ClassAxisLen == 0 && len(shape) == 2 && shape[1] > 1 {
		st.acc.ClassAxisLen = shape[1]
	}
	if st.acc.ClassAxisLen < 0 && len(shape) > 0 {
		st.acc.ClassAxisLen = shape[len(shape)-1]
	}
	// Channels are a per-tensor encoding's concern inside the network; an
	// output's (or a softmax's) last axis holds classes, most of them
	// near zero, whose own SQNR says nothing.
	if ch, inner := channelLayout(shape, st.OpType); ch > 1 && !st.Output && st.OpType != "Softmax" && st.OpType != "LogSoftmax" {
		st.acc.SetChannels(ch, inner)
	}
}

// channelLayout picks a tensor's channel axis: 1 for NCHW-like ranks and
// [N, C]; the last axis of a rank-3 tensor ([batch, tokens, features]) unless
// a convolution or pooling made it ([N, C, L]).
func channelLayout(shape []int, op string) (channels, inner int) {
	switch r := len(shape); {
	case r == 2:
		return shape[1], 1
	case r == 3 && !strings.Contains(op, "Conv") && !strings.Contains(op, "Pool") && op != "BatchNormalization":
		return shape[2], 1
	case r >= 3:
		return shape[1], graph.Numel(shape[2:])
	}
	return 0, 0
}

// release drops n uses of a tapped tensor and hands it back to its session
// when no pair needs it any more.
func (r *runner) release(s int, t *graph.Tensor, n int) {
	r.mu.Lock()
	h := r.held[s][t]
	h.uses -= n
	taps := 0
	if h.uses <= 0 {
		taps = h.taps
		delete(r.held[s], t)
		r.heldBytes -= t.ByteSize()
	}
	r.mu.Unlock()
	sess := r.ref
	if s == 1 {
		sess = r.test
	}
	if sess == nil { // a cached reference output
		return
	}
	for range taps {
		sess.Release(t)
	}
}

// run executes sample i on the first model (or takes its cached outputs),
// then the second: the first model's matched tensors wait for their
// partners, the same set every sample, so memory is the same whatever the
// number of samples (run side by side, how far one model ran ahead of the
// other varied, and the buffer pools grew to the worst case seen so far).
func (r *runner) run(i int, smp dataset.Sample) error {
	var errs [2]error
	var outs [2]map[string]*graph.Tensor
	if r.cached != nil {
		for k, name := range r.cached.names {
			if t := r.cached.outs[i][k]; t != nil {
				r.arrive(0, name, t)
			}
		}
	} else {
		outs[0], errs[0] = r.ref.Run(smp)
	}
	if errs[0] == nil {
		outs[1], errs[1] = r.test.Run(smp)
	}
	// The outputs were seen through the taps: their memory goes back to
	// each session for the next sample (kept, every sample's outputs
	// would be fresh memory until the collector caught up: a 1.2 MB
	// detection output is 300 first-touch page faults a run).
	if r.ref != nil {
		r.ref.Recycle(outs[0])
	}
	r.test.Recycle(outs[1])
	// Tensors whose partner never came (a tensor one model did not compute)
	// are handed back now.
	for s := range 2 {
		for i, t := range r.got[s] {
			if t != nil {
				r.got[s][i] = nil
				r.note(i, "produced by one model only", true)
				r.release(s, t, 1)
			}
		}
	}
	if errs[0] != nil {
		return fmt.Errorf("first model: %w", errs[0])
	}
	if errs[1] != nil {
		return fmt.Errorf("second model: %w", errs[1])
	}
	return nil
}
