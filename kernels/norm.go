package kernels

import (
	"fmt"
	"math"
	"sync"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/kernels/vec"
)

// newBatchNorm is inference BatchNormalization: y = scale * (x - mean) / sqrt(var + eps) + bias,
// per channel (axis 1).
func newBatchNorm(ni *NodeInfo) (Kernel, error) {
	a := attrsOf(ni.Node)
	eps := a.Float("epsilon", 1e-5)
	training := a.Int("training_mode", 0) != 0
	if a.err != nil {
		return nil, a.err
	}
	if training {
		return nil, fmt.Errorf("BatchNormalization in training mode is not supported")
	}
	return KernelFunc(func(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
		if err := need(in, 5); err != nil {
			return nil, err
		}
		x := in[0]
		if err := wantFloat(x, "BatchNormalization input"); err != nil {
			return nil, err
		}
		if x.Rank() < 2 {
			return nil, fmt.Errorf("BatchNormalization input must have rank >= 2")
		}
		c := x.Shape[1]
		var params [4][]float32
		for i := range params {
			t := in[i+1]
			if t.Len() != c || t.DType != graph.Float {
				return nil, fmt.Errorf("BatchNormalization parameter %d has shape %v %s, want [%d] float32", i+1, t.Shape, t.DType.Short(), c)
			}
			params[i] = t.Float32s()
		}
		mul, add := bnCoefficients(params[0], params[1], params[2], params[3], eps)
		out := ctx.Float32(x.Shape)
		channelAffine(ctx, x.Float32s(), out.Float32s(), x.Shape[0], c, graph.Numel(x.Shape[2:]), mul, add)
		return one(out), nil
	}), nil
}

// bnCoefficients turns BatchNormalization parameters into y = x * mul + add.
func bnCoefficients(scale, bias, mean, variance []float32, eps float32) (mul, add []float32) {
	mul = make([]float32, len(scale))
	add = make([]float32, len(scale))
	for i := range scale {
		inv := float32(1 / math.Sqrt(float64(variance[i])+float64(eps)))
		mul[i] = scale[i] * inv
		add[i] = bias[i] - mean[i]*mul[i]
	}
	return mul, add
}

// channelAffine computes y = x * mul[c] + add[c] over an N x C x plane tensor.
func channelAffine(ctx *Context, x, y []float32, n, c, plane int, mul, add []float32) {
	parallelFor(threadsFor(ctx, n*c*plane, 1<<15), n*c, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			vec.Affine(y[i*plane:(i+1)*plane], x[i*plane:(i+1)*plane], mul[i%c], add[i%c])
		}
	})
}

func newInstanceNorm(ni *NodeInfo) (Kernel, error) {
	a := attrsOf(ni.Node)
	eps := float64(a.Float("epsilon", 1e-5))
	return KernelFunc(func(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
		if err := need(in, 3); err != nil {
			return nil, err
		}
		x := in[0]
		if err := wantFloat(x, "InstanceNormalization input"); err != nil {
			return nil, err
		}
		n, c := x.Shape[0], x.Shape[1]
		plane := graph.Numel(x.Shape[2:])
		scale, bias := in[1].Float32s(), in[2].Float32s()
		if len(scale) != c || len(bias) != c {
			return nil, fmt.Errorf("scale and bias must have %d values", c)
		}
		out := ctx.Float32(x.Shape)
		xd, od := x.Float32s(), out.Float32s()
		parallelFor(threadsFor(ctx, n*c*plane, 1<<15), n*c, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				row := xd[i*plane : (i+1)*plane]
				mean, variance := meanVar(row)
				inv := 1 / math.Sqrt(variance+eps)
				normalizeRow(od[i*plane:(i+1)*plane], row, mean, inv, scale[i%c], bias[i%c])
			}
		})
		return one(out), nil
	}), a.err
}

// newGroupNorm is GroupNormalization: each sample's channels in num_groups
// groups (a group's channels and their spatial elements are one contiguous
// block), normalized by the block's mean and variance as InstanceNormalization
// normalizes a channel (float64 statistics and arithmetic; stash_type 1, the
// default, asks for at least float32), then scaled and shifted: per group at
// opset 18 (scale and bias have num_groups values), per channel from opset
// 21 (C values).
func newGroupNorm(ni *NodeInfo) (Kernel, error) {
	a := attrsOf(ni.Node)
	eps := float64(a.Float("epsilon", 1e-5))
	groups := int(a.Int("num_groups", 0))
	perChannel := ni.Opset >= 21
	if a.err != nil {
		return nil, a.err
	}
	if groups <= 0 {
		return nil, fmt.Errorf("GroupNormalization needs a positive num_groups, got %d", groups)
	}
	if st := a.Int("stash_type", 1); st != 1 {
		return nil, fmt.Errorf("GroupNormalization stash_type %d is not supported (1: float32)", st)
	}
	return KernelFunc(func(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
		if err := need(in, 3); err != nil {
			return nil, err
		}
		x := in[0]
		if err := wantFloat(x, "GroupNormalization input"); err != nil {
			return nil, err
		}
		if x.Rank() < 2 {
			return nil, fmt.Errorf("GroupNormalization input must be N x C x ..., got %v", x.Shape)
		}
		n, c := x.Shape[0], x.Shape[1]
		if c%groups != 0 {
			return nil, fmt.Errorf("%d channels do not split into %d groups", c, groups)
		}
		want := groups
		if perChannel {
			want = c
		}
		if err := wantFloat(in[1], "GroupNormalization scale"); err != nil {
			return nil, err
		}
		if err := wantFloat(in[2], "GroupNormalization bias"); err != nil {
			return nil, err
		}
		scale, bias := in[1].Float32s(), in[2].Float32s()
		if len(scale) != want || len(bias) != want {
			return nil, fmt.Errorf("scale and bias must have %d values, got %d and %d", want, len(scale), len(bias))
		}
		plane := graph.Numel(x.Shape[2:])
		per := c / groups // channels per group
		block := per * plane
		out := ctx.Float32(x.Shape)
		xd, od := x.Float32s(), out.Float32s()
		parallelFor(threadsFor(ctx, n*c*plane, 1<<15), n*groups, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				g := i % groups
				mean, variance := meanVar(xd[i*block : (i+1)*block])
				inv := 1 / math.Sqrt(variance+eps)
				for ch := 0; ch < per; ch++ {
					k := g
					if perChannel {
						k = g*per + ch
					}
					at := i*block + ch*plane
					normalizeRow(od[at:at+plane], xd[at:at+plane], mean, inv, scale[k], bias[k])
				}
			}
		})
		return one(out), nil
	}), a.err
}

// newLpNorm is LpNormalization: x divided by its L1 (p 1) or L2 (p 2) norm
// along axis, the norm summed in float64. A zero norm gives zeros (the spec
// leaves 0/0 open; ONNX Runtime writes 0 there too).
func newLpNorm(ni *NodeInfo) (Kernel, error) {
	a := attrsOf(ni.Node)
	axis := a.Int("axis", -1)
	p := a.Int("p", 2)
	if a.err != nil {
		return nil, a.err
	}
	if p != 1 && p != 2 {
		return nil, fmt.Errorf("LpNormalization p must be 1 or 2, got %d", p)
	}
	return KernelFunc(func(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
		if err := need(in, 1); err != nil {
			return nil, err
		}
		x := in[0]
		if err := wantFloat(x, "LpNormalization input"); err != nil {
			return nil, err
		}
		ax, err := normAxis(axis, x.Rank())
		if err != nil {
			return nil, err
		}
		outer, dim, inner := graph.Numel(x.Shape[:ax]), x.Shape[ax], graph.Numel(x.Shape[ax+1:])
		out := ctx.Float32(x.Shape)
		xd, od := x.Float32s(), out.Float32s()
		norm := make([]float64, inner)
		for o := 0; o < outer; o++ {
			clear(norm)
			base := o * dim * inner
			for j := 0; j < dim; j++ {
				for i, v := range xd[base+j*inner : base+(j+1)*inner] {
					if p == 1 {
						norm[i] += math.Abs(float64(v))
					} else {
						norm[i] += float64(v) * float64(v)
					}
				}
			}
			if p == 2 {
				for i, s := range norm {
					norm[i] = math.Sqrt(s)
				}
			}
			for j := 0; j < dim; j++ {
				src, dst := xd[base+j*inner:base+(j+1)*inner], od[base+j*inner:base+(j+1)*inner]
				for i, v := range src {
					if norm[i] == 0 {
						dst[i] = 0
					} else {
						dst[i] = float32(float64(v) / norm[i])
					}
				}
			}
		}
		return one(out), nil
	}), nil
}

// normalizeRow sets dst to (row - mean) * inv * scale + bias in float64, as
// row*k + c (k = inv*scale, c = bias - mean*k): two operations an element;
// float64 keeps the cancellation of a large mean far below float32's
// precision.
func normalizeRow(dst, row []float32, mean, inv float64, scale, bias float32) {
	k := inv * float64(scale)
	vec.AffineF64(dst[:len(row)], row, k, float64(bias)-mean*k)
}

// meanVar is the mean and population variance, accumulated in float64 (two
// passes, so a large mean does not cancel).
func meanVar(v []float32) (float64, float64) {
	mean := vec.Sum(v) / float64(len(v))
	return mean, vec.SumSqDev(v, mean) / float64(len(v))
}

// newLayerNorm normalizes over the axes from axis on; outputs Y and optionally Mean
// and InvStdDev.
func newLayerNorm(ni *NodeInfo) (Kernel, error) {
	a := attrsOf(ni.Node)
	axis := a.Int("axis", -1)
	eps := float64(a.Float("epsilon", 1e-5))
	// The Mean and InvStdDev outputs are made only when the node has them:
	// exporters leave them off, and two fresh tensors a run would be garbage.
	stats := false
	for _, o := range ni.Node.Outputs[min(1, len(ni.Node.Outputs)):] {
		stats = stats || o != nil
	}
	return KernelFunc(func(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
		if err := need(in, 2); err != nil {
			return nil, err
		}
		x := in[0]
		if err := wantFloat(x, "LayerNormalization input"); err != nil {
			return nil, err
		}
		ax, err := normAxis(axis, x.Rank())
		if err != nil {
			return nil, err
		}
		norm := x.Shape[ax:]
		rows, cols := graph.Numel(x.Shape[:ax]), graph.Numel(norm)
		scaleT := in[1]
		if err := wantFloat(scaleT, "LayerNormalization scale"); err != nil {
			return nil, err
		}
		if !broadcastsTo(scaleT.Shape, norm) {
			return nil, fmt.Errorf("scale shape %v does not broadcast to %v", scaleT.Shape, norm)
		}
		scale, scratch := normParam(ctx, scaleT, norm)
		if scratch {
			defer ctx.Release(scale)
		}
		var bias []float32
		if len(in) > 2 && in[2] != nil {
			if err := wantFloat(in[2], "LayerNormalization bias"); err != nil {
				return nil, err
			}
			if !broadcastsTo(in[2].Shape, norm) {
				return nil, fmt.Errorf("bias shape %v does not broadcast to %v", in[2].Shape, norm)
			}
			b, scratch := normParam(ctx, in[2], norm)
			if scratch {
				defer ctx.Release(b)
			}
			bias = b
		}
		out := ctx.Float32(x.Shape)
		var meanT, invT *graph.Tensor
		var md, id []float32
		if stats {
			statShape := append([]int(nil), x.Shape...)
			for i := ax; i < len(statShape); i++ {
				statShape[i] = 1
			}
			meanT, invT = ctx.Float32(statShape), ctx.Float32(statShape)
			md, id = meanT.Float32s(), invT.Float32s()
		}
		xd, od := x.Float32s(), out.Float32s()
		if threads := threadsFor(ctx, rows*cols, 1<<15); threads > 1 {
			parallelFor(threads, rows, func(lo, hi int) { layerNormRows(od, xd, scale, bias, md, id, cols, eps, lo, hi) })
		} else { // no closure for the pool: garbage on every call
			layerNormRows(od, xd, scale, bias, md, id, cols, eps, 0, rows)
		}
		if !stats {
			return one(out), nil
		}
		return []*graph.Tensor{out, meanT, invT}, nil
	}), a.err
}

// layerNormRows normalizes rows [lo, hi) of xd (cols wide) into od, and
// keeps each row's mean and 1/sqrt(variance + eps) in md and id when they
// are not nil.
func layerNormRows(od, xd, scale, bias, md, id []float32, cols int, eps float64, lo, hi int) {
	for r := lo; r < hi; r++ {
		row := xd[r*cols : (r+1)*cols]
		mean, variance := meanVar(row)
		inv := 1 / math.Sqrt(variance+eps)
		if md != nil {
			md[r], id[r] = float32(mean), float32(inv)
		}
		// (x - mean) * inv * scale + bias in one pass, rounded step by
		// step as four passes would.
		vec.NormAffine(od[r*cols:(r+1)*cols], row, scale, bias, -float32(mean), float32(inv))
	}
}

// normParam is a normalization's scale or bias over the normalized axes
// (t broadcasts to them): the tensor's own data when it has their size (it
// then is its own broadcast; a copy each run was garbage), else a broadcast
// copy in Scratch, which scratch reports (Release it then).
func normParam(ctx *Context, t *graph.Tensor, norm []int) (d []float32, scratch bool) {
	if t.Len() == graph.Numel(norm) {
		return t.Float32s(), false
	}
	d = ctx.Scratch(graph.Numel(norm))
	copy(d, broadcastTo(t, norm).Float32s())
	return d, true
}

// newSoftmax covers Softmax and LogSoftmax: before opset 13 the input is coerced to
// 2-D at axis (default 1); from 13 on, the op runs along one axis (default -1).
func newSoftmax(log bool) Factory {
	return func(ni *NodeInfo) (Kernel, error) {
		a := attrsOf(ni.Node)
		def := int64(-1)
		if ni.Opset < 13 {
			def = 1
		}
		axis := a.Int("axis", def)
		return KernelFunc(func(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
			if err := need(in, 1); err != nil {
				return nil, err
			}
			x := in[0]
			if err := wantFloat(x, "Softmax input"); err != nil {
				return nil, err
			}
			r := x.Rank()
			if r == 0 {
				return nil, fmt.Errorf("Softmax of a scalar")
			}
			ax, err := normAxis(axis, r)
			if err != nil {
				return nil, err
			}
			var outer, dim, inner int
			if ni.Opset < 13 {
				outer, dim, inner = graph.Numel(x.Shape[:ax]), graph.Numel(x.Shape[ax:]), 1
			} else {
				outer, dim, inner = graph.Numel(x.Shape[:ax]), x.Shape[ax], graph.Numel(x.Shape[ax+1:])
			}
			out := ctx.Float32(x.Shape)
			xd, od := x.Float32s(), out.Float32s()
			if inner >= softmaxColsMin && dim > 0 && !noSoftmaxCols {
				blocks := (inner + softmaxColBlock - 1) / softmaxColBlock
				parallelFor(threadsFor(ctx, outer*dim*inner, 1<<14), outer*blocks, func(lo, hi int) {
					sc := softmaxScratch.Get().(*softmaxColumns)
					defer softmaxScratch.Put(sc)
					for it := lo; it < hi; it++ {
						o, b := it/blocks, it%blocks
						sc.run(od[o*dim*inner:(o+1)*dim*inner], xd[o*dim*inner:(o+1)*dim*inner], dim, inner,
							b*softmaxColBlock, min(inner, (b+1)*softmaxColBlock), log)
					}
				})
				return one(out), nil
			}
			if inner == 1 { // the last axis: rows in place, no index arithmetic per row
				parallelFor(threadsFor(ctx, outer*dim, 1<<14), outer, func(lo, hi int) {
					softmaxRows(od[lo*dim:hi*dim], xd[lo*dim:hi*dim], dim, log)
				})
				return one(out), nil
			}
			parallelFor(threadsFor(ctx, outer*dim*inner, 1<<14), outer*inner, func(lo, hi int) {
				// rows along a strided axis are gathered into contiguous buffers
				xrow, orow := make([]float32, dim), make([]float32, dim)
				for idx := lo; idx < hi; idx++ {
					o, i := idx/inner, idx%inner
					base := o*dim*inner + i
					for j := range xrow {
						xrow[j] = xd[base+j*inner]
					}
					softmaxRow(orow, xrow, log)
					for j, v := range orow {
						od[base+j*inner] = v
					}
				}
			})
			return one(out), nil
		}), a.err
	}
}

// softmaxRow writes softmax(x) (or log-softmax) to dst: the max, one pass of
// exp(x - max) that also sums (in float64), and one scaling pass.
// softmaxColsMin is the least number of columns (the axes after Softmax's)
// for which it runs row-wise over them (softmaxColumns) instead of
// gathering each column: YOLOv8's box head takes it over 16 bins for 8400
// anchors.
const softmaxColsMin = 8

// noSoftmaxCols gathers every column, for the tests that compare.
var noSoftmaxCols = false

// softmaxColumns computes Softmax (or LogSoftmax) down the columns of a
// dim x inner block, a row at a time, so each step is a vector operation
// over contiguous rows: the columns' maximum (vec.Max), x - max and its
// exp (vec.Add of the negated maximum, vec.Exp), the sums in float64, then
// the scale by float32(1/sum) (or the log's subtraction), as softmaxRow
// computes a row; the sums add in row order, so the last bit can differ
// from softmaxRow's. It takes softmaxColBlock columns at a time, so that
// their rows stay in L2 from the maximum's pass to the scaling (1x80x8400
// whole: 552 us, in blocks of 512 310), and blocks are the threads' work items
// (one image's Softmax was one thread's).
type softmaxColumns struct {
	m, neg, inv [softmaxColBlock]float32
	sum         [softmaxColBlock]float64
}

// softmaxScratch holds softmaxColumns (20 KiB) between runs: garbage per
// run costs page faults (see Session.vals).
var softmaxScratch = sync.Pool{New: func() any { return new(softmaxColumns) }}

// softmaxColBlock is the columns softmaxColumns takes at once.
const softmaxColBlock = 512

// run computes columns [c0, c1) (at most softmaxColBlock) of the block at
// x (rows inner apart) into dst.
func (c *softmaxColumns) run(dst, x []float32, dim, inner, c0, c1 int, log bool) {
	w := c1 - c0
	m, neg, inv, sum := c.m[:w], c.neg[:w], c.inv[:w], c.sum[:w]
	row := func(buf []float32, j int) []float32 { return buf[j*inner+c0 : j*inner+c1] }
	copy(m, row(x, 0))
	for j := 1; j < dim; j++ {
		vec.Max(m, m, row(x, j))
	}
	for i, v := range m {
		neg[i] = -v
	}
	clear(sum)
	for j := 0; j < dim; j++ {
		r := row(dst, j)
		vec.Add(r, row(x, j), neg)
		if log {
			continue
		}
		vec.Exp(r, r)
		vec.WidenAdd(sum, r)
	}
	if log {
		// x - max - log(sum of e^(x - max)), the sum from a scratch row.
		tmp := inv
		for j := 0; j < dim; j++ {
			vec.Exp(tmp, row(dst, j))
			vec.WidenAdd(sum, tmp)
		}
		for i, s := range sum {
			neg[i] = -float32(math.Log(s))
		}
		for j := 0; j < dim; j++ {
			r := row(dst, j)
			vec.Add(r, r, neg)
		}
		return
	}
	for i, s := range sum {
		inv[i] = float32(1 / s)
	}
	for j := 0; j < dim; j++ {
		r := row(dst, j)
		vec.Mul(r, r, inv)
	}
}

func softmaxRow(dst, x []float32, log bool) {
	m := vec.MaxOf(x) // a NaN anywhere makes the sum and every output NaN
	if !log {
		vec.SoftmaxRows(dst, x, 1, len(x), len(x), []float32{m})
		return
	}
	s := vec.ExpSum(dst, x, m)
	vec.AddScalar2(dst, x, -m, -float32(math.Log(s)))
}

// softmaxRows is softmaxRow over the rows of x (dim long), a block of rows
// at a time: each row's maximum, then the block's Softmax in one call
// (vec.SoftmaxRows: per-row calls and the division's latency cost short
// rows as much as their exps), or for LogSoftmax each row's exp-sum, the
// block's logs, then the subtractions. Row by row, each log (float64)
// waited for its sum and the next pass for the log: 1500 rows of 512 spent
// 15% of LogSoftmax in math.Log, ~40 ns a row; a block's logs do not
// depend on each other, so they overlap. The same operations per row, so
// the same bits: TestSoftmaxRowsMatchRowByRow holds the two to them.
func softmaxRows(dst, x []float32, dim int, log bool) {
	const block = 16
	var m, f [block]float32
	var s [block]float64
	rows := len(x) / dim
	for r0 := 0; r0 < rows; r0 += block {
		n := min(block, rows-r0)
		for i := 0; i < n; i++ {
			m[i] = vec.MaxOf(x[(r0+i)*dim : (r0+i+1)*dim])
		}
		if !log {
			vec.SoftmaxRows(dst[r0*dim:], x[r0*dim:], n, dim, dim, m[:n])
			continue
		}
		for i := 0; i < n; i++ {
			at := (r0 + i) * dim
			s[i] = vec.ExpSum(dst[at:at+dim], x[at:at+dim], m[i])
		}
		for i := 0; i < n; i++ {
			f[i] = float32(math.Log(s[i]))
		}
		for i := 0; i < n; i++ {
			d := dst[(r0+i)*dim : (r0+i+1)*dim]
			vec.AddScalar2(d, x[(r0+i)*dim:(r0+i+1)*dim], -m[i], -f[i])
		}
	}
}

func init() {
	Register("", "BatchNormalization", 1, newBatchNorm)
	Register("", "InstanceNormalization", 1, newInstanceNorm)
	Register("", "GroupNormalization", 18, newGroupNorm)
	Register("", "LpNormalization", 1, newLpNorm)
	Register("", "LayerNormalization", 17, newLayerNorm)
	Register("", "Softmax", 1, newSoftmax(false))
	Register("", "LogSoftmax", 1, newSoftmax(true))
}
