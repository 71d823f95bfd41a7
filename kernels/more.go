package kernels

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"sync"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/kernels/vec"
)

// Less common ops real models still use: trigonometry, Shrink, Hardmax, Mod,
// Trilu, CumSum, TopK, DepthToSpace/SpaceToDepth, NonZero, LRN.

func init() {
	for op, f := range map[string]func(float64) float64{
		"Tan": math.Tan, "Asin": math.Asin, "Acos": math.Acos, "Atan": math.Atan,
		"Sinh": math.Sinh, "Cosh": math.Cosh, "Asinh": math.Asinh, "Acosh": math.Acosh, "Atanh": math.Atanh,
	} {
		unaryFloat(op, 7, simple(f64(f)))
	}
	unaryFloat("Shrink", 9, func(a *attrs, _ *NodeInfo) (sliceFn, error) {
		bias, lambd := a.Float("bias", 0), a.Float("lambd", 0.5)
		return pointwise(func(x float32) float32 {
			switch {
			case x < -lambd:
				return x + bias
			case x > lambd:
				return x - bias
			}
			return 0
		}), nil
	})
	Register("", "Hardmax", 1, newHardmax)
	Register("", "Mod", 10, newMod)
	Register("", "Trilu", 14, newTrilu)
	Register("", "CumSum", 11, newCumSum)
	Register("", "TopK", 1, newTopK)
	Register("", "DepthToSpace", 1, newDepthSpace(true))
	Register("", "SpaceToDepth", 1, newDepthSpace(false))
	Register("", "NonZero", 9, newNonZero)
	Register("", "LRN", 1, newLRN)
}

// newHardmax sets 1 at the first maximum along the axis (coerced to 2-D before
// opset 13, like Softmax) and 0 elsewhere.
func newHardmax(ni *NodeInfo) (Kernel, error) {
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
		if err := wantFloat(x, "Hardmax input"); err != nil {
			return nil, err
		}
		ax, err := normAxis(axis, x.Rank())
		if err != nil {
			return nil, err
		}
		outer, dim, inner := graph.Numel(x.Shape[:ax]), x.Shape[ax], graph.Numel(x.Shape[ax+1:])
		if ni.Opset < 13 {
			outer, dim, inner = graph.Numel(x.Shape[:ax]), graph.Numel(x.Shape[ax:]), 1
		}
		out := ctx.New(graph.Float, x.Shape) // zeros, and a 1 at each winner
		if dim == 0 || out.Len() == 0 {
			return one(out), nil
		}
		// The winner is ArgMax's: the first of the largest values, a NaN
		// neither winning nor beaten (the scan's v > best).
		best := ctx.Empty(graph.Int64, []int{outer * inner}) // argRows writes every index
		defer recycleTemp(ctx, best)
		ids, od := best.Int64s(), out.Float32s()
		argRows(ctx, x.Float32s(), ids, outer, dim, inner, true, false)
		for k, j := range ids {
			o, i := k/inner, k%inner
			od[(o*dim+int(j))*inner+i] = 1
		}
		return one(out), nil
	}), a.err
}

// newMod is integer Mod with the sign of the divisor (fmod 0) or of the dividend
// (fmod 1, C's fmod), for every numeric type.
func newMod(ni *NodeInfo) (Kernel, error) {
	a := attrsOf(ni.Node)
	fmod := a.Int("fmod", 0) != 0
	return KernelFunc(func(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
		if err := need(in, 2); err != nil {
			return nil, err
		}
		x, y := in[0], in[1]
		if x.DType != y.DType {
			return nil, fmt.Errorf("Mod inputs differ in type")
		}
		if x.DType.IsFloat() && !fmod {
			return nil, fmt.Errorf("Mod of floats needs fmod=1")
		}
		os, err := broadcastShape(x.Shape, y.Shape)
		if err != nil {
			return nil, err
		}
		xf, err := asFloat64s(x)
		if err != nil {
			return nil, err
		}
		yf, err := asFloat64s(y)
		if err != nil {
			return nil, err
		}
		res := make([]float64, graph.Numel(os))
		var bad bool
		broadcast2(ctx, xf, yf, res, x.Shape, y.Shape, os, elementRun(func(p, q float64) float64 {
			if q == 0 && !x.DType.IsFloat() {
				bad = true
				return 0
			}
			r := math.Mod(p, q)
			if !fmod && r != 0 && (r < 0) != (q < 0) {
				r += q
			}
			return r
		}))
		if bad {
			return nil, fmt.Errorf("integer Mod by zero")
		}
		out := graph.NewTensor(x.DType, os)
		if x.DType == graph.Int64 {
			// exact for all int64 values: compute in integers
			xi, yi, oi := graph.Elems[int64](x), graph.Elems[int64](y), out.Int64s()
			broadcast2(ctx, xi, yi, oi, x.Shape, y.Shape, os, elementRun(func(p, q int64) int64 {
				r := p % q
				if !fmod && r != 0 && (r < 0) != (q < 0) {
					r += q
				}
				return r
			}))
			return one(out), nil
		}
		return one(out), storeFloat64s(out, res)
	}), a.err
}

// newTrilu keeps the upper (or lower) triangle of the last two dims, shifted by k.
func newTrilu(ni *NodeInfo) (Kernel, error) {
	a := attrsOf(ni.Node)
	upper := a.Int("upper", 1) != 0
	return KernelFunc(func(_ *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
		if err := need(in, 1); err != nil {
			return nil, err
		}
		x := in[0]
		if x.Rank() < 2 {
			return nil, fmt.Errorf("Trilu needs rank >= 2")
		}
		k := 0
		if len(in) > 1 && in[1] != nil {
			v, err := ints(in[1])
			if err != nil || len(v) != 1 {
				return nil, fmt.Errorf("Trilu k must be one int64")
			}
			k = v[0]
		}
		out := x.Clone()
		rows, cols := x.Shape[x.Rank()-2], x.Shape[x.Rank()-1]
		zero := graph.NewTensor(x.DType, []int{1})
		c := copierOf(out, zero)
		for b := 0; b < x.Len()/max(1, rows*cols); b++ {
			for i := 0; i < rows; i++ {
				for j := 0; j < cols; j++ {
					keep := j-i >= k
					if !upper {
						keep = j-i <= k
					}
					if !keep {
						c.run(b*rows*cols+i*cols+j, 0, 1)
					}
				}
			}
		}
		return one(out), nil
	}), a.err
}

// newCumSum sums along an axis, optionally exclusive and/or reversed.
func newCumSum(ni *NodeInfo) (Kernel, error) {
	a := attrsOf(ni.Node)
	exclusive, reverse := a.Int("exclusive", 0) != 0, a.Int("reverse", 0) != 0
	return KernelFunc(func(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
		if err := need(in, 2); err != nil {
			return nil, err
		}
		x := in[0]
		av, err := ints(in[1])
		if err != nil || len(av) != 1 {
			return nil, fmt.Errorf("CumSum axis must be one integer")
		}
		ax, err := normAxis(int64(av[0]), x.Rank())
		if err != nil {
			return nil, err
		}
		outer, dim, inner := graph.Numel(x.Shape[:ax]), x.Shape[ax], graph.Numel(x.Shape[ax+1:])
		if xf, ok := x.Data().([]float32); ok {
			// float32: row by row along the axis into a float64 running row,
			// reading and writing contiguous rows (the general loop below
			// walks each lane at a stride of inner).
			out := ctx.Float32(x.Shape)
			od := out.Float32s()
			if inner == 1 { // along the last axis: one running sum per row
				for o := 0; o < outer; o++ {
					src, dst := xf[o*dim:(o+1)*dim], od[o*dim:(o+1)*dim]
					s := 0.0
					for step := range src {
						j := step
						if reverse {
							j = dim - 1 - step
						}
						if exclusive {
							dst[j] = float32(s)
							s += float64(src[j])
						} else {
							s += float64(src[j])
							dst[j] = float32(s)
						}
					}
				}
				return one(out), nil
			}
			// The running row from the pool: a fresh one each run was the
			// op's garbage.
			accT := ctx.Empty(graph.Double, []int{inner})
			defer recycleTemp(ctx, accT)
			acc := graph.Elems[float64](accT)
			for o := 0; o < outer; o++ {
				clear(acc)
				for step := 0; step < dim; step++ {
					j := step
					if reverse {
						j = dim - 1 - step
					}
					vec.AccRow(acc, xf[(o*dim+j)*inner:(o*dim+j+1)*inner], od[(o*dim+j)*inner:(o*dim+j+1)*inner], exclusive)
				}
			}
			return one(out), nil
		}
		v, err := asFloat64s(x)
		if err != nil {
			return nil, err
		}
		res := make([]float64, len(v))
		for o := 0; o < outer; o++ {
			for i := 0; i < inner; i++ {
				var s float64
				for step := 0; step < dim; step++ {
					j := step
					if reverse {
						j = dim - 1 - step
					}
					at := (o*dim+j)*inner + i
					if exclusive {
						res[at] = s
						s += v[at]
					} else {
						s += v[at]
						res[at] = s
					}
				}
			}
		}
		out := graph.NewTensor(x.DType, x.Shape)
		return one(out), storeFloat64s(out, res)
	}), a.err
}

// topKKey orders float32 TopK candidates as one integer: the value's bits
// mapped to an unsigned order (-0 as +0, every NaN as +NaN above +Inf),
// inverted for the smallest, above the inverted index, so that the larger
// key is the better candidate and equal values favour the lower index: the
// order of topKSelector, compared in one instruction.
func topKKey(v float32, j int, largest bool) uint64 {
	b := math.Float32bits(v)
	switch {
	case v != v:
		b = 0x7fc00000
	case v == 0:
		b = 0
	}
	// Negative values flip every bit, others only the sign: no branch on
	// the sign, which random scores would mispredict.
	b ^= uint32(int32(b)>>31) | 1<<31
	if !largest {
		b = ^b
	}
	return uint64(b)<<32 | uint64(^uint32(j))
}

// topKFloat32 is TopK of float32 x (outer x dim x inner, along dim) by keys:
// a bounded min-heap of the k best (rowHeapTop) where k is small against
// dim, a sort of all keys otherwise; a lane along a middle axis is gathered
// into a row first.
func topKFloat32(x, vals []float32, ids []int64, outer, dim, inner, k int, largest, sorted bool) {
	kp := topKKeys.Get().(*[]uint64)
	defer topKKeys.Put(kp)
	if cap(*kp) < dim+k {
		*kp = make([]uint64, dim+k)
	}
	keys, top := (*kp)[:dim], (*kp)[dim:dim:dim+k]
	var col []float32 // a lane along a middle axis, gathered
	if inner > 1 {
		col = make([]float32, dim)
	}
	for o := 0; o < outer; o++ {
		for i := 0; i < inner; i++ {
			row := col
			if inner == 1 { // the last axis: a contiguous row
				row = x[o*dim : (o+1)*dim]
			} else {
				for j := range col {
					col[j] = x[(o*dim+j)*inner+i]
				}
			}
			top = top[:0]
			switch {
			case k == 0:
			case 4*k < dim: // few to pick: a bounded heap
				top = rowHeapTop(top, row, k, largest)
			default: // a sort of every key
				for j, v := range row {
					keys[j] = topKKey(v, j, largest)
				}
				slices.Sort(keys)
				for r := dim - 1; r >= dim-k; r-- {
					top = append(top, keys[r])
				}
			}
			emitTopK(top, x, vals, ids, o, i, dim, inner, k, sorted)
		}
	}
}

// emitTopK writes the values and indices of the k keys in top (best first)
// for lane i of outer block o, in index order when not sorted.
func emitTopK(top []uint64, x, vals []float32, ids []int64, o, i, dim, inner, k int, sorted bool) {
	if !sorted { // ascending index: descending inverted index
		slices.SortFunc(top, func(a, b uint64) int { return cmp.Compare(uint32(b), uint32(a)) })
	}
	for r, key := range top {
		j := int(^uint32(key))
		vals[(o*k+r)*inner+i] = x[(o*dim+j)*inner+i]
		ids[(o*k+r)*inner+i] = int64(j)
	}
}

// rowHeapTop appends the k best of a row's values to top as keys, best
// first: a min-heap of the best so far, whose root a better key replaces,
// making a value's key only when it can enter the heap: a value worse than the heap's worst (its
// root, decoded back to a float threshold) is passed over with one float
// compare, and on a long row almost every value is.
func rowHeapTop(top []uint64, row []float32, k int, largest bool) []uint64 {
	h := top[:0]
	for j, v := range row[:k] {
		h = append(h, topKKey(v, j, largest))
	}
	down := func(i int) {
		for {
			m, l, r := i, 2*i+1, 2*i+2
			if l < len(h) && h[l] < h[m] {
				m = l
			}
			if r < len(h) && h[r] < h[m] {
				m = r
			}
			if m == i {
				return
			}
			h[i], h[m] = h[m], h[i]
			i = m
		}
	}
	for i := k/2 - 1; i >= 0; i-- {
		down(i)
	}
	thr := topKValue(h[0], largest)
	for j := k; j < len(row); j++ {
		// NaN ranks above every value: it may enter where the largest are
		// kept, and with the smallest a NaN threshold lets every value in.
		// The values that cannot enter are passed over eight at a time.
		switch {
		case largest:
			j = vec.SeekNotBelow(row, j, thr)
		case thr == thr:
			j = vec.SeekAtMost(row, j, thr)
		}
		if j == len(row) {
			break
		}
		v := row[j]
		if key := topKKey(v, j, largest); key > h[0] {
			h[0] = key
			down(0)
			thr = topKValue(h[0], largest)
		}
	}
	slices.Sort(h)
	slices.Reverse(h)
	return h
}

// topKValue is the value a key was made from (-0 as +0, NaN as +NaN).
func topKValue(key uint64, largest bool) float32 {
	b := uint32(key >> 32)
	if !largest {
		b = ^b
	}
	if b&(1<<31) != 0 {
		b &^= 1 << 31
	} else {
		b = ^b
	}
	return math.Float32frombits(b)
}

// topKKeys holds key buffers between runs: a detector's TopK over 25200
// anchors would otherwise allocate 200 KB a run for the collector.
var topKKeys = sync.Pool{New: func() any { return new([]uint64) }}

// noTopKKeys sends float32 TopK through the general selector, for the
// tests that compare.
var noTopKKeys = false

// newTopK returns the k largest (or smallest) values along an axis and their
// indices; ties keep the lower index first.
func newTopK(ni *NodeInfo) (Kernel, error) {
	a := attrsOf(ni.Node)
	axis := a.Int("axis", -1)
	largest := a.Int("largest", 1) != 0
	sorted := a.Int("sorted", 1) != 0
	attrK := a.Int("k", -1)
	return KernelFunc(func(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
		if err := need(in, 1); err != nil {
			return nil, err
		}
		x := in[0]
		k := int(attrK)
		if ni.Opset >= 10 {
			if err := need(in, 2); err != nil {
				return nil, err
			}
			kv, err := ints(in[1])
			if err != nil || len(kv) != 1 {
				return nil, fmt.Errorf("TopK k must be one int64")
			}
			k = kv[0]
		}
		ax, err := normAxis(axis, x.Rank())
		if err != nil {
			return nil, err
		}
		dim := x.Shape[ax]
		if k < 0 || k > dim {
			return nil, fmt.Errorf("k %d is out of range for axis of size %d", k, dim)
		}
		outer, inner := graph.Numel(x.Shape[:ax]), graph.Numel(x.Shape[ax+1:])
		shape := append([]int(nil), x.Shape...)
		shape[ax] = k
		if xf, ok := x.Data().([]float32); ok && dim < 1<<32 && !noTopKKeys {
			vals, idx := ctx.Float32(shape), ctx.Empty(graph.Int64, shape)
			topKFloat32(xf, vals.Float32s(), idx.Int64s(), outer, dim, inner, k, largest, sorted)
			return []*graph.Tensor{vals, idx}, nil
		}
		v, err := asFloat64s(x)
		if err != nil {
			return nil, err
		}
		vals := graph.NewTensor(x.DType, shape)
		idx := graph.NewTensor(graph.Int64, shape)
		res := make([]float64, vals.Len())
		id := idx.Int64s()
		col := make([]float64, dim)
		var sel topKSelector
		for o := 0; o < outer; o++ {
			for i := 0; i < inner; i++ {
				for j := range col {
					col[j] = v[(o*dim+j)*inner+i]
				}
				top := sel.top(col, k, largest)
				if !sorted {
					slices.Sort(top)
				}
				for r, j := range top {
					res[(o*k+r)*inner+i] = col[j]
					id[(o*k+r)*inner+i] = int64(j)
				}
			}
		}
		if err := storeFloat64s(vals, res); err != nil {
			return nil, err
		}
		return []*graph.Tensor{vals, idx}, nil
	}), a.err
}

// topKSelector finds the k best of a row: a bounded heap of the best so far
// (O(n log k)) where k is small against n, a sort of every index otherwise.
// Better is larger (smaller with largest 0), NaN counting as the largest
// value, and of equal values the lower index: the order a stable sort by
// value gives, so ties keep the lower index first.
type topKSelector struct {
	idx  []int
	heap []int // the worst of the best k at heap[0]
}

func (s *topKSelector) top(v []float64, k int, largest bool) []int {
	better := func(a, b int) bool { // a before b
		va, vb := v[a], v[b]
		na, nb := va != va, vb != vb
		switch {
		case na || nb:
			if na && nb {
				return a < b
			}
			return na == largest
		case va != vb:
			return (va > vb) == largest
		}
		return a < b
	}
	cmp := func(a, b int) int {
		switch {
		case better(a, b):
			return -1
		case better(b, a):
			return 1
		}
		return 0
	}
	if k == 0 {
		return s.idx[:0]
	}
	if 4*k >= len(v) {
		s.idx = s.idx[:0]
		for j := range v {
			s.idx = append(s.idx, j)
		}
		slices.SortFunc(s.idx, cmp)
		return s.idx[:k]
	}
	h := append(s.heap[:0], 0)
	// siftDown restores the heap below i: the worst at the root.
	siftDown := func(i int) {
		for {
			w, l, r := i, 2*i+1, 2*i+2
			if l < len(h) && better(h[w], h[l]) {
				w = l
			}
			if r < len(h) && better(h[w], h[r]) {
				w = r
			}
			if w == i {
				return
			}
			h[i], h[w] = h[w], h[i]
			i = w
		}
	}
	for j := 1; j < len(v); j++ {
		if len(h) < k {
			h = append(h, j)
			for c := len(h) - 1; c > 0; { // sift up
				p := (c - 1) / 2
				if !better(h[p], h[c]) {
					break
				}
				h[p], h[c] = h[c], h[p]
				c = p
			}
			continue
		}
		if better(j, h[0]) {
			h[0] = j
			siftDown(0)
		}
	}
	s.heap = h
	slices.SortFunc(h, cmp)
	return h
}

// newDepthSpace is DepthToSpace (DCR or CRD order) or SpaceToDepth on NCHW.
func newDepthSpace(toSpace bool) Factory {
	return func(ni *NodeInfo) (Kernel, error) {
		a := attrsOf(ni.Node)
		bs := int(a.Int("blocksize", 0))
		mode := a.String("mode", "DCR")
		if a.err != nil {
			return nil, a.err
		}
		if bs < 1 {
			return nil, fmt.Errorf("blocksize must be positive")
		}
		if mode != "DCR" && mode != "CRD" {
			return nil, fmt.Errorf("mode %q is not DCR or CRD", mode)
		}
		return KernelFunc(func(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
			if err := need(in, 1); err != nil {
				return nil, err
			}
			x := in[0]
			if x.Rank() != 4 {
				return nil, fmt.Errorf("needs a 4-D input, got %v", x.Shape)
			}
			n, c, h, w := x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]
			var out *graph.Tensor
			// Whole rows at a time: a row of one input channel lands every
			// bs-th element of an output row (DepthToSpace), or every bs-th
			// element of an input row makes an output row (SpaceToDepth).
			if toSpace {
				if c%(bs*bs) != 0 {
					return nil, fmt.Errorf("%d channels do not divide by blocksize^2 %d", c, bs*bs)
				}
				oc := c / (bs * bs)
				out = ctx.Empty(x.DType, []int{n, oc, h * bs, w * bs})
				if out.Len() == 0 {
					return one(out), nil
				}
				cp := copierOf(out, x)
				for b := 0; b < n; b++ {
					for ch := 0; ch < oc; ch++ {
						for y := 0; y < h; y++ {
							for by := 0; by < bs; by++ {
								for bx := 0; bx < bs; bx++ {
									src := (by*bs+bx)*oc + ch // DCR
									if mode == "CRD" {
										src = ch*bs*bs + by*bs + bx
									}
									cp.scatter(((b*oc+ch)*h*bs+y*bs+by)*w*bs+bx, ((b*c+src)*h+y)*w, w, bs)
								}
							}
						}
					}
				}
			} else {
				if h%bs != 0 || w%bs != 0 {
					return nil, fmt.Errorf("spatial size %dx%d does not divide by blocksize %d", h, w, bs)
				}
				oc := c * bs * bs
				oh, ow := h/bs, w/bs
				out = ctx.Empty(x.DType, []int{n, oc, oh, ow})
				if out.Len() == 0 {
					return one(out), nil
				}
				if xf, ok := x.Data().([]float32); ok && bs == 2 {
					spaceToDepth2(xf, out.Float32s(), n, c, h, w)
					return one(out), nil
				}
				cp := copierOf(out, x)
				for b := 0; b < n; b++ {
					for ch := 0; ch < c; ch++ {
						for y := 0; y < h; y++ {
							for bx := 0; bx < bs; bx++ {
								dst := (y%bs*bs+bx)*c + ch
								cp.strided(((b*oc+dst)*oh+y/bs)*ow, ((b*c+ch)*h+y)*w+bx, ow, bs)
							}
						}
					}
				}
			}
			return one(out), nil
		}), nil
	}
}

// spaceToDepth2 is SpaceToDepth with blocksize 2 on float32 (YOLOv5's
// Focus as one op): an input plane's even rows deinterleave into output
// channels ch and c+ch (even and odd columns), its odd rows into 2c+ch and
// 3c+ch, each half one vec.SplitRows call (the block order is DCR's, which
// SpaceToDepth always uses).
func spaceToDepth2(x, o []float32, n, c, h, w int) {
	oh, ow := h/2, w/2
	plane := oh * ow
	for b := 0; b < n; b++ {
		for ch := 0; ch < c; ch++ {
			src := x[(b*c+ch)*h*w : (b*c+ch+1)*h*w]
			for by := 0; by < 2; by++ {
				d0 := (b*4*c + (2*by)*c + ch) * plane
				d1 := (b*4*c + (2*by+1)*c + ch) * plane
				if err := vec.SplitRows(o[d0:d0+plane], o[d1:d1+plane], ow, src[by*w:], 2*w, oh, 2*ow); err != nil {
					panic(err) // the planes hold the rows by construction
				}
			}
		}
	}
}

// newNonZero returns the indices of the nonzero elements, one row per dimension.
func newNonZero(*NodeInfo) (Kernel, error) {
	return KernelFunc(func(_ *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
		if err := need(in, 1); err != nil {
			return nil, err
		}
		x := in[0]
		var nz []bool
		if b, ok := x.Data().([]bool); ok {
			nz = b
		} else {
			v, err := asFloat64s(x)
			if err != nil {
				return nil, err
			}
			nz = make([]bool, len(v))
			for i, f := range v {
				nz[i] = f != 0
			}
		}
		var hits []int
		for i, b := range nz {
			if b {
				hits = append(hits, i)
			}
		}
		r := max(1, x.Rank())
		out := graph.NewTensor(graph.Int64, []int{x.Rank(), len(hits)})
		od := out.Int64s()
		st := stridesOf(x.Shape)
		for j, flat := range hits {
			for d := 0; d < x.Rank() && d < r; d++ {
				od[d*len(hits)+j] = int64(flat / st[d] % x.Shape[d])
			}
		}
		return one(out), nil
	}), nil
}

// newLRN is local response normalization across channels:
//
//	y[c] = x[c] / (bias + alpha/size * sum(x[i]^2 for i in the window of c))^beta
//
// the window running from c - floor((size-1)/2) to c + ceil((size-1)/2),
// cut at the first and last channel. It runs on chunks of pixels (lrnChunk)
// with every channel of the chunk: the squares once, then per channel the
// window's sum, the base, its power (vec.PowScalar, float32 of math.Pow's
// result) and the division, each a vector pass. (It was a scalar loop with
// a float64 math.Pow per element: GoogLeNet's LRN on 1x192x56x56 took 34
// ms, ONNX Runtime's 14.)
func newLRN(ni *NodeInfo) (Kernel, error) {
	a := attrsOf(ni.Node)
	alpha, beta, bias := a.Float("alpha", 1e-4), a.Float("beta", 0.75), a.Float("bias", 1)
	size := int(a.Int("size", 0))
	if a.err != nil {
		return nil, a.err
	}
	if size < 1 {
		return nil, fmt.Errorf("LRN size must be positive")
	}
	return KernelFunc(func(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
		if err := need(in, 1); err != nil {
			return nil, err
		}
		x := in[0]
		if err := wantFloat(x, "LRN input"); err != nil {
			return nil, err
		}
		if x.Rank() < 2 {
			return nil, fmt.Errorf("LRN input must have a channel axis, got shape %v", x.Shape)
		}
		n, c := x.Shape[0], x.Shape[1]
		plane := graph.Numel(x.Shape[2:])
		out := ctx.Empty(graph.Float, x.Shape) // every element is written below
		if out.Len() == 0 {
			return one(out), nil
		}
		l := lrn{c: c, plane: plane, lo: (size - 1) / 2, hi: (size - 1) - (size-1)/2,
			scale: alpha / float32(size), bias: bias, beta: beta}
		xd, od := x.Float32s(), out.Float32s()
		chunks := (plane + lrnChunk - 1) / lrnChunk
		parallelFor(threadsFor(ctx, out.Len(), 1<<14), n*chunks, func(lo, hi int) {
			buf := ctx.Scratch((c + 1) * min(lrnChunk, plane))
			defer ctx.Release(buf)
			for it := lo; it < hi; it++ {
				b, p0 := it/chunks, it%chunks*lrnChunk
				l.chunk(od[b*c*plane:], xd[b*c*plane:], p0, min(plane, p0+lrnChunk), buf)
			}
		})
		return one(out), nil
	}), nil
}

// lrnChunk is the pixels LRN takes at once: its squares of every channel
// (c x lrnChunk floats, 192 KiB for GoogLeNet's 192 channels) stay in L2
// while the windows read them.
const lrnChunk = 256

// lrn is one LRN's geometry and constants: c channels of plane pixels, the
// window lo channels below and hi above, scale = alpha/size.
type lrn struct {
	c, plane, lo, hi  int
	scale, bias, beta float32
}

// chunk computes pixels [p0, p1) of every channel of one image (x and y at
// the image's first element) with buf's c+1 rows of p1-p0 floats.
func (l *lrn) chunk(y, x []float32, p0, p1 int, buf []float32) {
	w := p1 - p0
	sq := func(k int) []float32 { return buf[k*w : (k+1)*w] }
	at := func(t []float32, k int) []float32 { return t[k*l.plane+p0 : k*l.plane+p1] }
	for k := 0; k < l.c; k++ {
		vec.Mul(sq(k), at(x, k), at(x, k))
	}
	acc := buf[l.c*w : (l.c+1)*w]
	for ch := 0; ch < l.c; ch++ {
		k0, k1 := max(0, ch-l.lo), min(l.c-1, ch+l.hi)
		copy(acc, sq(k0))
		for k := k0 + 1; k <= k1; k++ { // in channel order, as the window's sum is written
			vec.Add(acc, acc, sq(k))
		}
		vec.Affine(acc, acc, l.scale, l.bias)
		vec.PowScalar(acc, acc, l.beta)
		vec.Div(at(y, ch), at(x, ch), acc)
	}
}
