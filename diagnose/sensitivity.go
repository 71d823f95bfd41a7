package diagnose

import (
	"context"
	"fmt"
	"maps"
	"math"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/onnxq/onnxq/converter/dataset"
	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/internal/heappace"
	"github.com/onnxq/onnxq/internal/lanes"
	"github.com/onnxq/onnxq/kernels"
	"github.com/onnxq/onnxq/passes"
)

// Sensitivity modes.
const (
	// QuantOne quantizes one unit at a time, the rest float: how much each
	// unit's quantization costs by itself.
	QuantOne = "quant-one"
	// FloatOne leaves one unit at a time in float, the rest quantized: how
	// much each unit's fallback would win back.
	FloatOne = "float-one"
)

// SensitivityOptions configure a sensitivity analysis.
type SensitivityOptions struct {
	Mode    string // QuantOne (default) or FloatOne
	Threads int
	// Split also measures each unit's weights and activations apart.
	Split bool
	// SessionBudget bounds the bytes of their own constants (the Q/DQ
	// plan's, not the float model's weights, which the variants share)
	// held by compiled suffix sessions at once (default 256 MiB); units are
	// taken in chunks that fit, each chunk one more base run per sample.
	SessionBudget int64
	Progress      func(done, total int)
	// Packs, when set, is where the variants' sessions find and leave
	// their packed weights (shared with the caller's other sessions); by
	// default the call has a cache of its own. The variants share most
	// weights, and packing them again for each was 42% of a ResNet-50
	// sensitivity run's CPU.
	Packs *kernels.PackCache
}

// Effect is a variant's end-to-end result: the worst output's metrics
// against the float model.
type Effect struct {
	Cosine float64 `json:"cosine"`
	SQNR   float64 `json:"sqnr_db"`
}

// SensitivityRow is one unit's effect.
type SensitivityRow struct {
	Unit
	Rank int `json:"rank"`
	Effect
	Weight     *Effect `json:"weight_only,omitempty"`
	Activation *Effect `json:"activation_only,omitempty"`
	// SuffixNodes is how many nodes the variant had to run past the base.
	SuffixNodes int `json:"suffix_nodes"`
}

// SensitivityResult ranks the units, most sensitive first.
type SensitivityResult struct {
	Mode    string           `json:"mode"`
	Samples int              `json:"samples"`
	Rows    []SensitivityRow `json:"rows"`
	// All is every unit quantized (float-one mode only, where it is the base).
	All *Effect `json:"all_quantized,omitempty"`
	// Runs counts base runs per sample; SuffixShare is the mean share of the
	// model's nodes the variants ran (the cost saved by prefix reuse).
	BaseRuns    int     `json:"base_runs_per_sample"`
	SuffixShare float64 `json:"suffix_share"`
	Seconds     float64 `json:"seconds"`
}

// variant is one plan to measure.
type variant struct {
	row  int
	kind int      // 0 both, 1 weights only, 2 activations only
	set  []string // the tensors it quantizes (or leaves float)
	sfx  *suffix  // while its chunk runs
	sess *kernels.Session
	acc  []Acc // per output
	cost int64 // float32 bytes of the constants not shared with the float model
}

// Sensitivity measures, for each unit of the plan qp on the float model f,
// the outputs when only that unit is quantized (QuantOne) or only that unit
// is left float (FloatOne), against f's outputs on src. Each variant runs
// only the nodes after its first change, on the base model's values of that
// sample.
func Sensitivity(ctx context.Context, f *graph.Model, qp *passes.QDQPlan, src dataset.Source, opt SensitivityOptions) (*SensitivityResult, error) {
	if opt.Mode == "" {
		opt.Mode = QuantOne
	}
	if opt.Mode != QuantOne && opt.Mode != FloatOne {
		return nil, fmt.Errorf("sensitivity mode %q is not %s or %s", opt.Mode, QuantOne, FloatOne)
	}
	if opt.Threads <= 0 {
		opt.Threads = runtime.GOMAXPROCS(0)
	}
	if opt.SessionBudget <= 0 {
		opt.SessionBudget = 256 << 20
	}
	if opt.Packs == nil {
		opt.Packs = kernels.NewPackCache()
	}
	start := time.Now()
	units, err := Units(f, qp)
	if err != nil {
		return nil, err
	}
	if len(units) == 0 {
		return nil, fmt.Errorf("the plan quantizes nothing: no units to rank")
	}
	all := map[string]bool{}
	for _, name := range slices.Concat(slices.Collect(maps.Keys(qp.Activations)), slices.Collect(maps.Keys(qp.Weights)), slices.Collect(maps.Keys(qp.Biases))) {
		all[name] = true
	}
	base := f
	if opt.Mode == FloatOne {
		if base, err = withQDQ(f, qp); err != nil {
			return nil, err
		}
	}
	res := &SensitivityResult{Mode: opt.Mode, Samples: src.Len()}
	rows := make([]SensitivityRow, len(units))
	// The variants to measure, each a unit's tensor set (and its weights
	// and activations apart). Their models and sessions are made a chunk
	// at a time below and dropped after it: made all at once, the suffix
	// models of a YOLO-style detector's ~1000 variants held 1.7 GB live
	// and grew with the number of nodes.
	var vars []*variant
	for i, u := range units {
		rows[i].Unit = u
		sets := [][]string{u.Tensors()}
		if opt.Split && len(u.Weights) > 0 && len(u.Activations) > 0 {
			sets = append(sets, u.Weights, u.Activations)
		}
		for kind, set := range sets {
			vars = append(vars, &variant{row: i, kind: kind, set: set, acc: make([]Acc, len(f.Graph.Outputs))})
		}
	}
	// Every variant starts from a copy of f's structure that shares its
	// weights (decoding an encoded copy for each was 14% of a ResNet-50
	// run's CPU, every weight copied again). The lanes clone tmpl side by
	// side; making it reads any lazily loaded weights first.
	tmpl, err := f.CloneShared()
	if err != nil {
		return nil, err
	}
	shared := map[*graph.Tensor]bool{} // read by the lanes side by side
	for _, v := range f.Graph.Initializers {
		shared[v.Const] = true
	}
	// build makes v's suffix model and its constants' size; variants are
	// built side by side (lanes, below), so it writes only v and v's row.
	build := func(v *variant) error {
		names := map[string]bool{}
		for _, n := range v.set {
			names[n] = true
		}
		plan := SubPlan(qp, names, opt.Mode == QuantOne)
		vm, err := withQDQ(tmpl, plan)
		if err != nil {
			return fmt.Errorf("unit %s: %w", rows[v.row].Node, err)
		}
		sfx, err := cutSuffix(base, vm)
		if err != nil {
			return fmt.Errorf("unit %s: %w", rows[v.row].Node, err)
		}
		v.sfx, v.cost = sfx, 0
		for _, c := range sfx.model.Graph.Initializers {
			if !shared[c.Const] {
				// As the float32 numbers the session makes of it (a
				// DequantizeLinear of int8 weights folds into them).
				v.cost += 4 * int64(c.Const.Len())
			}
		}
		if v.kind == 0 {
			rows[v.row].SuffixNodes = sfx.nodes
		}
		return nil
	}

	// The reference: the float model's outputs; in float-one mode the base
	// is the quantized model, measured too.
	var ref *kernels.Session
	outNames := make([]string, len(f.Graph.Outputs))
	for i, o := range f.Graph.Outputs {
		outNames[i] = o.Name
	}
	baseAcc := make([]Acc, len(outNames))
	if opt.Mode == FloatOne {
		if ref, err = kernels.NewSession(f, kernels.Options{Threads: opt.Threads, Packs: opt.Packs}); err != nil {
			return nil, err
		}
	}
	// Chunks of variants whose sessions fit the budget together. The
	// variants' sessions run one after another and share one buffer pool:
	// with a pool each, a chunk of YOLO-style suffixes held every
	// intermediate of every suffix (peak RSS 4.4-6.8 GB for a 416x416
	// detector), and each session's first run touched all of it afresh.
	pools := make([]*kernels.BufferPool, max(1, min(opt.Threads, lanes.Max)))
	for i := range pools {
		pools[i] = kernels.NewBufferPool()
	}
	// measure runs variant v on one sample (the base run's held values and
	// outputs) and adds its outputs' errors against the reference to v's
	// sums; variants of one sample may be measured at once, each by one
	// goroutine, and a variant's sums take the samples in order.
	measure := func(v *variant, held, baseOut, refOut map[string]*graph.Tensor) error {
		outs := baseOut
		if v.sess != nil {
			in := map[string]*graph.Tensor{}
			for _, n := range v.sfx.inputs {
				in[n] = held[n]
			}
			var err error
			if outs, err = v.sess.Run(in); err != nil {
				return err
			}
			for _, o := range v.sfx.outputs {
				if !o.ownRun {
					outs[o.name] = baseOut[o.name]
				}
			}
		}
		for i, o := range outNames {
			a, b := refOut[o], outs[o]
			if a.DType != graph.Float || b.DType != graph.Float || !slices.Equal(a.Shape, b.Shape) {
				return fmt.Errorf("output %q is not float32 of one shape in both models", o)
			}
			v.acc[i].Add(a.Float32s(), b.Float32s())
		}
		if v.sess != nil {
			v.sess.Recycle(outs) // its own outputs; baseOut's are ignored
		}
		return nil
	}
	var mu sync.Mutex // done and the Progress calls
	done := 0
	total := len(vars) * src.Len()
	for lo := 0; lo < len(vars); {
		hi, used := lo, int64(0)
		for hi < len(vars) {
			v := vars[hi]
			if v.sfx == nil {
				// This and the next few, side by side; those past the
				// chunk's budget open the next one.
				ahead := vars[hi:min(len(vars), hi+4*len(pools))]
				if err := forLanes(len(pools), len(ahead), func(i int) error { return build(ahead[i]) }); err != nil {
					return nil, err
				}
			}
			if hi > lo && used+v.cost > opt.SessionBudget {
				break // built, it opens the next chunk
			}
			used += v.cost
			hi++
		}
		chunk := vars[lo:hi]
		runs := 0
		for _, v := range chunk {
			if len(ownOutputs(v.sfx)) > 0 {
				runs++
			}
		}
		// A sample's variants run side by side, each on one thread: they
		// are independent runs, mostly of small suffixes, which a second
		// thread inside each run speeds up little or not at all (FastestDet
		// at 2 threads took longer than at 1), while two runs at once
		// keep both cores busy with no hand-offs between them. Variant i
		// runs in lane i mod lanes, on that lane's buffer pool: a buffer
		// one core wrote and the other took from a shared pool moved
		// between the cores' caches line by line, and two lanes on one
		// pool measured no faster than one.
		lanes := max(1, min(opt.Threads, runs, len(pools)))
		each := max(1, opt.Threads/lanes) // more cores than lanes: the rest split runs
		// Each lane compiles the sessions it runs (weights packed on its
		// core).
		if err := forLanes(lanes, len(chunk), func(i int) error {
			v := chunk[i]
			if len(ownOutputs(v.sfx)) == 0 {
				return nil // the change does not reach the outputs
			}
			var err error
			if v.sess, err = kernels.NewSession(v.sfx.model, kernels.Options{Threads: each, Pool: pools[i%lanes], Packs: opt.Packs}); err != nil {
				return fmt.Errorf("unit %s: %w", rows[v.row].Node, err)
			}
			return nil
		}); err != nil {
			return nil, err
		}
		need := map[string]bool{}
		for _, v := range chunk {
			if v.sess != nil {
				for _, n := range v.sfx.inputs {
					need[n] = true
				}
			}
		}
		for _, o := range outNames {
			need[o] = true
		}
		// held: this sample's base values; spare: the last sample's, whose
		// memory the next takes where the shapes agree (a fresh copy of
		// every value each sample was most of the garbage, and the heap
		// grew with the samples until the collector caught up: FastestDet
		// 0.75 GB at 2 samples, 1.2 GB at 16).
		held, spare := map[string]*graph.Tensor{}, map[string]*graph.Tensor{}
		bs, err := kernels.NewSession(base, kernels.Options{Threads: opt.Threads, Packs: opt.Packs, TapOnly: need, Tap: func(name string, t *graph.Tensor) {
			held[name] = copyInto(spare[name], t)
		}})
		if err != nil {
			return nil, err
		}
		res.BaseRuns++
		// Collected once a sample or a few have left 32 MiB of garbage: the
		// chunk's sessions are most of the heap, and a quarter of it let
		// PaddleOCR cls peak 11% higher at 32 samples than at 4.
		pacer := heappace.NewAllowing(32 << 20)
		for s := 0; s < src.Len(); s++ {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			smp, err := src.Sample(s)
			if err != nil {
				return nil, err
			}
			held, spare = spare, held
			clear(held)
			baseOut, err := bs.Run(smp)
			if err != nil {
				return nil, fmt.Errorf("sample %d: %w", s, err)
			}
			refOut := baseOut
			if ref != nil {
				if refOut, err = ref.Run(smp); err != nil {
					return nil, fmt.Errorf("sample %d: float model: %w", s, err)
				}
				if lo == 0 {
					for i, o := range outNames {
						baseAcc[i].Add(refOut[o].Float32s(), baseOut[o].Float32s())
					}
				}
			}
			if err := forLanes(lanes, len(chunk), func(i int) error {
				if err := ctx.Err(); err != nil {
					return err
				}
				v := chunk[i]
				if err := measure(v, held, baseOut, refOut); err != nil {
					return fmt.Errorf("unit %s, sample %d: %w", rows[v.row].Node, s, err)
				}
				mu.Lock()
				defer mu.Unlock()
				done++
				if opt.Progress != nil {
					opt.Progress(done, total)
				}
				return nil
			}); err != nil {
				return nil, err
			}
			// This sample's outputs are measured: their memory goes back
			// for the next (kept, each run's outputs would be fresh pages
			// until the collector caught up).
			bs.Recycle(baseOut)
			if ref != nil {
				ref.Recycle(refOut)
			}
			pacer.BetweenSamples()
		}
		for _, v := range chunk {
			v.sess, v.sfx = nil, nil // let the chunk's sessions and models go before the next are made
		}
		lo = hi
	}
	nodes := 0
	for _, r := range rows {
		nodes += r.SuffixNodes
	}
	res.SuffixShare = float64(nodes) / float64(len(units)*max(1, len(base.Graph.Nodes)))
	for _, v := range vars {
		e := worst(v.acc)
		switch v.kind {
		case 0:
			rows[v.row].Effect = e
		case 1:
			rows[v.row].Weight = &e
		case 2:
			rows[v.row].Activation = &e
		}
	}
	if opt.Mode == FloatOne {
		e := worst(baseAcc)
		res.All = &e
		// Most sensitive first: leaving it float wins back the most.
		slices.SortStableFunc(rows, func(a, b SensitivityRow) int { return cmpDesc(a.SQNR, b.SQNR) })
	} else {
		slices.SortStableFunc(rows, func(a, b SensitivityRow) int { return cmpDesc(b.SQNR, a.SQNR) })
	}
	for i := range rows {
		rows[i].Rank = i + 1
	}
	res.Rows = rows
	res.Seconds = time.Since(start).Seconds()
	return res, nil
}

func ownOutputs(s *suffix) []string {
	var out []string
	for _, o := range s.outputs {
		if o.ownRun {
			out = append(out, o.name)
		}
	}
	return out
}

// worst is the lowest-SQNR output's effect.
func worst(accs []Acc) Effect {
	e := Effect{Cosine: 1, SQNR: PerfectSQNR}
	for i := range accs {
		if s := accs[i].SQNR(); s < e.SQNR || i == 0 {
			e = Effect{Cosine: accs[i].Cosine(), SQNR: s}
		}
	}
	return e
}

// cmpDesc orders larger first; NaN last.
func cmpDesc(a, b float64) int {
	switch {
	case math.IsNaN(a) && math.IsNaN(b):
		return 0
	case math.IsNaN(a):
		return 1
	case math.IsNaN(b):
		return -1
	case a > b:
		return -1
	case a < b:
		return 1
	}
	return 0
}

// withQDQ is a copy of f, sharing its weights, with the plan's Q/DQ
// inserted.
func withQDQ(f *graph.Model, qp *passes.QDQPlan) (*graph.Model, error) {
	m, err := f.CloneShared()
	if err != nil {
		return nil, err
	}
	if err := passes.InsertQDQ(m, qp); err != nil {
		return nil, err
	}
	return m, nil
}

// copyInto returns a copy of t, in dst's memory when dst is a float32
// tensor of t's type and shape.
func copyInto(dst, t *graph.Tensor) *graph.Tensor {
	if dst != nil && dst.DType == graph.Float && t.DType == graph.Float && slices.Equal(dst.Shape, t.Shape) {
		if d, ok := dst.Data().([]float32); ok {
			if src, ok := t.Data().([]float32); ok {
				copy(d, src)
				return dst
			}
		}
	}
	return t.Clone()
}

// forLanes calls f(i) for every i in [0, n) on lanes goroutines (the
// caller's alone when lanes is 1), lane l taking l, l+lanes, ... in turn,
// and returns the error of the lowest i that failed, so that a failing
// run reports the same error whatever the timing. A lane stops at its
// first error; the others finish their items.
func forLanes(lanes, n int, f func(i int) error) error {
	if lanes <= 1 {
		for i := 0; i < n; i++ {
			if err := f(i); err != nil {
				return err
			}
		}
		return nil
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for l := range lanes {
		wg.Go(func() {
			for i := l; i < n; i += lanes {
				if errs[i] = f(i); errs[i] != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
