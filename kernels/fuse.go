package kernels

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"sync/atomic"
	"unsafe"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/kernels/vec"
)

// Elementwise region fusion: a connected set of elementwise float32 ops whose only
// inputs from outside are one tensor X and small constants (scalars or one value
// per channel), with one output, runs as a single pass over X in L1-sized blocks
// instead of one memory pass per op. When X comes from a Conv that nothing else
// reads, the program runs as the Conv's epilogue, on data the Conv just wrote.

// ewBlock is the block length the program runs on (2 KiB per register).
const ewBlock = 512

type ewKind int

const (
	ewUnary  ewKind = iota // dst = fn(a)
	ewBinary               // dst = a op b (registers)
	ewConstR               // dst = a op c[channel]
	ewConstL               // dst = c[channel] op a
	ewAffine               // dst = a * mul[channel] + add[channel] (BatchNormalization, or Mul then Add by constants); mul and add hold one value when it is the same for every channel
)

type ewOp struct {
	kind     ewKind
	opType   string // the ONNX op it came from
	fn       sliceFn
	op       byte // '+', '-', '*', '/'
	a, b     int  // registers
	dst      int
	constant *graph.Tensor    // for ewConstR/L: scalar or per-channel
	mul, add []float32        // for ewAffine
	pair     [2]*graph.Tensor // for an ewAffine merged from a Mul and an Add: their constants, checked against each input's shape
	bounds   *[2]float32      // for an ewUnary Clip or Relu: its bounds, for kernels that clip as they store
}

// tensors is the op's constants as the graph holds them: the ConstR/L
// constant, or a merged affine's pair (nil entries left out).
func (op *ewOp) tensors() []*graph.Tensor {
	var ts []*graph.Tensor
	for _, c := range []*graph.Tensor{op.constant, op.pair[0], op.pair[1]} {
		if c != nil {
			ts = append(ts, c)
		}
	}
	return ts
}

// ewProgram is a fused region: register 0 holds X, out is the result register.
type ewProgram struct {
	ops      []ewOp
	nregs    int
	out      int
	names    []string // the fused nodes, for messages
	form     string   // the activation the region was recognised as (fuse_patterns.go), or ""
	fallback stepList // the region's own steps, for an epilogue whose output does not fit

	// last is the program bound to the shape it last ran on: a model's
	// shapes repeat from run to run, and binding again each time was
	// garbage (see Session.vals).
	last atomic.Pointer[ewRun]
}

// perChannel returns the constant's value for each channel of x (shape [N, C, ...]),
// or false when the constant is neither a scalar nor one value per channel.
func perChannel(c *graph.Tensor, xShape []int) ([]float32, bool) {
	v := c.Float32s()
	if c.Len() == 1 && c.Rank() <= len(xShape) {
		return v, true
	}
	if len(xShape) < 2 || c.Rank() > len(xShape) {
		return nil, false
	}
	// Right-align the constant's shape to x's; every axis but 1 must be 1.
	off := len(xShape) - c.Rank()
	for i, d := range c.Shape {
		ax := off + i
		if d != 1 && (ax != 1 || d != xShape[1]) {
			return nil, false
		}
	}
	return v, true
}

// perRow returns the constant's values when it holds one value per position
// of x's last axis (a bias after MatMul): every other axis of it is 1.
func perRow(c *graph.Tensor, xShape []int) ([]float32, bool) {
	if len(xShape) < 2 || c.Rank() == 0 || c.Rank() > len(xShape) || c.Shape[c.Rank()-1] != xShape[len(xShape)-1] {
		return nil, false
	}
	if graph.Numel(c.Shape) != c.Shape[c.Rank()-1] {
		return nil, false
	}
	return c.Float32s(), true
}

// constFor is the constant's values for x, and whether they run along the last axis.
func constFor(c *graph.Tensor, xShape []int) (vals []float32, row, ok bool) {
	if len(xShape) == 2 && c.Len() > 1 { // the channel is the last axis: rows run in long blocks
		if v, ok := perRow(c, xShape); ok {
			return v, true, true
		}
	}
	if v, ok := perChannel(c, xShape); ok {
		return v, false, true
	}
	v, ok := perRow(c, xShape)
	return v, true, ok
}

// check reports whether the program can run on an input of this shape.
func (p *ewProgram) check(shape []int) bool {
	for _, op := range p.ops {
		if op.kind == ewConstR || op.kind == ewConstL {
			if _, _, ok := constFor(op.constant, shape); !ok {
				return false
			}
		}
		if op.kind == ewAffine && len(op.mul) > 1 && (len(shape) < 2 || shape[1] != len(op.mul)) {
			return false
		}
		for _, c := range op.pair {
			// A merged affine's constants must still broadcast as they did:
			// scalars within x's rank, the others one value per channel.
			if c == nil {
				continue
			}
			if _, row, ok := constFor(c, shape); !ok || (row && c.Len() > 1) {
				return false
			}
		}
	}
	return true
}

// run computes the program over x (shape [N, C, rest...] or any shape when all
// constants are scalars) into out; out may be x.
func (p *ewProgram) run(ctx *Context, x, out []float32, shape []int) {
	r := p.prepare(shape)
	if r.plane == 0 {
		return
	}
	planes := (len(x) + r.plane - 1) / r.plane
	threads := threadsFor(ctx, len(x), minStreamWork)
	if threads <= 1 { // no closure for the pool: garbage on every call
		r.over(x, out, 0, planes)
		return
	}
	parallelFor(threads, planes, func(lo, hi int) { r.over(x, out, lo, hi) })
}

// over runs the bound program over planes [lo, hi) of x into out.
func (r *ewRun) over(x, out []float32, lo, hi int) {
	regs := r.p.registers()
	for pl := lo; pl < hi; pl++ {
		r.span(regs, x, out, pl*r.plane, min((pl+1)*r.plane, len(x)))
	}
}

// ewRun is a program bound to one input shape: its constants laid out, and
// the unit (plane) over which the per-channel values stay the same.
type ewRun struct {
	p        *ewProgram
	shape    []int // the input shape it is bound to
	consts   [][]float32
	rowConst []bool
	channels int
	plane    int
	cols     int
}

func (p *ewProgram) prepare(shape []int) *ewRun {
	if r := p.last.Load(); r != nil && slices.Equal(r.shape, shape) {
		return r
	}
	r := p.bind(shape)
	p.last.Store(r)
	return r
}

// bind lays out the program's constants for inputs of this shape.
func (p *ewProgram) bind(shape []int) *ewRun {
	r := &ewRun{p: p, shape: slices.Clone(shape), channels: 1, plane: graph.Numel(shape), cols: 1,
		consts: make([][]float32, len(p.ops)), rowConst: make([]bool, len(p.ops))}
	if len(shape) >= 2 {
		r.channels = shape[1]
		r.plane = graph.Numel(shape[2:])
	}
	if len(shape) > 0 {
		r.cols = shape[len(shape)-1]
	}
	byChannel := false
	for i, op := range p.ops {
		if op.constant != nil {
			r.consts[i], r.rowConst[i], _ = constFor(op.constant, shape)
			byChannel = byChannel || (len(r.consts[i]) > 1 && !r.rowConst[i])
		}
		byChannel = byChannel || (op.kind == ewAffine && len(op.mul) > 1)
	}
	if !byChannel && r.plane > 0 {
		// Nothing depends on the channel: run in chunks of the flat data
		// (a rank-2 input would otherwise go one element per plane).
		r.channels, r.plane = 1, 16*ewBlock
	}
	return r
}

// registers is one goroutine's scratch for the program's intermediates; nil
// for a chain, which runs in place in its output.
func (p *ewProgram) registers() [][]float32 {
	if p.chain() {
		return nil
	}
	regs := make([][]float32, p.nregs)
	for i := 1; i < p.nregs; i++ {
		regs[i] = make([]float32, ewBlock)
	}
	return regs
}

// chain reports whether every op reads only the result of the op before it
// (the first reads x) and the last is the output, so the program can run in
// place over the output without registers. Every op is elementwise, so
// reading and writing the same slice is safe.
func (p *ewProgram) chain() bool {
	if len(p.ops) == 0 || p.ops[len(p.ops)-1].dst != p.out {
		return false
	}
	prev := 0
	for _, op := range p.ops {
		if op.kind == ewBinary || op.a != prev {
			return false
		}
		prev = op.dst
	}
	return true
}

// span computes flat elements [s, end) of one plane into out; regs come from
// registers (nil for a chain).
func (r *ewRun) span(regs [][]float32, x, out []float32, s, end int) {
	ch := s / r.plane % r.channels
	for ; s < end; s += ewBlock {
		e := min(s+ewBlock, end)
		n := e - s
		if regs == nil {
			// A chain: each op in place in out, in blocks that stay in L1.
			dst := out[s:e]
			r.apply(0, dst, x[s:e], nil, ch, s)
			for i := 1; i < len(r.p.ops); i++ {
				r.apply(i, dst, dst, nil, ch, s)
			}
			continue
		}
		regs[0] = x[s:e]
		for i := range r.p.ops {
			op := &r.p.ops[i] // not a copy of the op a block
			var b []float32
			if op.kind == ewBinary {
				b = regs[op.b][:n]
			}
			r.apply(i, regs[op.dst][:n], regs[op.a][:n], b, ch, s)
		}
		copy(out[s:e], regs[r.p.out][:n])
	}
}

// planes computes elements [lo, hi) of planes [p0, p1) of out in place
// (plane p at p*plane): in one span when they are whole planes and nothing
// depends on the channel, which saves a call per plane on small maps.
func (r *ewRun) planes(regs [][]float32, out []float32, p0, p1, plane, lo, hi int) {
	if lo == 0 && hi == plane && r.channels == 1 {
		r.span(regs, out, out, p0*plane, p1*plane)
		return
	}
	for p := p0; p < p1; p++ {
		r.span(regs, out, out, p*plane+lo, p*plane+hi)
	}
}

// apply runs op i on one block starting at flat index s, of channel ch.
func (r *ewRun) apply(i int, dst, a, b []float32, ch, s int) {
	op := &r.p.ops[i]
	switch op.kind {
	case ewUnary:
		op.fn(dst, a)
	case ewBinary:
		binSlice(op.op, dst, a, b)
	case ewAffine:
		c := min(ch, len(op.mul)-1) // one value for every channel, or one each
		vec.Affine(dst, a, op.mul[c], op.add[c])
	case ewConstR, ewConstL:
		c := r.consts[i]
		if r.rowConst[i] && len(c) > 1 {
			rowSlice(op.op, dst, a, c, s%r.cols, op.kind == ewConstL)
			return
		}
		v := c[0]
		if len(c) > 1 {
			v = c[ch]
		}
		scalarSlice(op.op, dst, a, v, op.kind == ewConstL)
	}
}

func binSlice(op byte, dst, a, b []float32) {
	b = b[:len(a)]
	dst = dst[:len(a)]
	switch op {
	case '+':
		vec.Add(dst, a, b)
	case '-':
		vec.Sub(dst, a, b)
	case '*':
		vec.Mul(dst, a, b)
	case '/':
		vec.Div(dst, a, b)
	case '^':
		vec.Pow(dst, a, b) // pow32's bits (see vec.Pow)
	}
}

// pow32 is Pow as the Pow kernel computes it: vec.Pow's bits (those of
// float32(math.Pow) but where math.Pow itself is off, see vec.Pow).
func pow32(a, b float32) float32 { return vec.Pow1(a, b) }

// rowSlice computes dst = a op row (or row op a when left is set), a starting
// at column col of rows of len(row) values.
func rowSlice(op byte, dst, a, row []float32, col int, left bool) {
	if op == '+' || op == '*' {
		// Whole rows in one call (either order: the sums and products
		// commute).
		if col > 0 {
			n := min(len(a), len(row)-col)
			binSlice(op, dst[:n], a[:n], row[col:col+n])
			dst, a, col = dst[n:], a[n:], 0
		}
		if whole := len(a) / len(row) * len(row); whole > 0 {
			if op == '+' {
				vec.AddRows(dst[:whole], a[:whole], row)
			} else {
				vec.MulRows(dst[:whole], a[:whole], row)
			}
			dst, a = dst[whole:], a[whole:]
		}
	}
	for len(a) > 0 {
		n := min(len(a), len(row)-col)
		r := row[col : col+n]
		if left {
			binSlice(op, dst[:n], r, a[:n])
		} else {
			binSlice(op, dst[:n], a[:n], r)
		}
		dst, a, col = dst[n:], a[n:], 0
	}
}

// scalarSlice computes dst = a op v, or v op a when left is set.
func scalarSlice(op byte, dst, a []float32, v float32, left bool) {
	dst = dst[:len(a)]
	switch {
	case op == '+':
		vec.AddScalar(dst, a, v)
	case op == '*':
		vec.MulScalar(dst, a, v)
	case op == '-' && !left:
		vec.AddScalar(dst, a, -v) // a - v and a + (-v) round the same
	case op == '-':
		vec.RSubScalar(dst, a, v)
	case op == '/' && !left:
		vec.DivScalar(dst, a, v)
	case op == '^' && !left && v == 2:
		vec.Mul(dst, a, a) // what the Pow kernel does for a square
	case op == '^' && !left:
		vec.PowScalar(dst, a, v)
	case op == '^':
		for i := range a {
			dst[i] = pow32(v, a[i])
		}
	default:
		vec.RDivScalar(dst, a, v)
	}
}

var binaryOps = map[string]byte{"Add": '+', "Sub": '-', "Mul": '*', "Div": '/', "Pow": '^'}

// fusedKernel runs a region standalone; it falls back to the region's own kernels
// when the input does not fit the program (e.g. a constant that is not per channel).
type fusedKernel struct {
	prog     *ewProgram
	fallback stepList
}

func (f *fusedKernel) Run(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
	x := in[0]
	if x.DType == graph.Float && f.prog.check(x.Shape) {
		out := ctx.Float32(x.Shape)
		f.prog.run(ctx, x.Float32s(), out.Float32s(), x.Shape)
		return one(out), nil
	}
	return f.fallback.run(ctx, x)
}

// stepList is a fused region's original steps with slots local to the region:
// slot 0 is the region's input X, constants are preloaded by a leading step.
type stepList struct {
	steps   []step
	nslots  int
	outSlot int
}

func (l *stepList) run(ctx *Context, x *graph.Tensor) ([]*graph.Tensor, error) {
	return l.runIn(ctx, []*graph.Tensor{x})
}

// runIn runs the steps on inputs in slots 0, 1, ... (see localStepsIn).
func (l *stepList) runIn(ctx *Context, ins []*graph.Tensor) ([]*graph.Tensor, error) {
	vals := make([]*graph.Tensor, l.nslots)
	copy(vals, ins)
	for i := range l.steps {
		st := &l.steps[i]
		args := make([]*graph.Tensor, len(st.in))
		for j, k := range st.in {
			if k >= 0 {
				args[j] = vals[k]
			}
		}
		outs, err := st.k.Run(ctx, args)
		if err != nil {
			return nil, fmt.Errorf("node %s: %v", st.node, err)
		}
		for j, k := range st.out {
			if k >= 0 && j < len(outs) {
				vals[k] = outs[j]
			}
		}
	}
	out := vals[l.outSlot]
	// The intermediates go back to the pool (put ignores buffers not its
	// own: the model's constants); the session frees only the step's
	// inputs and output. Left out, a region run this way every time (a
	// BERT's embeddings, whose position table the fused program does not
	// broadcast) cost a fresh buffer per intermediate per run.
	keep := make([]unsafe.Pointer, 0, len(ins)+1)
	for i := 0; i <= len(ins); i++ {
		t := out
		if i < len(ins) {
			t = ins[i]
		}
		if k, ok := bufKey(t); ok {
			keep = append(keep, k)
		}
	}
	for _, t := range vals {
		if k, ok := bufKey(t); ok && !slices.Contains(keep, k) {
			keep = append(keep, k) // views share a buffer: put it once
			recycleTemp(ctx, t)
		}
	}
	return one(out), nil
}

// fuseRegions finds elementwise regions among the steps and replaces each with one
// fused step (or a Conv epilogue). Runs only without a tap, which must see every
// tensor the graph defines.
// fuseRegions merges elementwise chains; tapped slots, like graph outputs, stay
// materialized.
func (s *Session) fuseRegions(g *graph.Graph, tapped map[int]bool) {
	escapes := map[int]bool{}
	for _, o := range s.outputs {
		escapes[o.slot] = true
	}
	for t := range tapped {
		escapes[t] = true
	}
	s.fuseNorms(escapes)
	s.fuseRope(escapes)
	s.fuseAttention(escapes)
	producer := map[int]int{} // slot -> step index
	for i, st := range s.steps {
		for _, o := range st.out {
			if o >= 0 {
				producer[o] = i
			}
		}
	}
	readers := map[int][]int{} // slot -> step indexes reading it
	for i, st := range s.steps {
		for _, in := range st.in {
			if in >= 0 {
				readers[in] = append(readers[in], i)
			}
		}
	}
	outputs := map[int]bool{}
	for _, o := range s.outputs {
		outputs[o.slot] = true
	}
	for t := range tapped {
		outputs[t] = true
	}
	isConst := func(slot int) bool { return slot >= 0 && s.base[slot] != nil && s.base[slot].DType == graph.Float }
	// candidate reports whether step i is an elementwise float op, given the region's values.
	candidate := func(i int, inRegion map[int]bool) bool {
		st := s.steps[i]
		n := st.node
		if !graph.IsStandardDomain(n.Domain) || len(st.out) != 1 || st.out[0] < 0 || legacyAligned(&st) {
			return false
		}
		if _, ok := binaryOps[n.OpType]; ok && len(st.in) == 2 {
			for _, in := range st.in {
				if in < 0 || !(inRegion[in] || isConst(in)) {
					return false
				}
			}
			return inRegion[st.in[0]] || inRegion[st.in[1]]
		}
		if n.OpType == "BatchNormalization" {
			if len(st.in) < 5 || !inRegion[st.in[0]] {
				return false
			}
			_, _, err := bnAffine(st, s.base)
			return err == nil
		}
		build := activations[n.OpType]
		if build == nil || len(st.in) == 0 || !inRegion[st.in[0]] {
			return false
		}
		for _, in := range st.in[1:] {
			if in >= 0 && !isConst(in) {
				return false
			}
		}
		fn, err := build(st.ni)
		return err == nil && fn != nil
	}
	assigned := map[int]bool{}
	var replaced []int
	newSteps := map[int]step{} // index of the region's last step -> fused step
	for i := range s.steps {
		if assigned[i] {
			continue
		}
		// Seed: an elementwise step reading exactly one non-constant value X.
		var x = -1
		for _, in := range s.steps[i].in {
			if in >= 0 && !isConst(in) {
				if x >= 0 && x != in {
					x = -2
				}
				if x == -1 {
					x = in
				}
			}
		}
		if x < 0 || !candidate(i, map[int]bool{x: true}) {
			continue
		}
		// grow collects the region from the seed; with siblings it also takes
		// other readers of X (x/2 beside erf(x/sqrt2) in Gelu, x^3 beside x in
		// its tanh form). It reports the single value that leaves the region.
		grow := func(siblings bool) (region []int, member map[int]bool, sink int, ok bool) {
			region = []int{i}
			inRegion := map[int]bool{x: true, s.steps[i].out[0]: true}
			member = map[int]bool{i: true}
			for grew := true; grew; {
				grew = false
				for slot := range inRegion {
					if slot == x && !siblings {
						continue
					}
					for _, r := range readers[slot] {
						if !member[r] && !assigned[r] && candidate(r, inRegion) {
							member[r] = true
							region = append(region, r)
							inRegion[s.steps[r].out[0]] = true
							grew = true
						}
					}
				}
			}
			// Exactly one value may leave the region.
			sink = -1
			for slot := range inRegion {
				if slot == x {
					continue
				}
				escapes := outputs[slot]
				for _, r := range readers[slot] {
					if !member[r] {
						escapes = true
					}
				}
				if escapes {
					if sink >= 0 {
						return nil, nil, -1, false
					}
					sink = slot
				}
			}
			return region, member, sink, sink >= 0
		}
		region, member, sink, ok := grow(true)
		if !ok {
			region, member, sink, ok = grow(false)
		}
		if !ok {
			continue
		}
		sort.Ints(region)
		prog, fallback := s.compileRegion(region, x, sink)
		if prog == nil {
			continue
		}
		prog = recognizeActivation(mergeAffines(prog))
		prog.fallback = fallback
		last := region[len(region)-1]
		// Fuse into the producing Conv when nothing else reads X.
		if pi, ok := producer[x]; ok && !outputs[x] && len(readers[x]) == countIn(readers[x], member) {
			if ek, ok := s.steps[pi].k.(epilogueKernel); ok && len(s.steps[pi].out) == 1 && !assigned[pi] && ek.withEpilogue(prog) != nil {
				s.steps[pi].k = ek.withEpilogue(prog)
				s.steps[pi].out[0] = sink
				s.steps[pi].node = s.steps[last].node
				for _, r := range region {
					assigned[r] = true
					replaced = append(replaced, r)
				}
				assigned[pi] = true
				continue
			}
		}
		if len(region) < 2 {
			continue // one op alone gains nothing from fusion
		}
		fused := step{node: s.steps[last].node, ni: s.steps[last].ni, in: []int{x}, out: []int{sink},
			k: &fusedKernel{prog: prog, fallback: fallback}}
		for _, r := range region {
			assigned[r] = true
			if r != last {
				replaced = append(replaced, r)
			}
		}
		newSteps[last] = fused
	}
	if len(replaced) == 0 && len(newSteps) == 0 {
		return
	}
	drop := map[int]bool{}
	for _, r := range replaced {
		drop[r] = true
	}
	kept := make([]step, 0, len(s.steps))
	for i, st := range s.steps {
		if f, ok := newSteps[i]; ok {
			kept = append(kept, f)
			continue
		}
		if !drop[i] {
			kept = append(kept, st)
		}
	}
	s.steps = kept
}

func countIn(list []int, set map[int]bool) int {
	n := 0
	for _, v := range list {
		if set[v] {
			n++
		}
	}
	return n
}

// compileRegion turns the region's steps (in order) into a program, and keeps the
// steps with region-local slots as the fallback.
func (s *Session) compileRegion(region []int, x, sink int) (*ewProgram, stepList) {
	reg := map[int]int{x: 0}
	p := &ewProgram{nregs: 1}
	for _, i := range region {
		st := s.steps[i]
		n := st.node
		op := ewOp{dst: p.nregs, opType: n.OpType}
		if sym, ok := binaryOps[n.OpType]; ok {
			a, b := st.in[0], st.in[1]
			ra, aok := reg[a]
			rb, bok := reg[b]
			op.op = sym
			switch {
			case aok && bok:
				op.kind, op.a, op.b = ewBinary, ra, rb
			case aok:
				op.kind, op.a, op.constant = ewConstR, ra, s.base[b]
			case bok:
				op.kind, op.a, op.constant = ewConstL, rb, s.base[a]
			default:
				return nil, stepList{}
			}
		} else if n.OpType == "BatchNormalization" {
			mul, add, err := bnAffine(st, s.base)
			if err != nil {
				return nil, stepList{}
			}
			op.kind, op.a, op.mul, op.add = ewAffine, reg[st.in[0]], mul, add
		} else {
			fn, err := activations[n.OpType](st.ni)
			if err != nil || fn == nil {
				return nil, stepList{}
			}
			op.kind, op.fn, op.a = ewUnary, fn, reg[st.in[0]]
			switch n.OpType {
			case "Clip":
				if lo, hi, ok, err := clipBounds(st.ni); ok && err == nil {
					op.bounds = &[2]float32{lo, hi}
				}
			case "Relu":
				op.bounds = &[2]float32{0, float32(math.Inf(1))}
			}
		}
		reg[st.out[0]] = p.nregs
		p.nregs++
		p.ops = append(p.ops, op)
		p.names = append(p.names, n.String())
	}
	p.out = reg[sink]
	return p, s.localSteps(region, x, sink)
}

// mergeAffines rewrites a Mul by a constant followed by an Add (or Sub) of a
// constant, where nothing else reads the product, into one affine op: the
// same two roundings as vec.Affine (multiply, then add), so the same bits,
// in one pass instead of two. Exporters write learnable affines this way
// (PP-LCNet's scale and bias around each activation) and BatchNormalization
// too, folded into a Mul and an Add (TensorFlow graphs). Constants are merged
// when both are scalars, or one value per channel (possibly one scalar); a
// per-channel pair is checked against each input's shape (check), since
// [C, 1, 1] runs along a rank-2 input's last axis.
func mergeAffines(p *ewProgram) *ewProgram {
	reads := make([]int, p.nregs)
	for _, op := range p.ops {
		reads[op.a]++
		if op.kind == ewBinary {
			reads[op.b]++
		}
	}
	var ops []ewOp
	for i := 0; i < len(p.ops); i++ {
		op := p.ops[i]
		if i+1 < len(p.ops) && op.dst != p.out && reads[op.dst] == 1 {
			if m, ok := affinePair(op, p.ops[i+1]); ok {
				ops = append(ops, m)
				i++
				continue
			}
		}
		ops = append(ops, op)
	}
	if len(ops) == len(p.ops) {
		return p
	}
	return &ewProgram{ops: ops, nregs: p.nregs, out: p.out, names: p.names, form: p.form}
}

// affinePair merges mul (x * c, or c * x) and add (its result + c, c + it,
// or it - c) into one ewAffine.
func affinePair(mul, add ewOp) (ewOp, bool) {
	isConst := func(op ewOp) bool { return op.kind == ewConstR || op.kind == ewConstL }
	if !isConst(mul) || mul.op != '*' || !isConst(add) || add.a != mul.dst {
		return ewOp{}, false
	}
	neg := false
	switch {
	case add.op == '+':
	case add.op == '-' && add.kind == ewConstR:
		neg = true // it - c rounds as it + (-c)
	default:
		return ewOp{}, false
	}
	if mul.constant.DType != graph.Float || add.constant.DType != graph.Float {
		return ewOp{}, false
	}
	m, c := mul.constant.Float32s(), add.constant.Float32s()
	channels := max(len(m), len(c))
	for _, t := range []*graph.Tensor{mul.constant, add.constant} {
		if t.Len() == 1 {
			continue
		}
		// One value per channel: [C, 1, ...] or [1, C, 1, ...], at least one trailing 1.
		sh := t.Shape
		if len(sh) > 0 && sh[0] == 1 {
			sh = sh[1:]
		}
		if len(sh) < 2 || t.Len() != channels || sh[0] != channels || graph.Numel(sh[1:]) != 1 {
			return ewOp{}, false
		}
	}
	spread := func(v []float32, negate bool) []float32 {
		out := make([]float32, channels)
		for i := range out {
			out[i] = v[min(i, len(v)-1)]
			if negate {
				out[i] = -out[i]
			}
		}
		return out
	}
	return ewOp{kind: ewAffine, opType: mul.opType + "+" + add.opType, a: mul.a, dst: add.dst,
		mul: spread(m, false), add: spread(c, neg), pair: [2]*graph.Tensor{mul.constant, add.constant}}, true
}

// localSteps copies the steps (in order) with slots renumbered local to them:
// x becomes slot 0, and a leading step loads the constants they read.
func (s *Session) localSteps(region []int, x, sink int) stepList {
	return s.localStepsIn(region, []int{x}, sink)
}

// localStepsIn is localSteps for a region with several inputs from outside:
// ins[i] becomes slot i.
func (s *Session) localStepsIn(region []int, ins []int, sink int) stepList {
	local := map[int]int{}
	for i, in := range ins {
		local[in] = i
	}
	nlocal := len(ins)
	localOf := func(slot int) int {
		if slot < 0 {
			return -1
		}
		if l, ok := local[slot]; ok {
			return l
		}
		local[slot] = nlocal
		nlocal++
		return local[slot]
	}
	type constSlot struct {
		slot int
		t    *graph.Tensor
	}
	var consts []constSlot
	var steps []step
	for _, i := range region {
		st := s.steps[i]
		fb := step{node: st.node, ni: st.ni, k: st.k}
		for _, in := range st.in {
			if in >= 0 && s.base[in] != nil {
				consts = append(consts, constSlot{localOf(in), s.base[in]})
			}
			fb.in = append(fb.in, localOf(in))
		}
		for _, o := range st.out {
			fb.out = append(fb.out, localOf(o))
		}
		steps = append(steps, fb)
	}
	if len(consts) > 0 {
		steps = append([]step{{node: s.steps[region[0]].node, k: KernelFunc(func(*Context, []*graph.Tensor) ([]*graph.Tensor, error) {
			out := make([]*graph.Tensor, nlocal)
			for _, e := range consts {
				out[e.slot] = e.t
			}
			return out, nil
		}), out: identitySlots(nlocal, len(ins))}}, steps...)
	}
	return stepList{steps: steps, nslots: nlocal, outSlot: local[sink]}
}

// identitySlots maps slot i to itself, except the first nin (the region's
// inputs), which the constants' step must never overwrite.
func identitySlots(n, nin int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
		if i < nin {
			out[i] = -1
		}
	}
	return out
}

// bnAffine reads an inference BatchNormalization with constant parameters as a
// per-channel multiply-add, computed exactly as the BatchNormalization kernel does.
func bnAffine(st step, base []*graph.Tensor) (mul, add []float32, err error) {
	var params [4]*graph.Tensor
	for i := range params {
		j := st.in[i+1]
		if j < 0 || base[j] == nil || base[j].DType != graph.Float {
			return nil, nil, fmt.Errorf("BatchNormalization parameters are not constant")
		}
		params[i] = base[j]
	}
	a := attrsOf(st.node)
	eps := a.Float("epsilon", 1e-5)
	if a.Int("training_mode", 0) != 0 || a.err != nil {
		return nil, nil, fmt.Errorf("not an inference BatchNormalization")
	}
	c := params[0].Len()
	for _, p := range params[1:] {
		if p.Len() != c {
			return nil, nil, fmt.Errorf("BatchNormalization parameters differ in length")
		}
	}
	mul, add = bnCoefficients(params[0].Float32s(), params[1].Float32s(), params[2].Float32s(), params[3].Float32s(), eps)
	return mul, add, nil
}

// matmulEpilogue runs a fused elementwise program over a MatMul's output in
// place, before anything else reads it.
type matmulEpilogue struct {
	mm   *matmulKernel
	prog *ewProgram
}

// withEpilogue takes programs without per-channel BatchNormalization; their
// constants must be scalars or one value per output column (a bias), which
// the program checks on each output, running the region's own steps when not.
func (mk *matmulKernel) withEpilogue(p *ewProgram) Kernel {
	for _, op := range p.ops {
		if op.kind == ewAffine && len(op.mul) > 1 {
			return nil
		}
	}
	return &matmulEpilogue{mm: mk, prog: p}
}

func (k *matmulEpilogue) Run(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
	outs, err := k.mm.Run(ctx, in)
	if err != nil {
		return nil, err
	}
	out := outs[0]
	if !k.prog.check(out.Shape) {
		// The product is this step's own: the region's steps read it and
		// make the output, and it goes back to the pool (kept, it cost a
		// fresh buffer every run: in DETR's first decoder layer the
		// residual, the queries' start, is a [1, 16, 64] constant folded
		// at load, which the program does not broadcast).
		res, err := k.prog.fallback.run(ctx, out)
		if err == nil && len(res) > 0 {
			if a, ok := bufKey(res[0]); !ok || a != unsafe.Pointer(unsafe.SliceData(out.Float32s())) {
				recycleTemp(ctx, out)
			}
		}
		return res, err
	}
	k.prog.run(ctx, out.Float32s(), out.Float32s(), out.Shape)
	return outs, nil
}
