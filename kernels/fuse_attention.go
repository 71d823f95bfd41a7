package kernels

import (
	"math"
	"slices"
	"sort"
	"sync/atomic"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/kernels/gemm"
	"github.com/onnxq/onnxq/kernels/parallel"
	"github.com/onnxq/onnxq/kernels/vec"
)

// Attention fusion: the scaled dot-product attention that exporters spell out,
//
//	MatMul(Q, Kt) -> [Mul or Div by a scalar] -> [Add mask] -> Softmax(last axis) -> MatMul(., V)
//
// (Kt may be a Transpose of K that nothing else reads: the step transposes K itself)
// runs as one step that takes a block of query rows at a time through scores,
// scale, mask, softmax and the product with V while the block's scores stay in
// cache, instead of five passes over a [heads, S, T] tensor in memory.
//
// Where a mask row ends in a run of large negative values (a causal mask),
// the columns under it are skipped: neither their scores nor their
// exponentials are computed, nor their rows of V read. A check per row makes
// the skip exact: from bounds on |Q|, |K| and the scale it proves that every
// skipped exponent lies below exp's underflow (vec's expLo), where the
// unfused Softmax gives exactly 0; the row is computed in full otherwise.
// The results are the unfused ops' bits: the same GEMM micro-kernels and
// summation orders, the same scale, mask and softmax routines.

// attnBlock is the number of query rows per work item: a multiple of the
// GEMM tiles' 6 and 8 rows, and 48 rows of 256 scores stay in L2.
const attnBlock = 48

// attnFullRows counts the rows whose skip check failed and that were
// computed again in full (the tests read it).
var attnFullRows atomic.Int64

// attnMaskedAt is the mask value at or below which a trailing column is a
// candidate to skip (causal masks use -inf, -1e9, -1e4 or float32's lowest).
const attnMaskedAt = -1e4

type attentionKernel struct {
	scale    *graph.Tensor // the Mul or Div operand, or nil
	kTrans   bool          // input 1 is K [.., T, d], its Transpose fused too
	div      bool          // scores / scale
	hasMask  bool
	opset    int64 // the Softmax's opset and axis
	axis     int64
	fallback stepList // the unfused steps, inputs Q, Kt, [mask,] V
	// last is the layout of the last call's shapes: the same run after
	// run, and laying it out again was a handful of allocations a call.
	last atomic.Pointer[attnShapeMemo]
}

// attnShapeMemo is a layout and the input shapes it is for.
type attnShapeMemo struct {
	q, k, m, v []int
	mask       bool
	g          *attnShape
}

// shapeOf is shape, remembered for the last shapes that had a layout.
func (k *attentionKernel) shapeOf(q, kt, mask, v *graph.Tensor) (*attnShape, bool) {
	if c := k.last.Load(); c != nil && c.mask == (mask != nil) && q.DType == graph.Float && kt.DType == graph.Float &&
		v.DType == graph.Float && slices.Equal(c.q, q.Shape) && slices.Equal(c.k, kt.Shape) && slices.Equal(c.v, v.Shape) &&
		(mask == nil || mask.DType == graph.Float && slices.Equal(c.m, mask.Shape)) {
		return c.g, true
	}
	g, ok := k.shape(q, kt, mask, v)
	if ok {
		c := &attnShapeMemo{q: slices.Clone(q.Shape), k: slices.Clone(kt.Shape), v: slices.Clone(v.Shape), mask: mask != nil, g: g}
		if mask != nil {
			c.m = slices.Clone(mask.Shape)
		}
		k.last.Store(c)
	}
	return g, ok
}

// fuseAttention replaces each attention pattern whose intermediates nothing
// else reads (and are neither outputs nor tapped) with one attentionKernel.
func (s *Session) fuseAttention(escapes map[int]bool) {
	s.fuseMatched(escapes, func(m *normMatcher, i int) (regionKernel, []int, []int, bool) { return m.attention(i) })
}

func (k *attentionKernel) setFallback(f stepList) { k.fallback = f }

// attention matches the pattern from the MatMul at step i; it returns the
// kernel, the fused step's inputs (Q, Kt, [mask,] V) and the steps, in order.
func (m *normMatcher) attention(i int) (k *attentionKernel, ins, region []int, ok bool) {
	s := m.s
	if m.used[i] || !m.op(i, "MatMul") || len(s.steps[i].in) != 2 {
		return nil, nil, nil, false
	}
	q, kt := s.steps[i].in[0], s.steps[i].in[1]
	if q < 0 || kt < 0 {
		return nil, nil, nil, false
	}
	k = &attentionKernel{}
	region = []int{i}
	// K transposed for the product (Transpose swapping its last two axes,
	// read by nothing else): the step transposes K in a scratch buffer.
	if p, ok := m.producer[kt]; ok && m.op(p, "Transpose") && !m.used[p] && len(s.steps[p].in) == 1 && s.steps[p].in[0] >= 0 {
		if r, only := m.only(kt); only && r == i && swapsLastTwo(attrsOf(s.steps[p].node).Ints("perm", nil)) {
			k.kTrans, kt = true, s.steps[p].in[0]
			region = append(region, p)
		}
	}
	cur := s.steps[i].out[0]
	next, ok := m.only(cur)
	if !ok {
		return nil, nil, nil, false
	}
	// The scale: Mul by a scalar constant on either side, or Div by one.
	if in := s.steps[next].in; len(in) == 2 && (m.op(next, "Mul") || m.op(next, "Div")) {
		other := in[1]
		if in[0] != cur {
			other = in[0]
		}
		div := m.op(next, "Div")
		if _, isScalar := m.scalar(other); isScalar && other != cur && (!div || in[0] == cur) {
			k.scale, k.div = s.base[other], div
			region = append(region, next)
			cur = s.steps[next].out[0]
			if next, ok = m.only(cur); !ok {
				return nil, nil, nil, false
			}
		}
	}
	// The mask: an Add of any other float tensor (addition commutes bit for bit).
	var mask = -1
	if in := s.steps[next].in; m.op(next, "Add") && len(in) == 2 && (in[0] == cur) != (in[1] == cur) {
		mask = in[0]
		if mask == cur {
			mask = in[1]
		}
		if mask < 0 {
			return nil, nil, nil, false
		}
		k.hasMask = true
		region = append(region, next)
		cur = s.steps[next].out[0]
		if next, ok = m.only(cur); !ok {
			return nil, nil, nil, false
		}
	}
	if !m.op(next, "Softmax") || len(s.steps[next].in) != 1 {
		return nil, nil, nil, false
	}
	sm := s.steps[next]
	a := attrsOf(sm.node)
	k.opset = sm.ni.Opset
	def := int64(-1)
	if k.opset < 13 {
		def = 1
	}
	k.axis = a.Int("axis", def)
	if a.err != nil {
		return nil, nil, nil, false
	}
	region = append(region, next)
	cur = sm.out[0]
	pv, ok := m.only(cur)
	if !ok || !m.op(pv, "MatMul") || len(s.steps[pv].in) != 2 || s.steps[pv].in[0] != cur || s.steps[pv].in[1] == cur || s.steps[pv].in[1] < 0 {
		return nil, nil, nil, false
	}
	region = append(region, pv)
	for _, j := range region {
		if m.used[j] {
			return nil, nil, nil, false
		}
	}
	sort.Ints(region)
	ins = []int{q, kt}
	if mask >= 0 {
		ins = append(ins, mask)
	}
	ins = append(ins, s.steps[pv].in[1])
	return k, ins, region, true
}

// attnWholeRows is the most query rows a head takes as one block, its
// scores in one scratch of at most attnWholeFloats: in blocks of attnBlock
// rows a head packed its K and V once per block (a small ViT's 65 rows of
// 65 scores, 1x3x65x32, in one block: 0.86-0.87 of the time).
const (
	attnWholeRows   = 128
	attnWholeFloats = 128 * 128
)

// wholeHeads reports whether each head's rows run as one block: short
// sequences, and heads enough that threads share them evenly (one thread,
// a multiple of the threads, or four heads a thread).
func wholeHeads(g *attnShape, heads, threads int) bool {
	if g.s <= attnBlock+8 || g.s > attnWholeRows || g.s*g.t > attnWholeFloats || noWholeHeads {
		return false // one block already, or too long
	}
	return threads <= 1 || heads%threads == 0 || heads >= 4*threads
}

// noWholeHeads keeps heads in attnBlock-row blocks, for the benchmark and
// test that compare.
var noWholeHeads = false

// attnBlocks is the number of row blocks for s query rows: attnBlock rows
// each, and fewer than 8 left over join the last block, so that the product
// with V splits the rows into 8-row tiles as it does for the whole matrix
// (and gives the same bits).
func attnBlocks(s int) int {
	n := (s + attnBlock - 1) / attnBlock
	if n > 1 && s-(n-1)*attnBlock < 8 {
		n--
	}
	return n
}

// swapsLastTwo reports whether perm keeps every axis but the last two, which
// it swaps.
func swapsLastTwo(perm []int64) bool {
	r := len(perm)
	if r < 2 || perm[r-2] != int64(r-1) || perm[r-1] != int64(r-2) {
		return false
	}
	for i, p := range perm[:r-2] {
		if p != int64(i) {
			return false
		}
	}
	return true
}

// attnShape is one call's geometry: scores [batch..., S, T] from Q [.., S, d]
// and Kt [.., d, T]; the output [batch..., S, dv] from V [.., T, dv].
type attnShape struct {
	batch            []int
	s, t, d, dv      int
	qStr, kStr, vStr []int // matrices to skip per batch index (0: broadcast)
	mStr             []int // mask elements per scores index (batch..., row); nil without mask
	maskRows         int
	scaleAbs         float64 // |scale|, or 1/|c| for a Div
	scaleVal         float32
	out              []int
}

// shape checks that the fast path computes exactly what the unfused ops
// would, and lays out the call; false sends the call to the unfused steps.
func (k *attentionKernel) shape(q, kt, mask, v *graph.Tensor) (*attnShape, bool) {
	for _, t := range []*graph.Tensor{q, kt, mask, v} {
		if t != nil && t.DType != graph.Float {
			return nil, false
		}
	}
	if q.Rank() < 2 || kt.Rank() < 2 || v.Rank() < 2 {
		return nil, false
	}
	ks := kt.Shape
	if k.kTrans { // K [.., T, d]: the shape of its transpose
		ks = append(append([]int(nil), ks[:len(ks)-2]...), ks[len(ks)-1], ks[len(ks)-2])
	}
	g := &attnShape{s: q.Shape[q.Rank()-2], d: q.Shape[q.Rank()-1], t: ks[len(ks)-1], dv: v.Shape[v.Rank()-1]}
	if ks[len(ks)-2] != g.d || v.Shape[v.Rank()-2] != g.t || g.s == 0 || g.t == 0 || g.d == 0 || g.dv == 0 {
		return nil, false
	}
	qb, kb, vb := q.Shape[:q.Rank()-2], ks[:len(ks)-2], v.Shape[:v.Rank()-2]
	batch, err := broadcastShape(qb, kb)
	if err != nil {
		return nil, false
	}
	// V must not widen the scores' batch: the output's batch is theirs.
	if ob, err := broadcastShape(batch, vb); err != nil || len(ob) != len(batch) {
		return nil, false
	}
	for i, d := range vb {
		if d != 1 && d != batch[len(batch)-len(vb)+i] {
			return nil, false
		}
	}
	g.batch = batch
	scores := append(append([]int(nil), batch...), g.s, g.t)
	// The Softmax must run along the scores' last axis.
	ax, err := normAxis(k.axis, len(scores))
	if err != nil || ax != len(scores)-1 {
		return nil, false
	}
	g.scaleAbs = 1
	if k.scale != nil {
		if k.scale.Rank() > len(scores) {
			return nil, false
		}
		g.scaleVal = k.scale.Float32s()[0]
		g.scaleAbs = math.Abs(float64(g.scaleVal))
		if k.div {
			g.scaleAbs = 1 / g.scaleAbs
		}
	}
	if mask != nil {
		if mask.Rank() == 0 || mask.Shape[mask.Rank()-1] != g.t {
			return nil, false
		}
		if bs, err := broadcastShape(mask.Shape, scores); err != nil || len(bs) != len(scores) {
			return nil, false
		} else {
			for i := range bs {
				if bs[i] != scores[i] {
					return nil, false
				}
			}
		}
		g.mStr = bcastStrides(mask.Shape, scores)[:len(scores)-1]
		g.maskRows = mask.Len() / g.t
	}
	g.qStr = matStrides(qb, batch)
	g.kStr = matStrides(kb, batch)
	g.vStr = matStrides(vb, batch)
	g.out = append(append([]int(nil), batch...), g.s, g.dv)
	return g, true
}

// matStrides is, per batch dimension, how many matrices an operand with batch
// shape b advances (0 where it broadcasts).
func matStrides(b, batch []int) []int {
	if len(b) == 0 {
		return make([]int, len(batch))
	}
	return bcastStrides(b, batch)
}

// offsets returns the matrix index of each operand and the mask element
// offset of row 0, for batch index bi.
func (g *attnShape) offsets(bi int) (qo, ko, vo, mo int) {
	for d, rest := len(g.batch)-1, bi; d >= 0; d-- {
		i := rest % g.batch[d]
		qo += i * g.qStr[d]
		ko += i * g.kStr[d]
		vo += i * g.vStr[d]
		if g.mStr != nil {
			mo += i * g.mStr[d]
		}
		rest /= g.batch[d]
	}
	return
}

func (k *attentionKernel) Run(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
	if err := need(in, 3); err != nil {
		return nil, err
	}
	q, kt, v := in[0], in[1], in[len(in)-1]
	var mask *graph.Tensor
	if k.hasMask {
		if len(in) != 4 {
			return k.fallback.runIn(ctx, in)
		}
		mask = in[2]
	}
	if q == nil || kt == nil || v == nil || (k.hasMask && mask == nil) {
		return k.fallback.runIn(ctx, in)
	}
	g, ok := k.shapeOf(q, kt, mask, v)
	if !ok {
		return k.fallback.runIn(ctx, in)
	}
	out := ctx.Float32(g.out)
	qd, kd, vd, od := q.Float32s(), kt.Float32s(), v.Float32s(), out.Float32s()
	if k.kTrans {
		// Each K [T, d] transposed once here: the GEMM's packing of a
		// transposed operand is an element-at-a-time loop, run per block.
		kd = ctx.Scratch(kt.Len())
		defer ctx.Release(kd)
		transposeMats(kd, kt.Float32s(), g.t, g.d)
	}
	var md []float32
	var tails *maskTail
	if mask != nil {
		md = mask.Float32s()
		if tails = maskTails(md, g.t); !tails.any(g.t) {
			// An additive bias (Swin's relative positions), nothing masked:
			// the keys' norms and the per-row bounds would find nothing to
			// skip, and cost a window attention 25% of its time.
			tails = nil
		}
	}
	nb := graph.Numel(g.batch)
	// Per batch index: the largest norm of a key and whether V is finite,
	// for the skip check (only where a mask row has a tail to skip).
	var knorm []float64
	var vFinite []bool
	if tails != nil {
		knorm, vFinite = make([]float64, nb), make([]bool, nb)
		// Split over threads too: serial, these scans held two threads to
		// 1.5x on stories260K's attention.
		parallel.For(threadsFor(ctx, nb*g.t*(g.d+g.dv), 1<<14), nb, func(bi int) {
			_, ko, vo, _ := g.offsets(bi)
			sq := ctx.Scratch(2 * g.t)
			knorm[bi] = maxColumnNorm(kd[ko*g.d*g.t:(ko+1)*g.d*g.t], g.d, g.t, sq)
			ctx.Release(sq)
			vFinite[bi] = !math.IsInf(absMax(vd[vo*g.t*g.dv:(vo+1)*g.t*g.dv]), 0)
		})
	}
	blocks, per := attnBlocks(g.s), attnBlock
	threads := threadsFor(ctx, nb*g.s*g.t*(g.d+g.dv+16), minBatchMACs)
	if wholeHeads(g, nb, threads) {
		blocks, per = 1, g.s
	}
	items := nb * blocks
	w := attnItems{k: k, g: g, blocks: blocks, per: per, qd: qd, kd: kd, vd: vd, md: md, od: od, tails: tails, knorm: knorm, vFinite: vFinite}
	if seats := min(threads, items); seats <= 1 {
		// One seat: no closure or scratch table for the pool, garbage on
		// every call.
		sc := ctx.Scratch((per + 8) * g.t)
		for it := 0; it < items; it++ {
			w.run(sc, it)
		}
		ctx.Release(sc)
		return one(out), nil
	}
	scratch := make([][]float32, min(threads, items))
	wp := new(attnItems) // a copy for the pool: w stays on the stack
	*wp = w
	parallel.ForSeat(len(scratch), items, func(seat, it int) {
		if scratch[seat] == nil {
			scratch[seat] = ctx.Scratch((per + 8) * g.t)
		}
		wp.run(scratch[seat], it)
	})
	for _, b := range scratch {
		if b != nil {
			ctx.Release(b)
		}
	}
	return one(out), nil
}

// attnItems is one call's work items: blocks of per rows (the last one
// shorter) of each batch index.
type attnItems struct {
	k                  *attentionKernel
	g                  *attnShape
	blocks, per        int
	qd, kd, vd, md, od []float32
	tails              *maskTail
	knorm              []float64 // per batch index, where tails is not nil
	vFinite            []bool
}

// run computes item it with sc for its scores.
func (w *attnItems) run(sc []float32, it int) {
	g := w.g
	bi, blk := it/w.blocks, it%w.blocks
	i0 := blk * w.per
	i1 := i0 + w.per
	if blk == w.blocks-1 {
		i1 = g.s
	}
	kn, vf := 0.0, false
	if w.tails != nil {
		kn, vf = w.knorm[bi], w.vFinite[bi]
	}
	w.k.block(g, sc, bi, i0, i1, w.qd, w.kd, w.vd, w.md, w.od, w.tails, kn, vf)
}

// block computes output rows [i0, i1) of batch index bi; sc holds the
// block's scores, then its probabilities, rows of length g.t.
func (k *attentionKernel) block(g *attnShape, sc []float32, bi, i0, i1 int, qd, kd, vd, md, od []float32, tails *maskTail, knorm float64, vFinite bool) {
	qo, ko, vo, mo := g.offsets(bi)
	rows := i1 - i0
	qm := qd[(qo*g.s+i0)*g.d : (qo*g.s+i1)*g.d]
	km := kd[ko*g.d*g.t : (ko+1)*g.d*g.t]
	vm := vd[vo*g.t*g.dv : (vo+1)*g.t*g.dv]
	maskRow := func(i int) []float32 {
		o := mo + i*g.mStr[len(g.mStr)-1]
		return md[o : o+g.t]
	}
	// Each row's length: up to the start of its mask's skippable tail.
	var lens [attnWholeRows + 8]int
	// hi[r] bounds row r's masked scores from above: the largest mask value
	// in its tail plus the largest |score| the row can have after scaling,
	// ||q_r|| * max_j ||k_j|| * |scale| (Cauchy-Schwarz), with room for the
	// float32 roundings of the d-term dot product and the scale. A bound on
	// the row's own query, not on the block's largest element times d, keeps
	// the check from failing on models with a few large activations
	// (stories260K's last three layers recomputed rows in full). Not finite
	// when Q, Kt or V holds an Inf or a NaN: nothing is skipped then.
	var hi [attnWholeRows + 8]float64
	width := 0
	for r := 0; r < rows; r++ {
		lens[r] = g.t
		if tails != nil && vFinite {
			bound := euclid(qm[r*g.d:(r+1)*g.d]) * knorm * g.scaleAbs * (1 + 1e-3)
			mr := (mo + (i0+r)*g.mStr[len(g.mStr)-1]) / g.t
			if l := int(tails.start[mr]); l > 0 && !math.IsInf(bound, 0) && !math.IsNaN(bound) {
				lens[r] = l
				hi[r] = float64(tails.max[mr]) + bound
			}
		}
		width = max(width, lens[r])
	}
	kmat := gemm.Matrix{Data: km, Stride: g.t}
	gemm.Sgemm(rows, width, g.d, 1, gemm.Matrix{Data: qm, Stride: g.d}, kmat, 0, sc, g.t, 1)
	kEff := width
	if tails == nil {
		// Every row whole: their maxima, then one call for all the rows
		// (the bits of the loop below, which waits on each short row's
		// exp and sum in turn).
		var maxes [attnWholeRows + 8]float32
		for r := 0; r < rows; r++ {
			maxes[r] = k.scoreMax(g, sc[r*g.t:(r+1)*g.t], md, maskRow, i0+r)
		}
		vec.SoftmaxRows(sc, sc, rows, g.t, g.t, maxes[:rows])
	}
	for r := 0; r < rows && tails != nil; r++ {
		row := sc[r*g.t : (r+1)*g.t]
		n := lens[r]
		m := k.scoreMax(g, row[:n], md, maskRow, i0+r)
		if n < g.t {
			// Every skipped score is at most attnMaskedAt + bound; its exponent
			// (score - m) must round below expLo for the unfused softmax to
			// give exactly 0 there. Margins cover the float32 roundings.
			// A tail of -Inf gives exactly 0 against any finite max.
			h, mf := hi[r], float64(m)
			zero := math.IsInf(h, -1) || h-mf+1e-6*(math.Abs(h)+math.Abs(mf)) < vec.ExpUnderflow-1
			if math.IsInf(mf, 0) || math.IsNaN(mf) || !zero {
				// Not provably zero: the whole row, as the unfused ops do.
				attnFullRows.Add(1)
				gemm.Sgemm(1, g.t, g.d, 1, gemm.Matrix{Data: qm[r*g.d:], Stride: g.d}, kmat, 0, row, g.t, 1)
				n = g.t
				lens[r] = n
				m = k.scoreMax(g, row, md, maskRow, i0+r)
				kEff = g.t
			}
		}
		vec.SoftmaxRows(row, row, 1, n, n, []float32{m})
	}
	for r := 0; r < rows; r++ {
		clear(sc[r*g.t+lens[r] : r*g.t+kEff])
	}
	gemm.Sgemm(rows, g.dv, kEff, 1, gemm.Matrix{Data: sc, Stride: g.t}, gemm.Matrix{Data: vm, Stride: g.dv}, 0, od[(bi*g.s+i0)*g.dv:], g.dv, 1)
}

// scoreMax scales row (the first len(row) scores of query row i) and adds
// its mask, as the unfused Mul (or Div) and Add compute them, and returns
// the row's largest value as Softmax finds it. With a mask it is one pass
// (without a scale the multiplier 1 changes no bits).
func (k *attentionKernel) scoreMax(g *attnShape, row, md []float32, maskRow func(int) []float32, i int) float32 {
	if md != nil {
		mr := maskRow(i)[:len(row)]
		switch {
		case k.scale == nil:
			return vec.MulAddMax(row, row, mr, 1)
		case k.div:
			return vec.DivAddMax(row, row, mr, g.scaleVal)
		default:
			return vec.MulAddMax(row, row, mr, g.scaleVal)
		}
	}
	if k.scale != nil {
		if k.div {
			vec.DivScalar(row, row, g.scaleVal)
		} else {
			vec.MulScalar(row, row, g.scaleVal)
		}
	}
	return vec.MaxOf(row)
}

// transposeMats writes each r x c matrix of src transposed into dst.
func transposeMats(dst, src []float32, r, c int) {
	for o := 0; o+r*c <= len(src); o += r * c {
		transposeBlocked(dst[o:o+r*c], src[o:o+r*c], r, c, 0, c)
	}
}

// maskTail describes each row of a mask's trailing run of values at or
// below attnMaskedAt: where it begins (t when there is none) and its largest
// value (-Inf for a run of -Inf, as causal masks are often written).
type maskTail struct {
	start []int32
	max   []float32
}

// any reports whether some row of t values has a masked tail.
func (mt *maskTail) any(t int) bool {
	for _, s := range mt.start {
		if int(s) < t {
			return true
		}
	}
	return false
}

// maskTails finds the trailing masked run of each row of t mask values.
func maskTails(md []float32, t int) *maskTail {
	n := len(md) / t
	mt := &maskTail{start: make([]int32, n), max: make([]float32, n)}
	for r := 0; r < n; r++ {
		row := md[r*t : (r+1)*t]
		j := t
		for j > 0 && row[j-1] <= attnMaskedAt {
			j--
		}
		// No NaN in the run (it fails the comparison): MaxOf's value is
		// the run's largest, -Inf for an empty run.
		mt.start[r], mt.max[r] = int32(j), vec.MaxOf(row[j:])
	}
	return mt
}

// euclid is the Euclidean norm of x, +Inf or NaN when x holds an Inf or a
// NaN. Attention heads are often 8-64 wide: a plain loop beats the call.
func euclid(x []float32) float64 {
	if len(x) > 32 {
		return math.Sqrt(vec.SumSqDev(x, 0))
	}
	s := 0.0
	for _, v := range x {
		s += float64(v) * float64(v)
	}
	return math.Sqrt(s)
}

// maxColumnNorm bounds from above the largest Euclidean norm of a column of
// the d x t matrix m (a key, in Kt), +Inf when m holds an Inf or a NaN (or
// a square overflows). The squares add up in float32 vectors, a row at a
// time (sq: 2t floats of scratch); their d+1 roundings of at most 2^-24 of
// a sum of non-negative terms are covered by the factor at the end.
func maxColumnNorm(m []float32, d, t int, sq []float32) float64 {
	if s := vec.Sum(m); math.IsInf(s, 0) || math.IsNaN(s) {
		return math.Inf(1)
	}
	acc, tmp := sq[:t], sq[t:2*t]
	vec.Mul(acc, m[:t], m[:t])
	for i := 1; i < d; i++ {
		row := m[i*t : (i+1)*t]
		vec.Mul(tmp, row, row)
		vec.Add(acc, acc, tmp)
	}
	return math.Sqrt(float64(vec.MaxOf(acc)) * (1 + float64(d+1)*0x1p-23))
}

// absMax is the largest |x|, +Inf when x holds an Inf or a NaN.
func absMax(x []float32) float64 {
	if s := vec.Sum(x); math.IsInf(s, 0) || math.IsNaN(s) {
		return math.Inf(1)
	}
	lo, hi := vec.MinMax(x)
	return math.Max(-float64(lo), float64(hi))
}
