package kernels

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/onnxq/onnxq/graph"
)

// copier moves elements between two tensors of one element type, whatever it is,
// so data-movement ops are written once.
type copier interface {
	run(d, s, n int)         // dst[d:d+n] = src[s:s+n]
	strided(d, s, n, st int) // dst[d+i] = src[s+i*st]
	scatter(d, s, n, st int) // dst[d+i*st] = src[s+i]
	// rows copies rows runs of n from src (ss apart) to dst (ds apart),
	// each reps times side by side: a broadcast's innermost axes
	// (Tile 1,1,2,2: 2 copies of each 56-float row) in one call.
	rows(d, s, rows, n, ss, ds, reps int)
}

type typedCopier[T any] struct{ dst, src []T }

func (c typedCopier[T]) run(d, s, n int) { copyWarm(c.dst[d:d+n], c.src[s:s+n]) }

// warmPiece is the most bytes copyWarm hands memmove at once: from 1 MiB on,
// Go's memmove on amd64 stores non-temporally, past the caches, and the op
// that reads the copy next then fetches it from memory (a 1.6 MB Concat
// input copied whole and read back: 73 us, in 128 KiB pieces 53).
const warmPiece = 128 << 10

// copyWarm is copy(dst, src) that leaves the copy in cache.
func copyWarm[T any](dst, src []T) {
	n := min(len(dst), len(src))
	var zero T
	// Short copies (GatherND's and Gather's rows) in one: the size of a
	// type parameter is a run-time value, and dividing by it cost
	// 300-row GatherND 25% (10 -> 7.6 us).
	size := max(1, int(unsafe.Sizeof(zero)))
	if n*size <= warmPiece {
		copy(dst[:n], src[:n])
		return
	}
	step := max(1, warmPiece/size)
	for i := 0; i < n; i += step {
		e := min(i+step, n)
		copy(dst[i:e], src[i:e])
	}
}
func (c typedCopier[T]) scatter(d, s, n, st int) {
	src := c.src[s : s+n]
	_ = c.dst[d+(n-1)*st]
	for i, v := range src {
		c.dst[d+i*st] = v
	}
}
func (c typedCopier[T]) rows(d, s, rows, n, ss, ds, reps int) {
	for r := 0; r < rows; r++ {
		src := c.src[s+r*ss : s+r*ss+n]
		dst := c.dst[d+r*ds : d+r*ds+reps*n]
		for k := 0; k < reps; k++ {
			copy(dst[k*n:(k+1)*n], src)
		}
	}
}
func (c typedCopier[T]) strided(d, s, n, st int) {
	dst := c.dst[d : d+n]
	switch st {
	case 1: // broadcasts whose inner run is contiguous (GQA's Expand of K and V)
		copyWarm(dst, c.src[s:s+n])
	case 0: // one value: doubling copies run at memmove's speed
		if len(dst) == 0 {
			return
		}
		dst[0] = c.src[s]
		for k := 1; k < len(dst); k *= 2 {
			copyWarm(dst[k:], dst[:k])
		}
	default:
		for i := range dst {
			dst[i] = c.src[s+i*st]
		}
	}
}

func copierOf(dst, src *graph.Tensor) copier {
	switch d := dst.Data().(type) {
	case []float32:
		return typedCopier[float32]{d, src.Data().([]float32)}
	case []float64:
		return typedCopier[float64]{d, src.Data().([]float64)}
	case []graph.Float16Bits:
		return typedCopier[graph.Float16Bits]{d, src.Data().([]graph.Float16Bits)}
	case []graph.BFloat16Bits:
		return typedCopier[graph.BFloat16Bits]{d, src.Data().([]graph.BFloat16Bits)}
	case []int8:
		return typedCopier[int8]{d, src.Data().([]int8)}
	case []uint8:
		return typedCopier[uint8]{d, src.Data().([]uint8)}
	case []int16:
		return typedCopier[int16]{d, src.Data().([]int16)}
	case []uint16:
		return typedCopier[uint16]{d, src.Data().([]uint16)}
	case []int32:
		return typedCopier[int32]{d, src.Data().([]int32)}
	case []uint32:
		return typedCopier[uint32]{d, src.Data().([]uint32)}
	case []int64:
		return typedCopier[int64]{d, src.Data().([]int64)}
	case []uint64:
		return typedCopier[uint64]{d, src.Data().([]uint64)}
	case []bool:
		return typedCopier[bool]{d, src.Data().([]bool)}
	case [][]byte:
		return typedCopier[[]byte]{d, src.Data().([][]byte)}
	case []complex64:
		return typedCopier[complex64]{d, src.Data().([]complex64)}
	case []complex128:
		return typedCopier[complex128]{d, src.Data().([]complex128)}
	}
	panic(fmt.Sprintf("no copier for %T", dst.Data()))
}

// view returns a tensor sharing x's data with another shape. Kernels never write
// their inputs, so sharing is safe.
func view(x *graph.Tensor, shape []int) *graph.Tensor {
	t, err := graph.TensorOf(x.DType, shape, x.Data())
	if err != nil {
		panic(err) // callers check the element count first
	}
	return t
}

// ---- shape-only ops ----

func newReshape(ni *NodeInfo) (Kernel, error) {
	a := attrsOf(ni.Node)
	allowZero := a.Int("allowzero", 0) != 0
	attrShape := a.Ints("shape", nil)
	if a.err != nil {
		return nil, a.err
	}
	return KernelFunc(func(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
		if err := need(in, 1); err != nil {
			return nil, err
		}
		x := in[0]
		// spec and shape live on the stack up to rank 8: a Reshape runs
		// on every pass, and its shape input is small.
		var specBuf, shapeBuf [8]int
		var spec []int
		if ni.Opset < 5 {
			spec = toInts(attrShape)
		} else {
			if err := need(in, 2); err != nil {
				return nil, err
			}
			s, err := intsInto(specBuf[:0], in[1])
			if err != nil {
				return nil, err
			}
			spec = s
		}
		shape := shapeBuf[:0]
		for range spec {
			shape = append(shape, 0)
		}
		infer := -1
		known := 1
		for i, d := range spec {
			switch {
			case d == 0 && !allowZero:
				if i >= x.Rank() {
					return nil, fmt.Errorf("shape %v copies dimension %d, but the input has rank %d", slices.Clone(spec), i, x.Rank())
				}
				shape[i] = x.Shape[i]
			case d == -1:
				if infer >= 0 {
					return nil, fmt.Errorf("shape %v has more than one -1", slices.Clone(spec))
				}
				infer = i
				continue
			case d < -1:
				return nil, fmt.Errorf("shape %v has a negative dimension", slices.Clone(spec))
			default:
				shape[i] = d
			}
			known *= shape[i]
		}
		if infer >= 0 {
			if known == 0 || x.Len()%known != 0 {
				return nil, fmt.Errorf("cannot reshape %v into %v", x.Shape, slices.Clone(spec))
			}
			shape[infer] = x.Len() / known
		}
		if graph.Numel(shape) != x.Len() {
			return nil, fmt.Errorf("cannot reshape %v (%d elements) into %v", x.Shape, x.Len(), slices.Clone(shape))
		}
		return one(ctx.reshaped(x, shape)), nil
	}), nil
}

func newFlatten(ni *NodeInfo) (Kernel, error) {
	a := attrsOf(ni.Node)
	axis := a.Int("axis", 1)
	return KernelFunc(func(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
		if err := need(in, 1); err != nil {
			return nil, err
		}
		x := in[0]
		ax := axis
		if ax < 0 {
			ax += int64(x.Rank())
		}
		if ax < 0 || ax > int64(x.Rank()) {
			return nil, fmt.Errorf("axis %d is out of range for rank %d", axis, x.Rank())
		}
		return one(ctx.reshaped(x, []int{graph.Numel(x.Shape[:ax]), graph.Numel(x.Shape[ax:])})), nil
	}), a.err
}

// axesFrom reads axes from the attribute (old opsets) or the optional input (new).
func axesFrom(in []*graph.Tensor, idx int, attr []int64, fromInput bool) ([]int64, error) {
	if !fromInput {
		return attr, nil
	}
	if len(in) > idx && in[idx] != nil {
		// int64, as the spec types it: the tensor's own values (the
		// callers only read them), not two converted copies per run.
		if d, ok := in[idx].Data().([]int64); ok {
			if d == nil {
				d = []int64{}
			}
			return d, nil
		}
		v, err := ints(in[idx])
		if err != nil {
			return nil, err
		}
		out := make([]int64, len(v))
		for i, x := range v {
			out[i] = int64(x)
		}
		return out, nil
	}
	return nil, nil
}

func newSqueeze(ni *NodeInfo) (Kernel, error) {
	a := attrsOf(ni.Node)
	attr := a.Ints("axes", nil)
	return KernelFunc(func(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
		if err := need(in, 1); err != nil {
			return nil, err
		}
		x := in[0]
		axes, err := axesFrom(in, 1, attr, ni.Opset >= 13)
		if err != nil {
			return nil, err
		}
		drop := make([]bool, x.Rank())
		if axes == nil {
			for i, d := range x.Shape {
				drop[i] = d == 1
			}
		}
		for _, ax := range axes {
			i, err := normAxis(ax, x.Rank())
			if err != nil {
				return nil, err
			}
			if x.Shape[i] != 1 {
				return nil, fmt.Errorf("cannot squeeze axis %d of size %d", ax, x.Shape[i])
			}
			drop[i] = true
		}
		var shape []int
		for i, d := range x.Shape {
			if !drop[i] {
				shape = append(shape, d)
			}
		}
		return one(ctx.reshaped(x, shape)), nil
	}), a.err
}

func newUnsqueeze(ni *NodeInfo) (Kernel, error) {
	a := attrsOf(ni.Node)
	attr := a.Ints("axes", nil)
	return KernelFunc(func(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
		if err := need(in, 1); err != nil {
			return nil, err
		}
		x := in[0]
		axes, err := axesFrom(in, 1, attr, ni.Opset >= 13)
		if err != nil {
			return nil, err
		}
		rank := x.Rank() + len(axes)
		var ib [8]bool
		var sb [8]int
		insert, shape := ib[:0], sb[:0]
		if rank > len(ib) {
			insert, shape = make([]bool, 0, rank), make([]int, 0, rank)
		}
		insert, shape = insert[:rank], shape[:rank]
		for _, ax := range axes {
			i, err := normAxis(ax, rank)
			if err != nil {
				return nil, err
			}
			if insert[i] {
				return nil, fmt.Errorf("axis %d repeated", ax)
			}
			insert[i] = true
		}
		j := 0
		for i := range shape {
			if insert[i] {
				shape[i] = 1
			} else {
				shape[i] = x.Shape[j]
				j++
			}
		}
		return one(ctx.reshaped(x, shape)), nil
	}), a.err
}

func newIdentity(*NodeInfo) (Kernel, error) {
	return KernelFunc(func(_ *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
		if err := need(in, 1); err != nil {
			return nil, err
		}
		return one(in[0]), nil
	}), nil
}

// newDropout is inference Dropout: the output is the input; the optional mask is all true.
func newDropout(ni *NodeInfo) (Kernel, error) {
	return KernelFunc(func(_ *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
		if err := need(in, 1); err != nil {
			return nil, err
		}
		if len(in) > 2 && in[2] != nil {
			if m, ok := in[2].Data().([]bool); ok && len(m) == 1 && m[0] {
				return nil, fmt.Errorf("Dropout in training mode is not supported")
			}
		}
		mask := graph.NewTensor(graph.Bool, in[0].Shape)
		for i, md := 0, mask.Data().([]bool); i < len(md); i++ {
			md[i] = true
		}
		return []*graph.Tensor{in[0], mask}, nil
	}), nil
}

func newShape(ni *NodeInfo) (Kernel, error) {
	a := attrsOf(ni.Node)
	start, end := a.Int("start", 0), a.Int("end", math.MaxInt64)
	return KernelFunc(func(_ *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
		if err := need(in, 1); err != nil {
			return nil, err
		}
		r := int64(in[0].Rank())
		clamp := func(v int64) int64 {
			if v < 0 {
				v += r
			}
			return max(0, min(r, v))
		}
		s, e := clamp(start), clamp(end)
		var dims []int64
		for _, d := range in[0].Shape[s:max(s, e)] {
			dims = append(dims, int64(d))
		}
		if dims == nil {
			dims = []int64{}
		}
		return one(graph.Int64Tensor([]int{len(dims)}, dims)), nil
	}), a.err
}

func newSize(*NodeInfo) (Kernel, error) {
	return KernelFunc(func(_ *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
		if err := need(in, 1); err != nil {
			return nil, err
		}
		return one(graph.Int64Tensor(nil, []int64{int64(in[0].Len())})), nil
	}), nil
}

// ---- copying ops ----

func newTranspose(ni *NodeInfo) (Kernel, error) {
	a := attrsOf(ni.Node)
	perm := a.Ints("perm", nil)
	return KernelFunc(func(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
		if err := need(in, 1); err != nil {
			return nil, err
		}
		x := in[0]
		r := x.Rank()
		var pb [8]int // the permutation on the stack up to rank 8
		var p []int
		if r <= len(pb) {
			p = pb[:r]
		} else {
			p = make([]int, r)
		}
		if perm == nil {
			for i := range p {
				p[i] = r - 1 - i
			}
		} else {
			if len(perm) != r {
				return nil, fmt.Errorf("perm %v does not fit rank %d", perm, r)
			}
			for i, v := range perm {
				if v < 0 || v >= int64(r) || slices.Contains(p[:i], int(v)) {
					return nil, fmt.Errorf("perm %v is not a permutation", perm)
				}
				p[i] = int(v)
			}
		}
		return one(permuteTensor(ctx, x, p)), nil
	}), a.err
}

// permuteTensor is Transpose with the permutation p (checked by the caller):
// a blocked matrix transpose or block moves for float32 where the
// permutation is one, a strided copy otherwise.
func permuteTensor(ctx *Context, x *graph.Tensor, p []int) *graph.Tensor {
	var sb [8]int
	return permuteInto(ctx, x, p, ctx.Empty(x.DType, permutedShapeInto(sb[:0], x.Shape, p))) // the copies write every element
}

// transposeStrips transposes strips [lo, hi) of the rows x cols matrices
// of xd into od: strip t is transposeTile destination rows of matrix
// t / (strips a matrix).
func transposeStrips(od, xd []float32, rows, cols, lo, hi int) {
	tiles, mat := (cols+transposeTile-1)/transposeTile, rows*cols
	for t := lo; t < hi; t++ {
		i, j := t/tiles, t%tiles*transposeTile
		transposeBlocked(od[i*mat:(i+1)*mat], xd[i*mat:(i+1)*mat], rows, cols, j, min(cols, j+transposeTile))
	}
}

// transposeBlockRows is blockTranspose's move for source rows [lo, hi)
// counted over all the matrices (rows x cols blocks of blk values each).
func transposeBlockRows(od, xd []float32, rows, cols, blk, lo, hi int) {
	mat := rows * cols * blk
	for t := lo; t < hi; t++ {
		i := t / rows
		transposeBlocks(od[i*mat:(i+1)*mat], xd[i*mat:(i+1)*mat], rows, cols, blk, t%rows, t%rows+1)
	}
}

// permutedShape is shape permuted by p.
func permutedShape(shape, p []int) []int { return permutedShapeInto(nil, shape, p) }

// permutedShapeInto is permutedShape appended to dst (a caller's array on
// its stack).
func permutedShapeInto(dst, shape, p []int) []int {
	for i := range p {
		dst = append(dst, shape[p[i]])
	}
	return dst
}

// permuteInto is permuteTensor into out (of x's type and the permuted shape).
func permuteInto(ctx *Context, x *graph.Tensor, p []int, out *graph.Tensor) *graph.Tensor {
	r := x.Rank()
	shape := out.Shape
	if b, rows, cols, ok := matrixTranspose(x.Shape, p); ok && x.DType == graph.Float {
		xd, od := x.Float32s(), out.Float32s()
		// Work items: strips of transposeTile destination rows of one matrix.
		tiles := (cols + transposeTile - 1) / transposeTile
		if threads := threadsFor(ctx, x.Len(), minStreamWork); threads > 1 {
			parallelFor(threads, b*tiles, func(lo, hi int) { transposeStrips(od, xd, rows, cols, lo, hi) })
		} else { // no closure for the pool: garbage on every call
			transposeStrips(od, xd, rows, cols, 0, b*tiles)
		}
		return out
	}
	if b, rows, cols, blk, ok := blockTranspose(x.Shape, p); ok && x.DType == graph.Float {
		xd, od := x.Float32s(), out.Float32s()
		if threads := threadsFor(ctx, x.Len(), minStreamWork); threads > 1 {
			parallelFor(threads, b*rows, func(lo, hi int) { transposeBlockRows(od, xd, rows, cols, blk, lo, hi) })
		} else { // no closure for the pool: garbage on every call
			transposeBlockRows(od, xd, rows, cols, blk, 0, b*rows)
		}
		return out
	}
	xs := stridesOf(x.Shape)
	src := make([]int, r)
	for i := range p {
		src[i] = xs[p[i]]
	}
	c := copierOf(out, x)
	// Short contiguous runs (a head's 16 values of Swin's q, k and v,
	// moved to the front): the iterator's call per run cost more than the
	// copy, so a call copies the runs of the next axis out too (30 -> 9 us
	// on 16x16x3x3x16).
	dims, st := mergeDims(shape, [][]int{stridesOf(shape), src})
	if m := len(dims); m >= 2 && st[1][m-1] == 1 && dims[m-1] < 64 {
		blk := dims[m-1]
		parallelIter(threadsFor(ctx, x.Len(), minStreamWork), dims[:m-1], [][]int{st[0][:m-1], st[1][:m-1]}, func(offs []int, n int, inner []int) {
			c.rows(offs[0], offs[1], n, blk, inner[1], inner[0], 1)
		})
		return out
	}
	parallelIter(threadsFor(ctx, x.Len(), minStreamWork), shape, [][]int{stridesOf(shape), src}, func(offs []int, n int, inner []int) {
		if inner[1] == 1 {
			c.run(offs[0], offs[1], n)
		} else {
			c.strided(offs[0], offs[1], n, inner[1])
		}
	})
	return out
}

// concatKernel is Concat; the session recognizes it to let the steps that
// produce its inputs write them into its output (concat_place.go).
type concatKernel struct{ axis int64 }

func newConcat(ni *NodeInfo) (Kernel, error) {
	a := attrsOf(ni.Node)
	axis := a.Int("axis", 1)
	if ni.Opset >= 4 && !ni.Node.HasAttr("axis") {
		return nil, fmt.Errorf("Concat needs an axis attribute")
	}
	return &concatKernel{axis: axis}, a.err
}

// Run copies the inputs into the output, except those already in their
// place there (inPlace).
func (k *concatKernel) Run(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
	axis := k.axis
	if len(in) == 0 || in[0] == nil {
		return nil, fmt.Errorf("Concat needs inputs")
	}
	first := in[0]
	ax, err := normAxis(axis, first.Rank())
	if err != nil {
		return nil, err
	}
	var dims [8]int
	shape := append(dims[:0], first.Shape...)
	shape[ax] = 0
	for _, t := range in {
		if t == nil {
			continue
		}
		if t.DType != first.DType || t.Rank() != first.Rank() {
			return nil, fmt.Errorf("Concat inputs differ in type or rank: %s%v and %s%v", first.DType.Short(), first.Shape, t.DType.Short(), t.Shape)
		}
		for i := range shape {
			if i != ax && t.Shape[i] != first.Shape[i] {
				return nil, fmt.Errorf("Concat inputs %v and %v differ outside axis %d", first.Shape, t.Shape, ax)
			}
		}
		shape[ax] += t.Shape[ax]
	}
	out := ctx.Empty(first.DType, shape) // the copies write every element
	outer := graph.Numel(shape[:ax])
	inner := graph.Numel(shape[ax+1:])
	rowOut := shape[ax] * inner
	if concatSmall(out, in, ax, outer, inner, rowOut) {
		return one(out), nil
	}
	threads := threadsFor(ctx, out.Len(), 1<<15)
	var cs []copier
	var chunks, starts []int
	at := 0
	for _, t := range in {
		if t == nil {
			continue
		}
		n := t.Shape[ax] * inner
		if outer != 1 || !inPlace(out, t, at) {
			cs = append(cs, copierOf(out, t))
			chunks, starts = append(chunks, n), append(starts, at)
		}
		at += n
	}
	// rowsOf copies rows [lo, hi) of the outer dimensions.
	rowsOf := func(lo, hi int) {
		for i, c := range cs {
			if chunks[i] < 1024 { // short rows (the last axis): one call for them all
				c.rows(lo*rowOut+starts[i], lo*chunks[i], hi-lo, chunks[i], chunks[i], rowOut, 1)
				continue
			}
			for o := lo; o < hi; o++ {
				c.run(o*rowOut+starts[i], o*chunks[i], chunks[i])
			}
		}
	}
	if threads == 1 || outer >= chunksPerThread*threads {
		parallelFor(threads, outer, rowsOf)
		return one(out), nil
	}
	// Few outer rows (axis 1 of one image): the copies cut into pieces,
	// so that threads share even one large input.
	type part struct {
		c           copier
		dst, src, n int
	}
	var parts []part
	piece := max(1<<13, out.Len()/(chunksPerThread*threads))
	for i, c := range cs {
		for o := 0; o < outer; o++ {
			for s := 0; s < chunks[i]; s += piece {
				parts = append(parts, part{c, o*rowOut + starts[i] + s, o*chunks[i] + s, min(piece, chunks[i]-s)})
			}
		}
	}
	parallelFor(threads, len(parts), func(lo, hi int) {
		for _, p := range parts[lo:hi] {
			p.c.run(p.dst, p.src, p.n)
		}
	})
	return one(out), nil
}

// concatSmall concatenates into a small out (16 KiB at most) by copies of
// bytes, one a row of each input: a recommender's and a decoder step's
// Concats of a few rows, where the copiers, their offsets and the closure
// the general path makes cost more than the copies. It reports false for
// larger outputs and element types the pool does not hold.
func concatSmall(out *graph.Tensor, in []*graph.Tensor, ax, outer, inner, rowOut int) bool {
	es := elemSize(out.DType)
	if es == 0 || out.Len()*es > 1<<14 {
		return false
	}
	ob := tensorBytes(out)
	at := 0
	for _, t := range in {
		if t == nil {
			continue
		}
		n := t.Shape[ax] * inner
		if n > 0 && !(outer == 1 && inPlace(out, t, at)) {
			tb := tensorBytes(t)
			for o := range outer {
				copy(ob[(o*rowOut+at)*es:(o*rowOut+at+n)*es], tb[o*n*es:(o+1)*n*es])
			}
		}
		at += n
	}
	return true
}

// inPlace reports whether float32 t already lies in out from element at
// on: a step wrote it there (concat_place.go).
func inPlace(out, t *graph.Tensor, at int) bool {
	o, ok1 := out.Data().([]float32)
	d, ok2 := t.Data().([]float32)
	return ok1 && ok2 && len(d) > 0 && at+len(d) <= len(o) && &o[at] == &d[0]
}

func newSplit(ni *NodeInfo) (Kernel, error) {
	a := attrsOf(ni.Node)
	axis := a.Int("axis", 0)
	attrSplit := a.Ints("split", nil)
	numOutputs := a.Int("num_outputs", 0)
	nOut := len(ni.Node.Outputs)
	return KernelFunc(func(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
		if err := need(in, 1); err != nil {
			return nil, err
		}
		x := in[0]
		ax, err := normAxis(axis, x.Rank())
		if err != nil {
			return nil, err
		}
		dim := x.Shape[ax]
		var sizes []int
		switch {
		case ni.Opset >= 13 && len(in) > 1 && in[1] != nil:
			if sizes, err = ints(in[1]); err != nil {
				return nil, err
			}
		case ni.Opset < 13 && attrSplit != nil:
			sizes = toInts(attrSplit)
		default:
			n := nOut
			if numOutputs > 0 {
				n = int(numOutputs)
			}
			// Equal parts; with num_outputs (opset 18) the last may be smaller.
			per := (dim + n - 1) / n
			if numOutputs == 0 && dim%n != 0 {
				return nil, fmt.Errorf("axis of size %d does not split into %d equal parts", dim, n)
			}
			for i := 0; i < n; i++ {
				sizes = append(sizes, max(0, min(per, dim-i*per)))
			}
		}
		total := 0
		for _, s := range sizes {
			if s < 0 {
				return nil, fmt.Errorf("negative split size in %v", sizes)
			}
			total += s
		}
		if total != dim || len(sizes) != nOut {
			return nil, fmt.Errorf("split %v does not divide axis of size %d into %d outputs", sizes, dim, nOut)
		}
		outer := graph.Numel(x.Shape[:ax])
		inner := graph.Numel(x.Shape[ax+1:])
		outs := make([]*graph.Tensor, nOut)
		off := 0
		for i, s := range sizes {
			shape := append([]int(nil), x.Shape...)
			shape[ax] = s
			if outer == 1 {
				if t := ctx.view(i, x, off*inner, s*inner, shape); t != nil {
					off += s
					outs[i] = t
					continue
				}
			}
			t := ctx.EmptyOutput(i, x.DType, shape) // every element is written below
			c := copierOf(t, x)
			for o := 0; o < outer; o++ {
				c.run(o*s*inner, o*dim*inner+off*inner, s*inner)
			}
			off += s
			outs[i] = t
		}
		return outs, nil
	}), a.err
}

func newSlice(ni *NodeInfo) (Kernel, error) {
	a := attrsOf(ni.Node)
	aStarts, aEnds, aAxes := a.Ints("starts", nil), a.Ints("ends", nil), a.Ints("axes", nil)
	return KernelFunc(func(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
		if err := need(in, 1); err != nil {
			return nil, err
		}
		x := in[0]
		// The index lists and the per-axis arrays on the stack up to rank
		// 8: a Slice runs on every pass (a transformer's shape arithmetic).
		var sb, eb, ab, pb, stb, stepb, shb, xsb, srcb [8]int
		var starts, ends, axes, steps []int
		var err error
		if ni.Opset < 10 {
			starts, ends, axes = toInts(aStarts), toInts(aEnds), toInts(aAxes)
		} else {
			if err := need(in, 3); err != nil {
				return nil, err
			}
			if starts, err = intsInto(sb[:0], in[1]); err != nil {
				return nil, err
			}
			if ends, err = intsInto(eb[:0], in[2]); err != nil {
				return nil, err
			}
			if len(in) > 3 && in[3] != nil {
				if axes, err = intsInto(ab[:0], in[3]); err != nil {
					return nil, err
				}
			}
			if len(in) > 4 && in[4] != nil {
				if steps, err = intsInto(pb[:0], in[4]); err != nil {
					return nil, err
				}
			}
		}
		if len(starts) != len(ends) || (axes != nil && len(axes) != len(starts)) || (steps != nil && len(steps) != len(starts)) {
			return nil, fmt.Errorf("starts, ends, axes and steps differ in length")
		}
		r := x.Rank()
		st := stb[:0]     // start per axis
		step := stepb[:0] // step per axis
		for range r {
			st, step = append(st, 0), append(step, 1)
		}
		shape := append(shb[:0], x.Shape...)
		for i := range starts {
			ax := i
			if axes != nil {
				if ax, err = normAxis(int64(axes[i]), r); err != nil {
					return nil, err
				}
			}
			s := 1
			if steps != nil {
				s = steps[i]
			}
			if s == 0 {
				return nil, fmt.Errorf("slice step 0")
			}
			start, count := sliceRange(starts[i], ends[i], s, x.Shape[ax])
			st[ax], step[ax], shape[ax] = start, s, count
		}
		out := ctx.Empty(x.DType, shape) // every element is written below
		if out.Len() == 0 {
			return one(out), nil
		}
		xs := stridesInto(xsb[:0], x.Shape)
		base := 0
		src := srcb[:0]
		for i := range xs {
			base += st[i] * xs[i]
			src = append(src, xs[i]*step[i])
		}
		c := copierOf(out, x)
		bcastIter(shape, [][]int{stridesOf(shape), src}, func(offs []int, n int, inner []int) {
			if inner[1] == 1 {
				c.run(offs[0], base+offs[1], n)
			} else {
				c.strided(offs[0], base+offs[1], n, inner[1])
			}
		})
		return one(out), nil
	}), a.err
}

// sliceRange clamps a slice of an axis of size dim as numpy does and returns the
// first index and the element count.
func sliceRange(start, end, step, dim int) (int, int) {
	if start < 0 {
		start += dim
	}
	if end < 0 {
		end += dim
	}
	if step > 0 {
		start = max(0, min(dim, start))
		end = max(0, min(dim, end))
		if end <= start {
			return start, 0
		}
		return start, (end - start + step - 1) / step
	}
	start = max(-1, min(dim-1, start))
	end = max(-1, min(dim-1, end))
	if end >= start {
		return max(start, 0), 0
	}
	return start, (start - end - step - 1) / -step
}

func newGather(ni *NodeInfo) (Kernel, error) {
	a := attrsOf(ni.Node)
	axis := a.Int("axis", 0)
	return KernelFunc(func(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
		if err := need(in, 2); err != nil {
			return nil, err
		}
		x, idxT := in[0], in[1]
		ax, err := normAxis(axis, x.Rank())
		if err != nil {
			return nil, err
		}
		idx := ctx.ScratchInts(idxT.Len())
		defer ctx.ReleaseInts(idx)
		if _, err := intsInto(idx[:0], idxT); err != nil {
			return nil, err
		}
		dim := x.Shape[ax]
		var sb [8]int
		shape := append(append(append(sb[:0], x.Shape[:ax]...), idxT.Shape...), x.Shape[ax+1:]...)
		out := ctx.Empty(x.DType, shape) // every element is written below
		outer := graph.Numel(x.Shape[:ax])
		inner := graph.Numel(x.Shape[ax+1:])
		for j, v := range idx {
			if v < -dim || v >= dim {
				return nil, fmt.Errorf("index %d is out of range for axis of size %d", v, dim)
			}
			if v < 0 {
				idx[j] = v + dim
			}
		}
		// Rows of a few elements (a column of a detector's [boxes, 85]
		// scores, a relative position bias table's rows) by element, where
		// a copy call per row cost more than its copy.
		if inner < 8 {
			switch o := out.Data().(type) {
			case []float32:
				gatherSmall(o, x.Float32s(), idx, outer, dim, inner)
				return one(out), nil
			case []int64:
				gatherSmall(o, x.Int64s(), idx, outer, dim, inner)
				return one(out), nil
			case []int32:
				gatherSmall(o, graph.Elems[int32](x), idx, outer, dim, inner)
				return one(out), nil
			}
		}
		c := copierOf(out, x)
		for o := 0; o < outer; o++ {
			for j, v := range idx {
				c.run((o*len(idx)+j)*inner, (o*dim+v)*inner, inner)
			}
		}
		return one(out), nil
	}), a.err
}

// gatherSmall is Gather of rows of inner elements (few) along an axis of
// dim, outer times, for indices already in range.
func gatherSmall[T any](dst, src []T, idx []int, outer, dim, inner int) {
	if inner == 1 {
		for o := range outer {
			d, s := dst[o*len(idx):(o+1)*len(idx)], src[o*dim:(o+1)*dim]
			for j, v := range idx {
				d[j] = s[v]
			}
		}
		return
	}
	for o := range outer {
		for j, v := range idx {
			copy(dst[(o*len(idx)+j)*inner:(o*len(idx)+j+1)*inner], src[(o*dim+v)*inner:(o*dim+v+1)*inner])
		}
	}
}

func newGatherElements(ni *NodeInfo) (Kernel, error) {
	a := attrsOf(ni.Node)
	axis := a.Int("axis", 0)
	return KernelFunc(func(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
		if err := need(in, 2); err != nil {
			return nil, err
		}
		x, idxT := in[0], in[1]
		ax, err := normAxis(axis, x.Rank())
		if err != nil {
			return nil, err
		}
		if idxT.Rank() != x.Rank() {
			return nil, fmt.Errorf("indices rank %d differs from data rank %d", idxT.Rank(), x.Rank())
		}
		out := ctx.Empty(x.DType, idxT.Shape) // every element is written below
		for d, n := range idxT.Shape {
			if d != ax && n > x.Shape[d] {
				return nil, fmt.Errorf("indices shape %v exceeds data shape %v on axis %d", idxT.Shape, x.Shape, d)
			}
		}
		n := idxT.Len()
		if n == 0 {
			return one(out), nil
		}
		e := newElemAxis(idxT.Shape, x.Shape, ax)
		width := idxT.Shape[len(idxT.Shape)-1]
		// float32 and int64 data read straight through the indices, one
		// pass over a row; other types through offsets and the copier.
		var fused func(row int) error
		switch o := out.Data().(type) {
		case []float32:
			fused = fusedGather(e, o, x.Float32s(), idxT, width)
		case []int64:
			fused = fusedGather(e, o, x.Int64s(), idxT, width)
		}
		var readRow func(dst []int, at int)
		if fused == nil {
			if readRow, err = intRows(idxT); err != nil {
				return nil, err
			}
		}
		var mu sync.Mutex
		var rowErr error
		parallelFor(threadsFor(ctx, n, 1<<14), n/width, func(lo, hi int) {
			fail := func(err error) {
				mu.Lock()
				rowErr = cmp.Or(rowErr, err)
				mu.Unlock()
			}
			if fused != nil {
				for row := lo; row < hi; row++ {
					if err := fused(row); err != nil {
						fail(err)
						return
					}
				}
				return
			}
			// Row by row of the last axis, the offsets of one row at a
			// time: no index or offset arrays of the whole output.
			c := copierOf(out, x)
			iv, ov := make([]int, width), make([]int, width)
			for row := lo; row < hi; row++ {
				readRow(iv, row*width)
				if err := e.rowOffsets(ov, iv, row); err != nil {
					fail(err)
					return
				}
				for j, off := range ov {
					c.run(row*width+j, off, 1)
				}
			}
		})
		if rowErr != nil {
			return nil, rowErr
		}
		return one(out), nil
	}), a.err
}

// elemAxis places GatherElements' reads: indices of shape is into data
// with strides xst, along axis ax of size dim.
type elemAxis struct {
	is, xst []int
	ax, dim int
}

func newElemAxis(is, xs []int, ax int) elemAxis {
	return elemAxis{is: is, xst: stridesOf(xs), ax: ax, dim: xs[ax]}
}

// rowOffsets writes to offs the offsets in data that row row of indices
// (its values idx, along the last axis) reads: the elements' own
// coordinates off the axis, their index on it (negative from the end).
func (e elemAxis) rowOffsets(offs, idx []int, row int) error {
	base, step := e.rowStart(row)
	// The stride and size in locals, one unsigned compare for the range
	// (after a negative index is moved up) and the running offset added:
	// with the fields read and the two compares in the loop, this took
	// half of a 256x1000 GatherElements along axis 1 (1.3 ns an index).
	offs = offs[:len(idx)]
	sa, dim, at := e.xst[e.ax], e.dim, base
	for j, v := range idx {
		if v < 0 {
			v += dim
		}
		if uint(v) >= uint(dim) {
			return fmt.Errorf("index %d is out of range for axis of size %d", idx[j], dim)
		}
		offs[j] = at + v*sa
		at += step
	}
	return nil
}

// rowStart is where in data row row of indices reads its first element
// from, at index 0 along the axis, and how far each next element's read
// moves along the last axis (0 when that is the gathered one).
func (e elemAxis) rowStart(row int) (base, step int) {
	last := len(e.is) - 1
	for d, rem := last-1, row; d >= 0; d-- {
		if d != e.ax {
			base += rem % e.is[d] * e.xst[d]
		}
		rem /= e.is[d]
	}
	if e.ax != last {
		step = e.xst[last]
	}
	return base, step
}

// fusedGather returns GatherElements of rows of width from src into o for
// int64 or int32 indices (nil for others): each index checked, placed and
// read in one pass, as rowOffsets places it. Through an offsets array and
// then the reads, a 256x1000 gather along axis 1 took 1.66x ONNX Runtime's
// time.
func fusedGather[T float32 | int64](e elemAxis, o, src []T, idxT *graph.Tensor, width int) func(row int) error {
	switch d := idxT.Data().(type) {
	case []int64:
		return func(row int) error { return gatherElemRow(e, o, src, d, row, width) }
	case []int32:
		return func(row int) error { return gatherElemRow(e, o, src, d, row, width) }
	}
	return nil
}

func gatherElemRow[T float32 | int64, I int64 | int32](e elemAxis, o, src []T, idx []I, row, width int) error {
	at, step := e.rowStart(row)
	sa, dim := e.xst[e.ax], e.dim
	out := o[row*width : (row+1)*width]
	for j, v := range idx[row*width : (row+1)*width] {
		k := int(v)
		if k < 0 {
			k += dim
		}
		if uint(k) >= uint(dim) {
			return fmt.Errorf("index %d is out of range for axis of size %d", v, dim)
		}
		out[j] = src[at+k*sa]
		at += step
	}
	return nil
}

// gatherOffsets is rowOffsets for every row of indices idx (shape is).
func gatherOffsets(idx []int, is, xs []int, ax int) ([]int, error) {
	offs := make([]int, len(idx))
	width := is[len(is)-1]
	if len(idx) == 0 || width == 0 {
		return offs, nil
	}
	e := newElemAxis(is, xs, ax)
	for row := 0; row*width < len(idx); row++ {
		if err := e.rowOffsets(offs[row*width:], idx[row*width:(row+1)*width], row); err != nil {
			return nil, err
		}
	}
	return offs, nil
}

// intRows reads an int64 or int32 tensor's values a row at a time as ints:
// read(dst, at) fills dst from element at on.
func intRows(t *graph.Tensor) (read func(dst []int, at int), err error) {
	switch d := t.Data().(type) {
	case []int64:
		return rowInts(d), nil
	case []int32:
		return rowInts(d), nil
	}
	return nil, fmt.Errorf("expected an int64 tensor, got %s", t.DType.Short())
}

func rowInts[T int64 | int32](d []T) func(dst []int, at int) {
	return func(dst []int, at int) {
		for j, v := range d[at : at+len(dst)] {
			dst[j] = int(v)
		}
	}
}

func newExpand(*NodeInfo) (Kernel, error) {
	return KernelFunc(func(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
		if err := need(in, 2); err != nil {
			return nil, err
		}
		x := in[0]
		want, err := ints(in[1])
		if err != nil {
			return nil, err
		}
		shape, err := broadcastShape(x.Shape, want)
		if err != nil {
			return nil, err
		}
		return one(broadcastWith(ctx, x, shape)), nil
	}), nil
}

// broadcastTo materializes x broadcast to shape.
func broadcastTo(x *graph.Tensor, shape []int) *graph.Tensor { return broadcastWith(nil, x, shape) }

// broadcastWith is broadcastTo with the output from ctx's pool.
func broadcastWith(ctx *Context, x *graph.Tensor, shape []int) *graph.Tensor {
	out := ctx.Empty(x.DType, shape) // the copies write every element
	if out.Len() == 0 {
		return out
	}
	dims, st := mergeDims(shape, [][]int{bcastStrides(x.Shape, shape)})
	b := repeater{c: copierOf(out, x), self: copierOf(out, out), dims: dims, xs: st[0], os: make([]int, len(dims))}
	for d, n := len(dims)-1, 1; d >= 0; d-- {
		b.os[d] = n
		n *= dims[d]
	}
	if len(dims) == 0 {
		b.c.run(0, 0, 1)
		return out
	}
	if b.xs[0] == 0 || len(dims) == 1 {
		b.fill(0, 0, 0)
		return out
	}
	parallelFor(threadsFor(ctx, out.Len(), minStreamWork), dims[0], func(lo, hi int) {
		for k := lo; k < hi; k++ {
			b.fill(1, k*b.os[0], k*b.xs[0])
		}
	})
	return out
}

// repeater writes a broadcast (Expand, Tile) axis by axis: along an axis x
// does not move on (stride 0), the first block is written once and then
// copied onto the rest of the axis within the output (double), so a mask
// 1x1x1x197 expanded to 1x12x197x197 takes about 20 copies, not one per
// row (2364).
type repeater struct {
	c, self copier // x to the output, the output to itself
	dims    []int  // the output's merged axes
	xs, os  []int  // their strides in x (0: broadcast) and in the output
}

// fill writes the output from axis d on at offset o, reading x from i.
func (b *repeater) fill(d, o, i int) {
	n := b.dims[d]
	if d == len(b.dims)-1 { // a run of x, or one value repeated (strided fills it)
		b.c.strided(o, i, n, b.xs[d])
		return
	}
	// Rows of x (contiguous runs at the last axis), each written once or
	// repeated along the axis between: one call for the lot, where a call
	// a row and one more to double it cost more than the copies (Tile
	// 1,1,2,2 on 1x64x56x56: 7168 calls for 224-byte rows).
	last := len(b.dims) - 1
	if b.xs[last] == 1 && b.xs[d] != 0 && b.dims[last] < 1024 {
		switch {
		case d == last-1:
			b.c.rows(o, i, n, b.dims[last], b.xs[d], b.os[d], 1)
			return
		case d == last-2 && b.xs[d+1] == 0:
			b.c.rows(o, i, n, b.dims[last], b.xs[d], b.os[d], b.dims[d+1])
			return
		}
	}
	if b.xs[d] == 0 {
		b.fill(d+1, o, i)
		b.double(o, b.os[d], n)
		return
	}
	for k := 0; k < n; k++ {
		b.fill(d+1, o+k*b.os[d], i+k*b.xs[d])
	}
}

// double copies the block of size at o onto the next n-1 blocks after it:
// by doubling (few calls) until a run of blocks is repeatRun elements long,
// then that run, read from the first, which stays in cache where a doubled
// run would be read back from L2 or memory. Blocks of repeatRun and up are
// each copied from the first (Tile 1,4,1,1 on 1x64x56x56: 1.15x ORT's time
// doubling, 0.97 copying from x as before); an attention mask expanded to
// 1x12x197x197, doubled to the end, read 930 KB back in its last copy: 1.37x
// ORT's time, with runs of 1024 0.96-0.99 (256: 1.65, 4096: 1.18).
func (b *repeater) double(o, size, n int) {
	have := 1
	for have < n && have*size < repeatRun {
		k := min(have, n-have)
		b.self.run(o+have*size, o, k*size)
		have += k
	}
	for run := have; have < n; {
		k := min(run, n-have)
		b.self.run(o+have*size, o, k*size)
		have += k
	}
}

// repeatRun is how long (in elements) a run double builds by doubling
// before it copies the run itself on.
const repeatRun = 1024

func newTile(*NodeInfo) (Kernel, error) {
	return KernelFunc(func(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
		if err := need(in, 2); err != nil {
			return nil, err
		}
		x := in[0]
		reps, err := ints(in[1])
		if err != nil {
			return nil, err
		}
		if len(reps) != x.Rank() {
			return nil, fmt.Errorf("repeats %v do not fit rank %d", reps, x.Rank())
		}
		// Tile = broadcast of x viewed as [1, d0, 1, d1, ...] to [r0, d0, r1, d1, ...].
		var src, dst []int
		for i, d := range x.Shape {
			if reps[i] < 0 {
				return nil, fmt.Errorf("negative repeat %d", reps[i])
			}
			src = append(src, 1, d)
			dst = append(dst, reps[i], d)
		}
		shape := make([]int, x.Rank())
		for i, d := range x.Shape {
			shape[i] = d * reps[i]
		}
		t := broadcastWith(ctx, view(x, src), dst)
		return one(view(t, shape)), nil
	}), nil
}

func newPad(ni *NodeInfo) (Kernel, error) {
	a := attrsOf(ni.Node)
	mode := a.String("mode", "constant")
	attrPads := a.Ints("pads", nil)
	if attrPads == nil {
		attrPads = a.Ints("paddings", nil)
	}
	attrValue := a.Float("value", 0)
	if a.err != nil {
		return nil, a.err
	}
	switch mode {
	case "constant", "reflect", "edge", "wrap":
	default:
		return nil, fmt.Errorf("unknown Pad mode %q", mode)
	}
	// The index maps depend only on the input's shape and the pads, which
	// are the same run after run: built on the first run and kept (a style
	// transfer net's reflect pads rebuilt them at 53 KB a call).
	var plan atomic.Pointer[padPlan]
	return KernelFunc(func(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
		if err := need(in, 1); err != nil {
			return nil, err
		}
		x := in[0]
		r := x.Rank()
		var pads []int
		var axes []int
		value := float64(attrValue)
		var err error
		if ni.Opset < 11 {
			pads = toInts(attrPads)
		} else {
			if err := need(in, 2); err != nil {
				return nil, err
			}
			if pads, err = ints(in[1]); err != nil {
				return nil, err
			}
			if len(in) > 2 && in[2] != nil && in[2].Len() > 0 {
				if value, err = scalarFloat64(in[2]); err != nil {
					return nil, err
				}
			}
			if len(in) > 3 && in[3] != nil {
				if axes, err = ints(in[3]); err != nil {
					return nil, err
				}
			}
		}
		full := make([]int, 2*r)
		if axes == nil {
			if len(pads) != 2*r {
				return nil, fmt.Errorf("pads %v do not fit rank %d", pads, r)
			}
			copy(full, pads)
		} else {
			if len(pads) != 2*len(axes) {
				return nil, fmt.Errorf("pads %v do not fit axes %v", pads, axes)
			}
			for i, ax := range axes {
				k, err := normAxis(int64(ax), r)
				if err != nil {
					return nil, err
				}
				full[k], full[k+r] = pads[i], pads[i+len(axes)]
			}
		}
		shape := make([]int, r)
		for i := range shape {
			shape[i] = x.Shape[i] + full[i] + full[i+r]
			if shape[i] < 0 {
				return nil, fmt.Errorf("pads %v make axis %d negative", full, i)
			}
			if mode != "constant" && x.Shape[i] == 0 && shape[i] > 0 {
				return nil, fmt.Errorf("%s padding of an empty axis", mode)
			}
			if mode == "reflect" && (full[i] >= x.Shape[i] || full[i+r] >= x.Shape[i]) && (full[i] > 0 || full[i+r] > 0) && x.Shape[i] < 2 {
				return nil, fmt.Errorf("reflect padding needs at least 2 elements on axis %d", i)
			}
		}
		// Constant padding fills the output first, except for float32 ones,
		// whose row loop (padRowsF32) writes the constant where it goes;
		// the other modes write every element.
		var out *graph.Tensor
		if mode == "constant" && !(x.DType == graph.Float && x.Rank() > 0) {
			out = ctx.New(x.DType, shape)
			if err := fillConst(out, value); err != nil {
				return nil, err
			}
		} else {
			out = ctx.Empty(x.DType, shape)
		}
		if out.Len() == 0 {
			return one(out), nil
		}
		c := copierOf(out, x)
		p := plan.Load()
		if p == nil || !slices.Equal(p.xshape, x.Shape) || !slices.Equal(p.full, full) {
			p = newPadPlan(mode, x.Shape, full, shape)
			plan.Store(p)
		}
		xs, maps := p.xs, p.maps
		if r == 0 {
			c.run(0, 0, 1)
			return one(out), nil
		}
		// Row by row along the last axis: the part of a row that lies in
		// the input is one copy, the padding at its ends comes element by
		// element through the last axis's map (constant padding is already
		// there); the rows' coordinates advance by one, not by divisions.
		last := r - 1
		width, n := shape[last], x.Shape[last]
		lo := max(0, min(width, full[last]))
		hi := max(lo, min(width, full[last]+n))
		rows := out.Len() / width
		lastMap := maps[last]
		of32, _ := out.Data().([]float32)
		xf32, _ := x.Data().([]float32)
		if of32 != nil && xf32 != nil {
			padRowsF32(ctx, of32, xf32, p.rowSources(), width, lo, hi, full[last], lastMap, mode == "constant", float32(value))
			return one(out), nil
		}
		parallelFor(threadsFor(ctx, out.Len(), 1<<15), rows, func(r0, r1 int) {
			idx := make([]int, last)
			for d, rem := last-1, r0; d >= 0; d-- {
				idx[d] = rem % shape[d]
				rem /= shape[d]
			}
			for row := r0; row < r1; row++ {
				src := 0
				for d := 0; d < last; d++ {
					s := maps[d][idx[d]]
					if s < 0 {
						src = -1
						break
					}
					src += s * xs[d]
				}
				for d := last - 1; d >= 0; d-- {
					if idx[d]++; idx[d] < shape[d] {
						break
					}
					idx[d] = 0
				}
				if src < 0 {
					continue
				}
				o := row * width
				if hi > lo {
					c.run(o+lo, src+lo-full[last], hi-lo)
				}
				if mode == "constant" {
					continue
				}
				for _, span := range [2][2]int{{0, lo}, {hi, width}} {
					for j := span[0]; j < span[1]; j++ {
						switch s := lastMap[j]; {
						case s < 0:
						case of32 != nil:
							of32[o+j] = xf32[src+s]
						default:
							c.run(o+j, src+s, 1)
						}
					}
				}
			}
		})
		return one(out), nil
	}), nil
}

// padPlan is a Pad's index maps for one input shape and pads.
type padPlan struct {
	xshape, full []int
	shape, xs    []int   // the output's shape, the input's strides
	maps         [][]int // per axis, each output index's source index (-1: constant)
	srcOnce      sync.Once
	src          []int // rowSources of the leading axes, made on first use
}

func newPadPlan(mode string, xshape, full, shape []int) *padPlan {
	p := &padPlan{xshape: slices.Clone(xshape), full: slices.Clone(full), shape: slices.Clone(shape), xs: stridesOf(xshape)}
	r := len(xshape)
	// Every output index's source index per axis and mode (-1: constant).
	srcIdx := func(o, i int) int {
		s := o - full[i]
		n := xshape[i]
		if s >= 0 && s < n {
			return s
		}
		switch mode {
		case "edge":
			return max(0, min(n-1, s))
		case "wrap":
			return ((s % n) + n) % n
		case "reflect":
			if n == 1 {
				return 0
			}
			period := 2 * (n - 1)
			s = ((s % period) + period) % period
			if s >= n {
				s = period - s
			}
			return s
		}
		return -1
	}
	p.maps = make([][]int, r)
	for d := range p.maps {
		p.maps[d] = make([]int, shape[d])
		for o := range p.maps[d] {
			p.maps[d][o] = srcIdx(o, d)
		}
	}
	return p
}

// rowSources is rowSources over the plan's leading axes, computed once.
func (p *padPlan) rowSources() []int {
	p.srcOnce.Do(func() {
		last := len(p.shape) - 1
		p.src = rowSources(p.shape[:last], p.maps[:last], p.xs[:last])
	})
	return p.src
}

// rowSources is, for each row of an output of the given leading shape,
// where its source row starts in the input (strides xs), or -1 where a map
// (an axis's output-to-input index, -1 for constant padding) has none:
// built axis by axis, each axis's entries from the previous axis's.
func rowSources(shape []int, maps [][]int, xs []int) []int {
	src := []int{0}
	for d, n := range shape {
		next := make([]int, 0, len(src)*n)
		for _, s := range src {
			for _, m := range maps[d][:n] {
				if s < 0 || m < 0 {
					next = append(next, -1)
				} else {
					next = append(next, s+m*xs[d])
				}
			}
		}
		src = next
	}
	return src
}

// padRowsF32 is Pad's row loop for float32: row i of the output (width
// floats) takes input columns [lo-before, hi-before) of the row at src[i]
// in one copy, and its padded columns through the last axis's map, or with
// constant padding cv; a row whose source is -1 (constant padding) is all
// cv. It writes every element: the output comes uncleared.
func padRowsF32(ctx *Context, od, xd []float32, src []int, width, lo, hi, before int, lastMap []int, constant bool, cv float32) {
	parallelFor(threadsFor(ctx, len(src)*width, 1<<15), len(src), func(r0, r1 int) {
		for row := r0; row < r1; row++ {
			s := src[row]
			o := od[row*width : (row+1)*width]
			if s < 0 { // a row of padding (constant mode only)
				fillSlice(o, cv)
				continue
			}
			copy(o[lo:hi], xd[s+lo-before:])
			if constant {
				fillSlice(o[:lo], cv)
				fillSlice(o[hi:], cv)
				continue
			}
			for j, m := range lastMap[:lo] {
				o[j] = xd[s+m]
			}
			for j, m := range lastMap[hi:width] {
				o[hi+j] = xd[s+m]
			}
		}
	})
}

// FillConst sets every element of t to v, converted to t's type (as
// ConstantOfShape and ConstantFill fill), for passes that build constants.
func FillConst(t *graph.Tensor, v float64) error { return fillConst(t, v) }

// fillConst sets every element of t to v converted to its type.
func fillConst(t *graph.Tensor, v float64) error {
	if v == 0 {
		return nil // new tensors are zero
	}
	switch d := t.Data().(type) {
	case []float32:
		for i := range d {
			d[i] = float32(v)
		}
	case []float64:
		for i := range d {
			d[i] = v
		}
	case []int64:
		for i := range d {
			d[i] = int64(v)
		}
	case []int32:
		for i := range d {
			d[i] = int32(v)
		}
	case []int8:
		for i := range d {
			d[i] = int8(v)
		}
	case []uint8:
		for i := range d {
			d[i] = uint8(v)
		}
	case []bool:
		for i := range d {
			d[i] = v != 0
		}
	default:
		return fmt.Errorf("filling %s is not supported", t.DType.Short())
	}
	return nil
}

func newConstantOfShape(ni *NodeInfo) (Kernel, error) {
	var value *graph.Tensor
	if ni.Node.HasAttr("value") {
		v, err := ni.Node.AttrTensor("value", ni.Dir)
		if err != nil {
			return nil, err
		}
		if v.Len() != 1 {
			return nil, fmt.Errorf("value must hold one element")
		}
		value = v
	} else {
		value = graph.Float32Tensor([]int{1}, []float32{0})
	}
	return KernelFunc(func(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
		if err := need(in, 1); err != nil {
			return nil, err
		}
		shape, err := ints(in[0])
		if err != nil {
			return nil, err
		}
		for _, d := range shape {
			if d < 0 {
				return nil, fmt.Errorf("negative dimension in shape %v", shape)
			}
		}
		out := ctx.Empty(value.DType, shape) // every element is written below
		c := copierOf(out, value)
		for i := 0; i < out.Len(); i++ {
			c.run(i, 0, 1)
		}
		return one(out), nil
	}), nil
}

func newRange(*NodeInfo) (Kernel, error) {
	return KernelFunc(func(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
		if err := need(in, 3); err != nil {
			return nil, err
		}
		start, err1 := scalarFloat64(in[0])
		limit, err2 := scalarFloat64(in[1])
		delta, err3 := scalarFloat64(in[2])
		if err := firstErr(err1, err2, err3); err != nil {
			return nil, err
		}
		if delta == 0 {
			return nil, fmt.Errorf("Range delta is 0")
		}
		dt := in[0].DType
		n := int(max(0, math.Ceil((limit-start)/delta)))
		out := ctx.New(dt, []int{n})
		switch d := out.Data().(type) {
		case []float32:
			s, dl := float32(start), float32(delta)
			for i := range d {
				d[i] = s + float32(i)*dl
			}
		case []float64:
			for i := range d {
				d[i] = start + float64(i)*delta
			}
		case []int64:
			s, dl := graph.Elems[int64](in[0])[0], graph.Elems[int64](in[2])[0]
			for i := range d {
				d[i] = s + int64(i)*dl
			}
		case []int32:
			s, dl := graph.Elems[int32](in[0])[0], graph.Elems[int32](in[2])[0]
			for i := range d {
				d[i] = s + int32(i)*dl
			}
		case []int16:
			for i := range d {
				d[i] = int16(start) + int16(i)*int16(delta)
			}
		default:
			return nil, fmt.Errorf("Range on %s is not supported", dt.Short())
		}
		return one(out), nil
	}), nil
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

func newConstant(ni *NodeInfo) (Kernel, error) {
	n := ni.Node
	var t *graph.Tensor
	var err error
	switch {
	case n.HasAttr("value"):
		t, err = n.AttrTensor("value", ni.Dir)
	case n.HasAttr("value_float"):
		v, e := n.AttrFloat("value_float", 0)
		t, err = graph.Float32Tensor(nil, []float32{v}), e
	case n.HasAttr("value_floats"):
		v, e := n.AttrFloats("value_floats", nil)
		t, err = graph.Float32Tensor([]int{len(v)}, slices.Clone(v)), e
	case n.HasAttr("value_int"):
		v, e := n.AttrInt("value_int", 0)
		t, err = graph.Int64Tensor(nil, []int64{v}), e
	case n.HasAttr("value_ints"):
		v, e := n.AttrInts("value_ints", nil)
		t, err = graph.Int64Tensor([]int{len(v)}, slices.Clone(v)), e
	case n.HasAttr("value_string"):
		v, e := n.AttrString("value_string", "")
		t, err = graph.TensorOf(graph.String, nil, [][]byte{[]byte(v)})
		if err == nil {
			err = e
		}
	case n.HasAttr("value_strings"):
		v, e := n.AttrStrings("value_strings", nil)
		b := make([][]byte, len(v))
		for i, s := range v {
			b[i] = []byte(s)
		}
		t, err = graph.TensorOf(graph.String, []int{len(v)}, b)
		if err == nil {
			err = e
		}
	default:
		return nil, fmt.Errorf("Constant has no value attribute (sparse_value is not supported)")
	}
	if err != nil {
		return nil, err
	}
	return KernelFunc(func(*Context, []*graph.Tensor) ([]*graph.Tensor, error) { return one(t), nil }), nil
}

func init() {
	Register("", "Reshape", 1, newReshape)
	Register("", "Flatten", 1, newFlatten)
	Register("", "Squeeze", 1, newSqueeze)
	Register("", "Unsqueeze", 1, newUnsqueeze)
	Register("", "Identity", 1, newIdentity)
	Register("", "Dropout", 1, newDropout)
	Register("", "Shape", 1, newShape)
	Register("", "Size", 1, newSize)
	Register("", "Transpose", 1, newTranspose)
	Register("", "Concat", 1, newConcat)
	Register("", "Split", 1, newSplit)
	Register("", "Slice", 1, newSlice)
	Register("", "Gather", 1, newGather)
	Register("", "GatherElements", 11, newGatherElements)
	Register("", "Expand", 8, newExpand)
	Register("", "Tile", 6, newTile)
	Register("", "Pad", 1, newPad) // Pad-1 names its pads "paddings"
	Register("", "ConstantOfShape", 9, newConstantOfShape)
	Register("", "Range", 11, newRange)
	Register("", "Constant", 1, newConstant)
}
