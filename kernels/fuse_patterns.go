package kernels

import (
	"math"
	"sort"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/kernels/vec"
)

// Exported graphs spell common activations and normalizations as several
// primitive ops. Two recognisers turn them back into one kernel:
//
//   - recognizeActivation: an elementwise region (see fuse.go) that computes
//     SiLU, HardSwish, Gelu (erf or tanh form) or Mish, in whatever order and
//     association the exporter wrote it, runs as the single vec routine.
//   - fuseNorms: ReduceMean/Sub/Pow/ReduceMean/Add/Sqrt/Div(/Mul/Add) over the
//     last axis (LayerNorm) and Pow/ReduceMean/Add/Sqrt/Div(/Mul) (RMSNorm)
//     become one step that makes a single pass per row for each statistic.

// activationForms are the closed forms a region may compute, with the op that
// must appear in the region for the form to be worth trying.
var activationForms = []struct {
	needs, name string
	fn          sliceFn
}{
	{"Sigmoid", "Silu", vec.Silu},
	{"Erf", "GeluErf", vec.GeluErf},
	{"Tanh", "GeluTanh", vec.GeluTanh},
	{"Softplus", "Mish", vec.Mish},
	{"HardSigmoid", "HardSwish", hardSwish},
	// x * Clip(x + 3, 0, 6) / 6 as exporters write it: vec.HardSwish6 gives
	// the unfused ops' bits for that order and is within the probe's tolerance
	// for the others.
	{"Clip", "HardSwish", vec.HardSwish6},
}

// recognizeActivation returns the program rewritten to one vec routine when it
// computes SiLU, HardSwish, Gelu or Mish, possibly after one op by constants
// (a bias as after a MatMul, a BatchNormalization's per-channel affine as after
// a Conv that was not folded, a learnable scale and bias) and before ops that
// each scale or shift the one before (PP-LCNet's affine after each
// activation); else p itself. The ops around the activation stay as they are.
func recognizeActivation(p *ewProgram) *ewProgram {
	n := len(p.ops)
	if fn, form := matchActivation(p); fn != nil {
		return &ewProgram{ops: []ewOp{{kind: ewUnary, fn: fn, dst: 1, opType: form}}, nregs: 2, out: 1, names: p.names, form: form}
	}
	if n < 3 || p.ops[n-1].dst != p.out {
		return p
	}
	// tail is where the trailing ops by constants start: ops[tail:] each read
	// only the op before.
	tail := n
	for tail > 1 && byConstants(p.ops[tail-1]) && p.ops[tail-1].a == p.ops[tail-2].dst {
		tail--
	}
	for lo := 0; lo <= 1; lo++ {
		if lo == 1 && !byConstants(p.ops[0]) {
			break
		}
		for hi := n; hi >= tail && hi-lo >= 2; hi-- {
			if lo == 0 && hi == n {
				continue // the whole program: tried above
			}
			in := 0 // the core reads x, or the leading op's result
			if lo == 1 {
				in = p.ops[0].dst
			}
			core, ok := subProgram(p.ops[lo:hi], in)
			if !ok {
				continue
			}
			fn, form := matchActivation(core)
			if fn == nil {
				continue
			}
			// A chain: the leading op, the activation, the trailing ops.
			q := &ewProgram{names: p.names, form: form}
			add := func(op ewOp) {
				op.a, op.dst = len(q.ops), len(q.ops)+1
				q.ops = append(q.ops, op)
			}
			if lo == 1 {
				add(p.ops[0])
				q.form = constOpName(p.ops[0]) + "+" + form
			}
			add(ewOp{kind: ewUnary, fn: fn, opType: form})
			for _, op := range p.ops[hi:] {
				add(op)
				q.form += "+" + constOpName(op)
			}
			q.nregs, q.out = len(q.ops)+1, len(q.ops)
			return q
		}
	}
	return p
}

// byConstants reports whether the op computes from one register and constants.
func byConstants(op ewOp) bool {
	return op.kind == ewConstR || op.kind == ewConstL || op.kind == ewAffine
}

// constOpName names an op by constants around a recognised activation, for messages.
func constOpName(op ewOp) string {
	switch {
	case op.kind == ewAffine && op.pair[0] == nil:
		return "BatchNormalization"
	case op.kind == ewAffine:
		return "Affine"
	case op.op == '+' || op.op == '-':
		return "Bias"
	case op.op == '*':
		return "Scale"
	}
	return op.opType
}

// subProgram renumbers ops (in order) as a program whose register 0 is in:
// false when one of them reads a register other than in or their own results.
func subProgram(ops []ewOp, in int) (*ewProgram, bool) {
	reg := map[int]int{in: 0}
	q := &ewProgram{nregs: 1}
	for _, op := range ops {
		a, ok := reg[op.a]
		if !ok {
			return nil, false
		}
		op.a = a
		if op.kind == ewBinary {
			if op.b, ok = reg[op.b]; !ok {
				return nil, false
			}
		}
		reg[op.dst] = q.nregs
		op.dst = q.nregs
		q.nregs++
		q.ops = append(q.ops, op)
	}
	q.out = q.nregs - 1
	return q, true
}

// matchActivation returns the vec routine that computes the same function as
// the program and its name, or nil. A candidate is chosen by the ops the
// region contains and confirmed by running the region itself on probe values
// spanning the activation's shape (both tails, the bend, the HardSwish kinks
// at +-3): it must agree within 1e-6 relative, plus cancelFloor for the
// unfused ops' rounding where they cancel in the negative tails. A region
// with different constants (Gelu with 1.4142 for sqrt 2, Swish with beta != 1)
// fails the check and stays as it is.
func matchActivation(p *ewProgram) (sliceFn, string) {
	if len(p.ops) < 2 {
		return nil, ""
	}
	has := map[string]bool{}
	for _, op := range p.ops {
		switch op.kind {
		case ewAffine:
			if len(op.mul) != 1 {
				return nil, ""
			}
		case ewConstR, ewConstL:
			if op.constant.Len() != 1 {
				return nil, ""
			}
		}
		has[op.opType] = true
	}
	probe := activationProbe()
	var want []float32
	for _, form := range activationForms {
		if !has[form.needs] {
			continue
		}
		if want == nil {
			// Scalar constants may have any rank: give the probe as many axes.
			shape := []int{len(probe)}
			for _, op := range p.ops {
				for _, c := range op.tensors() {
					for c.Rank() > len(shape) {
						shape = append([]int{1}, shape...)
					}
				}
			}
			want = make([]float32, len(probe))
			p.run(&Context{Threads: 1}, probe, want, shape)
		}
		got := make([]float32, len(probe))
		form.fn(got, probe)
		if agree(probe, got, want) {
			return form.fn, form.name
		}
	}
	return nil, ""
}

func activationProbe() []float32 {
	var x []float32
	for i := -480; i <= 480; i++ {
		x = append(x, float32(i)/40) // [-12, 12] in steps of 1/40, 0 and +-3 included
	}
	return append(x, 1e-3, -1e-3, 1e-6, -1e-6, 30, -30, 100, -100)
}

// cancelFloor allows for the unfused ops' own rounding where they cancel: x/2 *
// (1 + f) with f = erf or tanh near -1, each within a few ulps of 1 (2^-24),
// is off by up to about 2^-21 |x| in absolute terms.
const cancelFloor = 0x1p-21

func agree(x, got, want []float32) bool {
	for i := range x {
		d := math.Abs(float64(got[i]) - float64(want[i]))
		if d > 1e-6*math.Abs(float64(want[i]))+cancelFloor*math.Max(1, math.Abs(float64(x[i]))) {
			return false
		}
	}
	return true
}

// ---- LayerNorm / RMSNorm spelled out ----

// normKernel normalizes rows along the last axis: LayerNorm
// (x - mean) / sqrt(var + eps) or RMSNorm x / sqrt(mean(x^2) + eps), then times
// scale and plus bias when the pattern had them. Each step rounds where the
// unfused ops round (the mean and variance to float32, the sum under the root,
// the division), so results match the unfused graph to an ulp or two (the
// squares are summed in float64 without Pow's rounding to float32).
type normKernel struct {
	rms         bool
	eps         float32
	scale, bias *graph.Tensor // nil when absent
	fallback    stepList      // the original steps, for shapes the fused form does not take
}

// rowParam returns t's values when they apply along the last axis of x (one
// value, or one per column with every other axis 1), else false.
func rowParam(t *graph.Tensor, xShape []int) ([]float32, bool) {
	if t == nil {
		return nil, true
	}
	if t.Rank() > len(xShape) {
		return nil, false
	}
	cols := xShape[len(xShape)-1]
	if t.Len() != 1 && (t.Len() != cols || t.Shape[t.Rank()-1] != cols) {
		return nil, false
	}
	return t.Float32s(), true
}

func (k *normKernel) Run(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
	x := in[0]
	if x.DType != graph.Float || x.Rank() == 0 || x.Shape[x.Rank()-1] == 0 {
		return k.fallback.run(ctx, x)
	}
	scale, ok1 := rowParam(k.scale, x.Shape)
	bias, ok2 := rowParam(k.bias, x.Shape)
	if !ok1 || !ok2 {
		return k.fallback.run(ctx, x)
	}
	cols := x.Shape[x.Rank()-1]
	rows := x.Len() / cols
	out := ctx.Float32(x.Shape)
	xd, od := x.Float32s(), out.Float32s()
	// 8K values a thread, as the rotary embedding: stories260K's [1, 256,
	// 64] norms are split at 2 threads.
	parallelFor(threadsFor(ctx, x.Len(), 1<<13), rows, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			row, dst := xd[r*cols:(r+1)*cols], od[r*cols:(r+1)*cols]
			src := row
			if !k.rms {
				vec.AddScalar(dst, row, -float32(vec.Sum(row)/float64(cols)))
				src = dst
			}
			q := vec.SumSqDev(src, 0)
			den := float32(math.Sqrt(float64(float32(q/float64(cols)) + k.eps)))
			vec.DivScalar(dst, src, den)
			switch {
			case len(scale) == 1:
				vec.MulScalar(dst, dst, scale[0])
			case scale != nil:
				vec.Mul(dst, dst, scale)
			}
			switch {
			case len(bias) == 1:
				vec.AddScalar(dst, dst, bias[0])
			case bias != nil:
				vec.Add(dst, dst, bias)
			}
		}
	})
	return one(out), nil
}

// normMatcher finds the pattern's steps through the slots they read and write.
type normMatcher struct {
	s        *Session
	producer map[int]int
	readers  map[int][]int
	escapes  map[int]bool // graph outputs and tapped tensors: must stay materialized
	used     map[int]bool // steps already in a fused pattern
}

// only returns the single reader of slot when slot stays inside the pattern.
func (m *normMatcher) only(slot int) (int, bool) {
	r := m.readers[slot]
	if len(r) != 1 || m.escapes[slot] || m.used[r[0]] {
		return 0, false
	}
	return r[0], true
}

func (m *normMatcher) op(i int, opType string) bool {
	st := m.s.steps[i]
	return graph.IsStandardDomain(st.node.Domain) && st.node.OpType == opType && len(st.out) == 1 && st.out[0] >= 0 && !legacyAligned(&st)
}

// scalar is the value of a constant float32 scalar slot.
func (m *normMatcher) scalar(slot int) (float32, bool) {
	if slot < 0 || m.s.base[slot] == nil || m.s.base[slot].DType != graph.Float || m.s.base[slot].Len() != 1 {
		return 0, false
	}
	return m.s.base[slot].Float32s()[0], true
}

// square reports whether step i computes x^2 and returns x.
func (m *normMatcher) square(i int) (int, bool) {
	st := m.s.steps[i]
	if m.op(i, "Pow") && len(st.in) == 2 {
		if e, ok := m.scalar(st.in[1]); ok && e == 2 {
			return st.in[0], true
		}
	}
	if m.op(i, "Mul") && len(st.in) == 2 && st.in[0] == st.in[1] && st.in[0] >= 0 {
		return st.in[0], true
	}
	return 0, false
}

// meanLast reports whether step i is ReduceMean over the last axis, keeping it.
func (m *normMatcher) meanLast(i int) bool {
	if !m.op(i, "ReduceMean") {
		return false
	}
	st := m.s.steps[i]
	a := attrsOf(st.node)
	if a.Int("keepdims", 1) != 1 || a.err != nil {
		return false
	}
	var axes []int64
	if st.ni.Opset >= 18 {
		if len(st.in) < 2 || st.in[1] < 0 || m.s.base[st.in[1]] == nil || m.s.base[st.in[1]].DType != graph.Int64 {
			return false
		}
		axes = m.s.base[st.in[1]].Data().([]int64)
	} else {
		axes = a.Ints("axes", nil)
	}
	if len(axes) != 1 {
		return false
	}
	if axes[0] == -1 {
		return true
	}
	dims, ok := st.node.Inputs[0].Shape()
	return ok && axes[0] == int64(len(dims)-1)
}

// rootOf follows Add(v, eps) -> Sqrt from the variance slot v; it returns the
// Sqrt's output, eps and the steps.
func (m *normMatcher) rootOf(v int) (root int, eps float32, steps []int, ok bool) {
	add, ok := m.only(v)
	if !ok || !m.op(add, "Add") {
		return 0, 0, nil, false
	}
	in := m.s.steps[add].in
	switch {
	case in[0] == v:
		eps, ok = m.scalar(in[1])
	case in[1] == v:
		eps, ok = m.scalar(in[0])
	}
	if !ok {
		return 0, 0, nil, false
	}
	sq, ok := m.only(m.s.steps[add].out[0])
	if !ok || !m.op(sq, "Sqrt") {
		return 0, 0, nil, false
	}
	return m.s.steps[sq].out[0], eps, []int{add, sq}, true
}

// divideBy finds the step that divides num by root, as Div(num, root) or as
// Mul(num, Reciprocal(root)) in either order; it returns the steps.
func (m *normMatcher) divideBy(num, root int) ([]int, bool) {
	i, ok := m.only(root)
	if !ok {
		return nil, false
	}
	in := m.s.steps[i].in
	if m.op(i, "Div") && len(in) == 2 && in[0] == num && in[1] == root {
		return []int{i}, true
	}
	if !m.op(i, "Reciprocal") {
		return nil, false
	}
	r := m.s.steps[i].out[0]
	j, ok := m.only(r)
	if !ok || !m.op(j, "Mul") || len(m.s.steps[j].in) != 2 {
		return nil, false
	}
	a, b := m.s.steps[j].in[0], m.s.steps[j].in[1]
	if (a == num && b == r) || (a == r && b == num) {
		return []int{i, j}, true
	}
	return nil, false
}

// affineTail takes the optional Mul by a constant scale and Add of a constant
// bias after the normalized value n.
func (m *normMatcher) affineTail(n int) (sink int, scale, bias *graph.Tensor, steps []int) {
	sink = n
	constOther := func(i, slot int) *graph.Tensor {
		in := m.s.steps[i].in
		if len(in) != 2 {
			return nil
		}
		other := in[0]
		if other == slot {
			other = in[1]
		} else if in[1] != slot {
			return nil
		}
		if other < 0 || other == slot || m.s.base[other] == nil || m.s.base[other].DType != graph.Float {
			return nil
		}
		return m.s.base[other]
	}
	if i, ok := m.only(sink); ok && m.op(i, "Mul") {
		if c := constOther(i, sink); c != nil {
			scale, sink, steps = c, m.s.steps[i].out[0], append(steps, i)
		}
	}
	if i, ok := m.only(sink); ok && m.op(i, "Add") {
		if c := constOther(i, sink); c != nil {
			bias, sink, steps = c, m.s.steps[i].out[0], append(steps, i)
		}
	}
	return sink, scale, bias, steps
}

// layerNorm matches ReduceMean(x) -> Sub(x, mean) -> square -> ReduceMean ->
// Add eps -> Sqrt -> Div(d, root), starting at the first ReduceMean.
func (m *normMatcher) layerNorm(rm1 int) (x, sink int, k *normKernel, steps []int, ok bool) {
	if !m.meanLast(rm1) {
		return
	}
	x = m.s.steps[rm1].in[0]
	sub, ok1 := m.only(m.s.steps[rm1].out[0])
	if !ok1 || !m.op(sub, "Sub") || m.s.steps[sub].in[0] != x || m.s.steps[sub].in[1] != m.s.steps[rm1].out[0] {
		return
	}
	d := m.s.steps[sub].out[0]
	rd := m.readers[d]
	if len(rd) != 2 || m.escapes[d] {
		return
	}
	var sq int
	if v, isSq := m.square(rd[0]); isSq && v == d {
		sq = rd[0]
	} else if v, isSq := m.square(rd[1]); isSq && v == d {
		sq = rd[1]
	} else {
		return
	}
	rm2, ok1 := m.only(m.s.steps[sq].out[0])
	if !ok1 || !m.meanLast(rm2) {
		return
	}
	root, eps, rootSteps, ok1 := m.rootOf(m.s.steps[rm2].out[0])
	if !ok1 {
		return
	}
	div, ok1 := m.divideBy(d, root)
	if !ok1 {
		return
	}
	last := div[len(div)-1]
	if rd[0] != last && rd[1] != last { // d's other reader must be the division
		return
	}
	sink, scale, bias, tail := m.affineTail(m.s.steps[last].out[0])
	steps = append([]int{rm1, sub, sq, rm2}, rootSteps...)
	steps = append(append(steps, div...), tail...)
	return x, sink, &normKernel{eps: eps, scale: scale, bias: bias}, steps, true
}

// rmsNorm matches square(x) -> ReduceMean -> Add eps -> Sqrt -> Div(x, root),
// starting at the square.
func (m *normMatcher) rmsNorm(sq int) (x, sink int, k *normKernel, steps []int, ok bool) {
	x, ok1 := m.square(sq)
	if !ok1 || m.s.base[x] != nil {
		return
	}
	rm, ok1 := m.only(m.s.steps[sq].out[0])
	if !ok1 || !m.meanLast(rm) {
		return
	}
	root, eps, rootSteps, ok1 := m.rootOf(m.s.steps[rm].out[0])
	if !ok1 {
		return
	}
	div, ok1 := m.divideBy(x, root)
	if !ok1 {
		return
	}
	sink, scale, bias, tail := m.affineTail(m.s.steps[div[len(div)-1]].out[0])
	steps = append([]int{sq, rm}, rootSteps...)
	steps = append(append(steps, div...), tail...)
	return x, sink, &normKernel{rms: true, eps: eps, scale: scale, bias: bias}, steps, true
}

// fuseNorms replaces spelled-out LayerNorm and RMSNorm patterns with one step
// each, when none of their intermediate tensors is an output or tapped.
func (s *Session) fuseNorms(outputs map[int]bool) {
	m := s.newMatcher(outputs)
	replace := map[int]step{} // last step of a pattern -> the fused step
	for i := range s.steps {
		if m.used[i] {
			continue
		}
		x, sink, k, steps, ok := m.layerNorm(i)
		for _, j := range steps {
			ok = ok && !m.used[j]
		}
		if !ok {
			x, sink, k, steps, ok = m.rmsNorm(i)
			for _, j := range steps {
				ok = ok && !m.used[j]
			}
		}
		if !ok {
			continue
		}
		last := steps[0]
		for _, j := range steps {
			m.used[j] = true
			last = max(last, j)
		}
		ordered := append([]int(nil), steps...)
		sort.Ints(ordered)
		k.fallback = s.localSteps(ordered, x, sink)
		replace[last] = step{node: s.steps[last].node, ni: s.steps[last].ni, in: []int{x}, out: []int{sink}, k: k}
	}
	s.applyFusions(m, replace)
}

// newMatcher indexes the steps' producers and readers for the pattern
// matchers; escapes are the values a fused region may not hide.
func (s *Session) newMatcher(escapes map[int]bool) *normMatcher {
	m := &normMatcher{s: s, producer: map[int]int{}, readers: map[int][]int{}, escapes: escapes, used: map[int]bool{}}
	for i, st := range s.steps {
		for _, o := range st.out {
			if o >= 0 {
				m.producer[o] = i
			}
		}
		for _, in := range st.in {
			if in >= 0 {
				m.readers[in] = append(m.readers[in], i)
			}
		}
	}
	return m
}

// applyFusions puts each fused step in place of its region's last step
// (replace is keyed by it) and drops the other steps m marked used.
func (s *Session) applyFusions(m *normMatcher, replace map[int]step) {
	if len(replace) == 0 {
		return
	}
	kept := s.steps[:0:0]
	for i, st := range s.steps {
		if f, ok := replace[i]; ok {
			kept = append(kept, f)
		} else if !m.used[i] {
			kept = append(kept, st)
		}
	}
	s.steps = kept
}

// regionKernel is a fused kernel that keeps its region's original steps, to
// run for inputs its fast path does not take.
type regionKernel interface {
	Kernel
	setFallback(stepList)
}

// fuseMatched tries match from every step and replaces each matched region
// (its steps in order; ins, its inputs from outside, become the fused step's
// inputs) with one step of the returned kernel writing the region's last
// output.
func (s *Session) fuseMatched(escapes map[int]bool, match func(m *normMatcher, i int) (k regionKernel, ins, region []int, ok bool)) {
	m := s.newMatcher(escapes)
	replace := map[int]step{}
	for i := range s.steps {
		k, ins, region, ok := match(m, i)
		if !ok {
			continue
		}
		for _, j := range region {
			m.used[j] = true
		}
		last := region[len(region)-1]
		sink := s.steps[last].out[0]
		k.setFallback(s.localStepsIn(region, ins, sink))
		replace[last] = step{node: s.steps[last].node, ni: s.steps[last].ni, in: ins, out: []int{sink}, k: k}
	}
	s.applyFusions(m, replace)
}
