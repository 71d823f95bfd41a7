package kernels

import (
	"fmt"
	"math"
	"slices"

	"github.com/onnxq/onnxq/graph"
)

// Index-driven data ops: GatherND, ScatterND, ScatterElements, OneHot, EyeLike,
// Compress, and MeanVarianceNormalization.

func init() {
	Register("", "GatherND", 11, newGatherND)
	Register("", "ScatterND", 11, newScatterND)
	Register("", "ScatterElements", 11, newScatterElements)
	Register("", "OneHot", 9, newOneHot)
	Register("", "EyeLike", 9, newEyeLike)
	Register("", "Compress", 9, newCompress)
	Register("", "MeanVarianceNormalization", 9, newMVN)
}

// fixIndex maps a possibly negative index into [0, dim).
func fixIndex(i, dim int) (int, error) {
	if i < -dim || i >= dim {
		return 0, fmt.Errorf("index %d is out of range for a dimension of %d", i, dim)
	}
	if i < 0 {
		i += dim
	}
	return i, nil
}

// indexList reads an int64 or int32 indices tensor in place, without the
// []int copy (garbage on every run) that ints makes.
type indexList struct {
	wide bool // int64 (i64), else int32 (i32)
	i64  []int64
	i32  []int32
}

func indicesOf(t *graph.Tensor) (indexList, error) {
	switch d := t.Data().(type) {
	case []int64:
		return indexList{wide: true, i64: d}, nil
	case []int32:
		return indexList{i32: d}, nil
	}
	return indexList{}, fmt.Errorf("indices must be int64 or int32, got %s", t.DType.Short())
}

func (l indexList) at(k int) int {
	if l.wide {
		return int(l.i64[k])
	}
	return int(l.i32[k])
}

func (l indexList) len() int { return len(l.i64) + len(l.i32) }

// copyWhole copies x into out (one element type and length), split between
// threads when large: ScatterND and ScatterElements start from a copy of
// their data.
func copyWhole(ctx *Context, out, x *graph.Tensor) {
	c := copierOf(out, x)
	n := x.Len()
	threads := threadsFor(ctx, n, 1<<15)
	if threads <= 1 {
		c.run(0, 0, n)
		return
	}
	parallelFor(threads, n, func(lo, hi int) { c.run(lo, lo, hi-lo) })
}

func newGatherND(ni *NodeInfo) (Kernel, error) {
	a := attrsOf(ni.Node)
	batch := int(a.Int("batch_dims", 0))
	return KernelFunc(func(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
		if err := need(in, 2); err != nil {
			return nil, err
		}
		x, it := in[0], in[1]
		idx, err := indicesOf(it)
		if err != nil {
			return nil, err
		}
		q := it.Rank()
		if q < 1 {
			return nil, fmt.Errorf("indices need rank >= 1")
		}
		if batch < 0 || batch >= q || batch > x.Rank() {
			return nil, fmt.Errorf("batch_dims %d must be below the rank of indices %v and at most that of data %v", batch, it.Shape, x.Shape)
		}
		if !slices.Equal(it.Shape[:batch], x.Shape[:batch]) {
			return nil, fmt.Errorf("the first %d dims of indices %v and data %v differ", batch, it.Shape, x.Shape)
		}
		last := it.Shape[q-1]
		if batch+last > x.Rank() {
			return nil, fmt.Errorf("indices of depth %d do not fit data %v with %d batch dims", last, x.Shape, batch)
		}
		// Output: indices.shape[:-1] + data.shape[batch+last:].
		shape := append(append([]int(nil), it.Shape[:q-1]...), x.Shape[batch+last:]...)
		out := ctx.Empty(x.DType, shape) // every index tuple writes its slice
		c := copierOf(out, x)
		slice := graph.Numel(x.Shape[batch+last:])
		xs := stridesOf(x.Shape)
		nb := graph.Numel(x.Shape[:batch])
		per := graph.Numel(it.Shape[batch : q-1]) // index tuples per batch
		for b := 0; b < nb; b++ {
			boff := 0
			rem := b
			for d := batch - 1; d >= 0; d-- {
				boff += (rem % x.Shape[d]) * xs[d]
				rem /= x.Shape[d]
			}
			for t := 0; t < per; t++ {
				first := (b*per + t) * last
				off := boff
				for k := 0; k < last; k++ {
					i, err := fixIndex(idx.at(first+k), x.Shape[batch+k])
					if err != nil {
						return nil, err
					}
					off += i * xs[batch+k]
				}
				c.run((b*per+t)*slice, off, slice)
			}
		}
		return one(out), nil
	}), a.err
}

// reduction is ScatterND's and ScatterElements' reduction attribute: how
// an update combines with the value already there.
type reduction int

const (
	reduceNone reduction = iota // replace
	reduceAdd
	reduceMul
	reduceMax
	reduceMin
)

func reductionOf(name string) (reduction, error) {
	switch name {
	case "none":
		return reduceNone, nil
	case "add":
		return reduceAdd, nil
	case "mul":
		return reduceMul, nil
	case "max":
		return reduceMax, nil
	case "min":
		return reduceMin, nil
	}
	return 0, fmt.Errorf("unknown reduction %q", name)
}

// scatterer writes updates into a scatter's output, of one element type.
type scatterer interface {
	block(d, u, n int) // out[d:d+n] combined with upd[u:u+n]
	elem(d, u int)     // out[d] combined with upd[u]
}

// typedScatter is a scatterer for element type T; comb is nil for
// reduction none (the update replaces the value).
type typedScatter[T any] struct {
	out, upd []T
	comb     func(old, upd T) T
}

func (s typedScatter[T]) block(d, u, n int) {
	dst, src := s.out[d:d+n], s.upd[u:u+n]
	if s.comb == nil {
		copy(dst, src)
		return
	}
	for i, v := range src {
		dst[i] = s.comb(dst[i], v)
	}
}

func (s typedScatter[T]) elem(d, u int) {
	if s.comb == nil {
		s.out[d] = s.upd[u]
		return
	}
	s.out[d] = s.comb(s.out[d], s.upd[u])
}

// combineIn is the reduction in T's own arithmetic, as ONNX Runtime does:
// integers add and multiply in integers (wrapping, exact beyond 2^53),
// float32 in float32 (the float64 form this replaced rounded once more).
// max and min are Go's, which return NaN if either is.
func combineIn[T number](r reduction) func(old, upd T) T {
	switch r {
	case reduceAdd:
		return func(o, u T) T { return o + u }
	case reduceMul:
		return func(o, u T) T { return o * u }
	case reduceMax:
		return func(o, u T) T { return max(o, u) }
	case reduceMin:
		return func(o, u T) T { return min(o, u) }
	}
	return nil
}

// combineHalf is the reduction of a 16-bit float type in float32, rounded
// once to the type: float32's 24 bits are more than twice 11 (or 8) plus 2,
// so each sum or product is the correctly rounded one.
func combineHalf[T any](r reduction, wide func(T) float32, narrow func(float32) T) func(old, upd T) T {
	f := combineIn[float32](r)
	if f == nil {
		return nil
	}
	return func(o, u T) T { return narrow(f(wide(o), wide(u))) }
}

// combineBool: add and max are or, mul and min are and (what 1+1 != 0
// gave in the float64 form, and ONNX Runtime's bool reductions).
func combineBool(r reduction) func(old, upd bool) bool {
	switch r {
	case reduceAdd, reduceMax:
		return func(o, u bool) bool { return o || u }
	case reduceMul, reduceMin:
		return func(o, u bool) bool { return o && u }
	}
	return nil
}

// reducible says whether reduction r is defined for dt: every element
// type takes none; the others need numbers held as themselves (not
// float8, int4 or uint4 bytes) or bools.
func reducible(dt graph.DataType, r reduction) bool {
	if r == reduceNone {
		return true
	}
	switch dt {
	case graph.Float, graph.Double, graph.Float16, graph.BFloat16, graph.Int8, graph.Int16, graph.Int32, graph.Int64,
		graph.Uint8, graph.Uint16, graph.Uint32, graph.Uint64, graph.Bool:
		return true
	}
	return false
}

func scatterOf[T any](out *graph.Tensor, upd *graph.Tensor, comb func(o, u T) T) scatterer {
	return typedScatter[T]{out.Data().([]T), upd.Data().([]T), comb}
}

// scattererOf writes upd into out (both of one element type) with
// reduction r.
func scattererOf(out, upd *graph.Tensor, r reduction) (scatterer, error) {
	if upd.DType != out.DType {
		return nil, fmt.Errorf("updates are %s, data %s", upd.DType.Short(), out.DType.Short())
	}
	if !reducible(out.DType, r) {
		return nil, fmt.Errorf("a reduction of %s elements is not supported", out.DType.Short())
	}
	switch out.Data().(type) {
	case []float32:
		return scatterOf(out, upd, combineIn[float32](r)), nil
	case []float64:
		return scatterOf(out, upd, combineIn[float64](r)), nil
	case []graph.Float16Bits:
		return scatterOf(out, upd, combineHalf(r, graph.Float16Bits.Float32, graph.ToFloat16)), nil
	case []graph.BFloat16Bits:
		return scatterOf(out, upd, combineHalf(r, graph.BFloat16Bits.Float32, graph.ToBFloat16)), nil
	case []int8:
		return scatterOf(out, upd, combineIn[int8](r)), nil
	case []uint8:
		return scatterOf(out, upd, combineIn[uint8](r)), nil
	case []int16:
		return scatterOf(out, upd, combineIn[int16](r)), nil
	case []uint16:
		return scatterOf(out, upd, combineIn[uint16](r)), nil
	case []int32:
		return scatterOf(out, upd, combineIn[int32](r)), nil
	case []uint32:
		return scatterOf(out, upd, combineIn[uint32](r)), nil
	case []int64:
		return scatterOf(out, upd, combineIn[int64](r)), nil
	case []uint64:
		return scatterOf(out, upd, combineIn[uint64](r)), nil
	case []bool:
		return scatterOf(out, upd, combineBool(r)), nil
	case [][]byte: // strings: reducible said none
		return scatterOf[[]byte](out, upd, nil), nil
	case []complex64:
		return scatterOf[complex64](out, upd, nil), nil
	case []complex128:
		return scatterOf[complex128](out, upd, nil), nil
	}
	return nil, fmt.Errorf("%s data is not supported", out.DType.Short())
}

func newScatterND(ni *NodeInfo) (Kernel, error) {
	a := attrsOf(ni.Node)
	red, err := reductionOf(a.String("reduction", "none"))
	if err != nil {
		return nil, err
	}
	return KernelFunc(func(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
		if err := need(in, 3); err != nil {
			return nil, err
		}
		x, it, upd := in[0], in[1], in[2]
		idx, err := indicesOf(it)
		if err != nil {
			return nil, err
		}
		q := it.Rank()
		if q < 1 {
			return nil, fmt.Errorf("indices need rank >= 1")
		}
		last := it.Shape[q-1]
		if last > x.Rank() {
			return nil, fmt.Errorf("indices of depth %d do not fit data %v", last, x.Shape)
		}
		slice := graph.Numel(x.Shape[last:])
		n := graph.Numel(it.Shape[:q-1]) // index tuples, one update slice each
		if upd.Len() != n*slice {
			return nil, fmt.Errorf("updates have %d values, want %d", upd.Len(), n*slice)
		}
		out := ctx.Empty(x.DType, x.Shape) // a copy of x, then the updates
		s, err := scattererOf(out, upd, red)
		if err != nil {
			return nil, err
		}
		copyWhole(ctx, out, x)
		xs := stridesOf(x.Shape)
		// In index order: with duplicate indices the last update wins
		// (reduction none, which ONNX leaves undefined) and reductions
		// apply in that order.
		for t := 0; t < n; t++ {
			off := 0
			for k := 0; k < last; k++ {
				i, err := fixIndex(idx.at(t*last+k), x.Shape[k])
				if err != nil {
					return nil, err
				}
				off += i * xs[k]
			}
			s.block(off, t*slice, slice)
		}
		return one(out), nil
	}), a.err
}

// offsetAlong is the data offset (strides xs) of element e of an indices
// tensor (strides is) with its coordinate on axis ax replaced by i: where
// GatherElements reads and ScatterElements and Scatter write.
func offsetAlong(e, ax, i int, is, xs []int) int {
	off, rem := 0, e
	for d := range is {
		k := rem / is[d]
		rem %= is[d]
		if d == ax {
			k = i
		}
		off += k * xs[d]
	}
	return off
}

func newScatterElements(ni *NodeInfo) (Kernel, error) {
	a := attrsOf(ni.Node)
	axis := a.Int("axis", 0)
	red, err := reductionOf(a.String("reduction", "none"))
	if err != nil {
		return nil, err
	}
	return KernelFunc(func(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
		if err := need(in, 3); err != nil {
			return nil, err
		}
		x, it, upd := in[0], in[1], in[2]
		ax, err := normAxis(axis, x.Rank())
		if err != nil {
			return nil, err
		}
		idx, err := indicesOf(it)
		if err != nil {
			return nil, err
		}
		if it.Rank() != x.Rank() || !slices.Equal(it.Shape, upd.Shape) {
			return nil, fmt.Errorf("indices %v and updates %v must match in shape and rank with data", it.Shape, upd.Shape)
		}
		for d, n := range it.Shape {
			if d != ax && n > x.Shape[d] {
				return nil, fmt.Errorf("indices %v exceed data %v along axis %d", it.Shape, x.Shape, d)
			}
		}
		out := ctx.Empty(x.DType, x.Shape) // a copy of x, then the updates
		s, err := scattererOf(out, upd, red)
		if err != nil {
			return nil, err
		}
		copyWhole(ctx, out, x)
		if idx.len() == 0 {
			return one(out), nil
		}
		// Row by row of the indices' last axis: a row's first element
		// gives its offset, the rest step along the last axis of data
		// (or, on that axis itself, go where their index says).
		r := it.Rank()
		xs, is := stridesOf(x.Shape), stridesOf(it.Shape)
		row := it.Shape[r-1]
		for e0 := 0; e0 < idx.len(); e0 += row {
			base := offsetAlong(e0, ax, 0, is, xs)
			for j := 0; j < row; j++ {
				i, err := fixIndex(idx.at(e0+j), x.Shape[ax])
				if err != nil {
					return nil, err
				}
				if ax == r-1 {
					s.elem(base+i*xs[ax], e0+j)
				} else {
					s.elem(base+i*xs[ax]+j, e0+j)
				}
			}
		}
		return one(out), nil
	}), a.err
}

func newOneHot(ni *NodeInfo) (Kernel, error) {
	a := attrsOf(ni.Node)
	axis := a.Int("axis", -1)
	return KernelFunc(func(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
		if err := need(in, 3); err != nil {
			return nil, err
		}
		idx, err := asFloat64s(in[0])
		if err != nil {
			return nil, err
		}
		depthF, err := scalarFloat64(in[1])
		if err != nil {
			return nil, err
		}
		depth := int(depthF)
		if depth < 1 {
			return nil, fmt.Errorf("depth %v must be at least 1", depthF)
		}
		values := in[2]
		if values.Len() != 2 {
			return nil, fmt.Errorf("values must hold [off, on]")
		}
		r := in[0].Rank() + 1
		ax, err := normAxis(axis, r)
		if err != nil {
			return nil, err
		}
		shape := append(append(append([]int(nil), in[0].Shape[:ax]...), depth), in[0].Shape[ax:]...)
		// The values' own type throughout: off everywhere, then on at the
		// indices (int64 values beyond 2^53 stay exact).
		out := ctx.Empty(values.DType, shape)
		c := copierOf(out, values)
		c.strided(0, 0, out.Len(), 0)
		outer, inner := graph.Numel(in[0].Shape[:ax]), graph.Numel(in[0].Shape[ax:])
		for o := 0; o < outer; o++ {
			for i := 0; i < inner; i++ {
				v := int(idx[o*inner+i])
				if v < 0 {
					v += depth
				}
				if v >= 0 && v < depth {
					c.run((o*depth+v)*inner+i, 1, 1)
				}
			}
		}
		return one(out), nil
	}), a.err
}

func newEyeLike(ni *NodeInfo) (Kernel, error) {
	a := attrsOf(ni.Node)
	k := int(a.Int("k", 0))
	dt := graph.DataType(a.Int("dtype", 0))
	return KernelFunc(func(_ *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
		if err := need(in, 1); err != nil {
			return nil, err
		}
		x := in[0]
		if x.Rank() != 2 {
			return nil, fmt.Errorf("EyeLike needs a 2-D input")
		}
		t := dt
		if t == graph.Undefined {
			t = x.DType
		}
		rows, cols := x.Shape[0], x.Shape[1]
		res := make([]float64, rows*cols)
		for i := 0; i < rows; i++ {
			if j := i + k; j >= 0 && j < cols {
				res[i*cols+j] = 1
			}
		}
		out := graph.NewTensor(t, x.Shape)
		if t == graph.Bool {
			b := out.Data().([]bool)
			for i, v := range res {
				b[i] = v != 0
			}
			return one(out), nil
		}
		return one(out), storeFloat64s(out, res)
	}), a.err
}

func newCompress(ni *NodeInfo) (Kernel, error) {
	a := attrsOf(ni.Node)
	hasAxis := ni.Node.HasAttr("axis")
	axis := a.Int("axis", 0)
	return KernelFunc(func(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
		if err := need(in, 2); err != nil {
			return nil, err
		}
		x := in[0]
		cond, ok := in[1].Data().([]bool)
		if !ok {
			return nil, fmt.Errorf("Compress condition must be bool")
		}
		src := x
		ax := 0
		if hasAxis {
			var err error
			if ax, err = normAxis(axis, x.Rank()); err != nil {
				return nil, err
			}
		} else {
			src = view(x, []int{x.Len()})
		}
		dim := src.Shape[ax]
		var keep []int
		for i := 0; i < min(dim, len(cond)); i++ {
			if cond[i] {
				keep = append(keep, i)
			}
		}
		shape := append([]int(nil), src.Shape...)
		shape[ax] = len(keep)
		out := ctx.Empty(x.DType, shape) // the kept slices fill it
		c := copierOf(out, src)
		outer, inner := graph.Numel(src.Shape[:ax]), graph.Numel(src.Shape[ax+1:])
		for o := 0; o < outer; o++ {
			for j, i := range keep {
				c.run((o*len(keep)+j)*inner, (o*dim+i)*inner, inner)
			}
		}
		return one(out), nil
	}), a.err
}

// newMVN normalizes to zero mean and unit variance over the given axes
// (default N, H, W).
func newMVN(ni *NodeInfo) (Kernel, error) {
	a := attrsOf(ni.Node)
	axes := a.Ints("axes", []int64{0, 2, 3})
	return KernelFunc(func(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
		if err := need(in, 1); err != nil {
			return nil, err
		}
		x := in[0]
		if err := wantFloat(x, "MeanVarianceNormalization input"); err != nil {
			return nil, err
		}
		red := make([]bool, x.Rank())
		for _, ax := range axes {
			i, err := normAxis(ax, x.Rank())
			if err != nil {
				return nil, err
			}
			red[i] = true
		}
		kept := make([]int, x.Rank())
		for i, d := range x.Shape {
			kept[i] = d
			if red[i] {
				kept[i] = 1
			}
		}
		ks := stridesOf(kept)
		for i := range ks {
			if red[i] {
				ks[i] = 0
			}
		}
		m := graph.Numel(kept)
		sum, sq := make([]float64, m), make([]float64, m)
		n := float64(x.Len()) / float64(m)
		xd := x.Float32s()
		strides := [][]int{stridesOf(x.Shape), ks}
		bcastIter(x.Shape, strides, func(o []int, cnt int, inner []int) {
			for j := 0; j < cnt; j++ {
				k := o[1] + j*inner[1]
				v := float64(xd[o[0]+j])
				sum[k] += v
				sq[k] += v * v
			}
		})
		// sum becomes the mean and sq the divisor, once per group.
		for k := range sum {
			mean := sum[k] / n
			sum[k], sq[k] = mean, math.Sqrt(math.Max(sq[k]/n-mean*mean, 0))+1e-9
		}
		out := ctx.Float32(x.Shape) // the second pass writes every element
		od := out.Float32s()
		bcastIter(x.Shape, strides, func(o []int, cnt int, inner []int) {
			for j := 0; j < cnt; j++ {
				k := o[1] + j*inner[1]
				od[o[0]+j] = float32((float64(xd[o[0]+j]) - sum[k]) / sq[k])
			}
		})
		return one(out), nil
	}), a.err
}
