package kernels

import (
	"bytes"
	"cmp"
	"fmt"
	"math"
	"slices"

	"github.com/onnxq/onnxq/graph"
)

// Ops that real models use now and then: ReverseSequence, Unique, BitShift,
// Det, and the deprecated Scatter (ScatterElements before opset 11).

func init() {
	Register("", "ReverseSequence", 10, newReverseSequence)
	Register("", "Unique", 11, newUnique)
	Register("", "BitShift", 11, newBitShift)
	Register("", "Det", 11, newDet)
	Register("", "Scatter", 9, newScatter) // the factory refuses opset 11 on, where Scatter is gone
}

// newReverseSequence reverses the first sequence_lens[b] steps along the time
// axis of each batch entry b and copies the rest; the two axes are 0 and 1.
func newReverseSequence(ni *NodeInfo) (Kernel, error) {
	a := attrsOf(ni.Node)
	batchAx, timeAx := a.Int("batch_axis", 1), a.Int("time_axis", 0)
	if a.err != nil {
		return nil, a.err
	}
	if !(batchAx == 0 && timeAx == 1 || batchAx == 1 && timeAx == 0) {
		return nil, fmt.Errorf("ReverseSequence needs batch_axis and time_axis to be 0 and 1 in either order, got %d and %d", batchAx, timeAx)
	}
	return KernelFunc(func(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
		if err := need(in, 2); err != nil {
			return nil, err
		}
		x := in[0]
		if x.Rank() < 2 {
			return nil, fmt.Errorf("ReverseSequence needs an input of rank 2 or more, got shape %v", x.Shape)
		}
		lens, err := ints(in[1])
		if err != nil {
			return nil, fmt.Errorf("ReverseSequence sequence_lens: %v", err)
		}
		batch, steps := x.Shape[batchAx], x.Shape[timeAx]
		if in[1].Rank() != 1 || len(lens) != batch {
			return nil, fmt.Errorf("ReverseSequence sequence_lens has shape %v, want [%d] (the batch axis of %v)", in[1].Shape, batch, x.Shape)
		}
		inner := graph.Numel(x.Shape[2:])
		bs, ts := x.Shape[1]*inner, inner // strides of axes 0 and 1
		if batchAx == 1 {
			bs, ts = ts, bs
		}
		out := ctx.Empty(x.DType, x.Shape)
		c := copierOf(out, x)
		for b, n := range lens {
			if n < 0 || n > steps {
				return nil, fmt.Errorf("ReverseSequence sequence_lens[%d] = %d is outside [0, %d]", b, n, steps)
			}
			for t := range steps {
				src := t
				if t < n {
					src = n - 1 - t
				}
				c.run(b*bs+t*ts, b*bs+src*ts, inner)
			}
		}
		return one(out), nil
	}), nil
}

// newUnique finds the unique elements (or, with axis, the unique slices along
// it) of X: Y, the index of each one's first occurrence, the inverse indices
// that rebuild X from Y, and the counts. Sorted, Y is in ascending
// (lexicographic for slices) order; unsorted, in order of first occurrence.
func newUnique(ni *NodeInfo) (Kernel, error) {
	a := attrsOf(ni.Node)
	hasAxis := ni.Node.HasAttr("axis")
	axis := a.Int("axis", 0)
	sorted := a.Int("sorted", 1)
	if a.err != nil {
		return nil, a.err
	}
	if sorted != 0 && sorted != 1 {
		return nil, fmt.Errorf("Unique sorted must be 0 or 1, got %d", sorted)
	}
	nOut := len(ni.Node.Outputs)
	return KernelFunc(func(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
		if err := need(in, 1); err != nil {
			return nil, err
		}
		src, ax := view(in[0], []int{in[0].Len()}), 0 // no axis: the flattened input
		if hasAxis {
			var err error
			if ax, err = normAxis(axis, in[0].Rank()); err != nil {
				return nil, fmt.Errorf("Unique: %v", err)
			}
			src = in[0]
		}
		outer, dim, inner := graph.Numel(src.Shape[:ax]), src.Shape[ax], graph.Numel(src.Shape[ax+1:])
		compare, err := sliceCompare(src, outer, dim, inner)
		if err != nil {
			return nil, err
		}
		// A stable sort keeps equal slices in input order, so each group
		// starts at its first occurrence.
		order := make([]int, dim)
		for i := range order {
			order[i] = i
		}
		slices.SortStableFunc(order, compare)
		var first, count []int
		inverse := make([]int, dim)
		for i, s := range order {
			if i == 0 || compare(order[i-1], s) != 0 {
				first, count = append(first, s), append(count, 0)
			}
			count[len(first)-1]++
			inverse[s] = len(first) - 1
		}
		if sorted == 0 { // renumber the groups by first occurrence
			byFirst := make([]int, len(first)) // group ids in order of first occurrence
			for g := range byFirst {
				byFirst[g] = g
			}
			slices.SortFunc(byFirst, func(g, h int) int { return first[g] - first[h] })
			pos := make([]int, len(first))
			f, n := make([]int, len(first)), make([]int, len(first))
			for p, g := range byFirst {
				pos[g], f[p], n[p] = p, first[g], count[g]
			}
			first, count = f, n
			for i, g := range inverse {
				inverse[i] = pos[g]
			}
		}
		u := len(first)
		shape := slices.Clone(src.Shape)
		shape[ax] = u
		y := ctx.Empty(src.DType, shape)
		c := copierOf(y, src)
		for o := range outer {
			for j, f := range first {
				c.run((o*u+j)*inner, (o*dim+f)*inner, inner)
			}
		}
		outs := []*graph.Tensor{y, int64Vector(first), int64Vector(inverse), int64Vector(count)}
		return outs[:min(nOut, len(outs))], nil
	}), nil
}

func int64Vector(v []int) *graph.Tensor {
	d := make([]int64, len(v))
	for i, x := range v {
		d[i] = int64(x)
	}
	return graph.Int64Tensor([]int{len(d)}, d)
}

// sliceCompare orders slices a and b along the middle axis of t viewed as
// (outer, dim, inner), lexicographically in row-major order, as numpy's unique
// with an axis does.
func sliceCompare(t *graph.Tensor, outer, dim, inner int) (func(a, b int) int, error) {
	switch d := t.Data().(type) {
	case []float32:
		return rowCompare(d, outer, dim, inner, cmpFloat[float32]), nil
	case []float64:
		return rowCompare(d, outer, dim, inner, cmpFloat[float64]), nil
	case []graph.Float16Bits, []graph.BFloat16Bits:
		f, err := t.AsFloat32()
		if err != nil {
			return nil, err
		}
		return rowCompare(f, outer, dim, inner, cmpFloat[float32]), nil
	case []int8:
		return rowCompare(d, outer, dim, inner, cmp.Compare[int8]), nil
	case []int16:
		return rowCompare(d, outer, dim, inner, cmp.Compare[int16]), nil
	case []int32:
		return rowCompare(d, outer, dim, inner, cmp.Compare[int32]), nil
	case []int64:
		return rowCompare(d, outer, dim, inner, cmp.Compare[int64]), nil
	case []uint8:
		return rowCompare(d, outer, dim, inner, cmp.Compare[uint8]), nil
	case []uint16:
		return rowCompare(d, outer, dim, inner, cmp.Compare[uint16]), nil
	case []uint32:
		return rowCompare(d, outer, dim, inner, cmp.Compare[uint32]), nil
	case []uint64:
		return rowCompare(d, outer, dim, inner, cmp.Compare[uint64]), nil
	case []bool:
		return rowCompare(d, outer, dim, inner, func(a, b bool) int {
			switch {
			case a == b:
				return 0
			case b:
				return -1
			}
			return 1
		}), nil
	case [][]byte:
		return rowCompare(d, outer, dim, inner, bytes.Compare), nil
	}
	return nil, fmt.Errorf("Unique on %s is not supported", t.DType.Short())
}

func rowCompare[T any](x []T, outer, dim, inner int, c func(a, b T) int) func(a, b int) int {
	return func(a, b int) int {
		for o := range outer {
			pa, pb := (o*dim+a)*inner, (o*dim+b)*inner
			for i := range inner {
				if r := c(x[pa+i], x[pb+i]); r != 0 {
					return r
				}
			}
		}
		return 0
	}
}

// cmpFloat orders floats as numpy's sort: NaN after everything, equal to NaN;
// -0 equals 0.
func cmpFloat[T float32 | float64](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	case a == b:
		return 0
	}
	an, bn := a != a, b != b
	switch {
	case an && bn:
		return 0
	case an:
		return 1
	}
	return -1
}

// newBitShift shifts unsigned integers left or right with broadcasting; a
// shift by the bit width or more gives 0.
func newBitShift(ni *NodeInfo) (Kernel, error) {
	a := attrsOf(ni.Node)
	dir := a.String("direction", "")
	if a.err != nil {
		return nil, a.err
	}
	if dir != "LEFT" && dir != "RIGHT" {
		return nil, fmt.Errorf("BitShift direction must be \"LEFT\" or \"RIGHT\", got %q", dir)
	}
	left := dir == "LEFT"
	return KernelFunc(func(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
		if err := need(in, 2); err != nil {
			return nil, err
		}
		x, y := in[0], in[1]
		if x.DType != y.DType {
			return nil, fmt.Errorf("BitShift inputs differ in type: %s and %s", x.DType.Short(), y.DType.Short())
		}
		os, err := broadcastShape(x.Shape, y.Shape)
		if err != nil {
			return nil, fmt.Errorf("BitShift: %v", err)
		}
		switch x.DType {
		case graph.Uint8:
			return one(arith(ctx, x, y, os, shift[uint8](left))), nil
		case graph.Uint16:
			return one(arith(ctx, x, y, os, shift[uint16](left))), nil
		case graph.Uint32:
			return one(arith(ctx, x, y, os, shift[uint32](left))), nil
		case graph.Uint64:
			return one(arith(ctx, x, y, os, shift[uint64](left))), nil
		}
		return nil, fmt.Errorf("BitShift needs unsigned integers, got %s", x.DType.Short())
	}), nil
}

func shift[T uint8 | uint16 | uint32 | uint64](left bool) func(x, y T) T {
	if left {
		return func(x, y T) T { return x << y } // Go: 0 once y reaches the width
	}
	return func(x, y T) T { return x >> y }
}

// newDet computes the determinants of the square matrices in the last two
// axes by LU decomposition with partial pivoting in float64.
func newDet(*NodeInfo) (Kernel, error) {
	return KernelFunc(func(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
		if err := need(in, 1); err != nil {
			return nil, err
		}
		x := in[0]
		r := x.Rank()
		if r < 2 || x.Shape[r-1] != x.Shape[r-2] {
			return nil, fmt.Errorf("Det needs square matrices in the last two axes [..., M, M], got shape %v", x.Shape)
		}
		if !x.DType.IsFloat() {
			return nil, fmt.Errorf("Det needs a float input, got %s", x.DType.Short())
		}
		v, err := asFloat64s(x)
		if err != nil {
			return nil, err
		}
		m := x.Shape[r-1]
		res := make([]float64, graph.Numel(x.Shape[:r-2]))
		lu := make([]float64, m*m)
		for b := range res {
			copy(lu, v[b*m*m:(b+1)*m*m])
			res[b] = luDet(lu, m)
		}
		out := ctx.New(x.DType, x.Shape[:r-2])
		return one(out), storeFloat64s(out, res)
	}), nil
}

// luDet is the determinant of the m x m matrix a (overwritten): the product of
// the pivots of its LU decomposition, negated for each row swap.
func luDet(a []float64, m int) float64 {
	det := 1.0 // also the determinant of a 0 x 0 matrix
	for k := range m {
		p := k // the largest pivot keeps the elimination stable
		for i := k + 1; i < m; i++ {
			if math.Abs(a[i*m+k]) > math.Abs(a[p*m+k]) {
				p = i
			}
		}
		piv := a[p*m+k]
		if piv == 0 {
			return 0 // singular
		}
		if p != k {
			for j := k; j < m; j++ {
				a[k*m+j], a[p*m+j] = a[p*m+j], a[k*m+j]
			}
			det = -det
		}
		det *= piv
		for i := k + 1; i < m; i++ {
			if f := a[i*m+k] / piv; f != 0 {
				for j := k + 1; j < m; j++ {
					a[i*m+j] -= f * a[k*m+j]
				}
			}
		}
	}
	return det
}

// newScatter is Scatter (opsets 9 and 10): a copy of data where
// updates[i...] is written at indices[i...] along axis (ScatterElements
// without reduction), for data of any type.
func newScatter(ni *NodeInfo) (Kernel, error) {
	if ni.Opset >= 11 {
		return nil, fmt.Errorf("Scatter was removed in opset 11 (the model imports %d): use ScatterElements", ni.Opset)
	}
	a := attrsOf(ni.Node)
	axis := a.Int("axis", 0)
	if a.err != nil {
		return nil, a.err
	}
	return KernelFunc(func(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
		if err := need(in, 3); err != nil {
			return nil, err
		}
		x, it, upd := in[0], in[1], in[2]
		ax, err := normAxis(axis, x.Rank())
		if err != nil {
			return nil, fmt.Errorf("Scatter: %v", err)
		}
		if upd.DType != x.DType {
			return nil, fmt.Errorf("Scatter updates are %s, data %s", upd.DType.Short(), x.DType.Short())
		}
		if it.Rank() != x.Rank() || !slices.Equal(it.Shape, upd.Shape) {
			return nil, fmt.Errorf("Scatter indices %v and updates %v must have one shape of data's rank (data %v)", it.Shape, upd.Shape, x.Shape)
		}
		for d, n := range it.Shape {
			if d != ax && n > x.Shape[d] {
				return nil, fmt.Errorf("Scatter indices %v exceed data %v along axis %d", it.Shape, x.Shape, d)
			}
		}
		idx, err := ints(it)
		if err != nil {
			return nil, fmt.Errorf("Scatter indices: %v", err)
		}
		out := ctx.Empty(x.DType, x.Shape)
		copierOf(out, x).run(0, 0, x.Len())
		c := copierOf(out, upd)
		xs, is := stridesOf(x.Shape), stridesOf(it.Shape)
		for e, v := range idx {
			i, err := fixIndex(v, x.Shape[ax])
			if err != nil {
				return nil, fmt.Errorf("Scatter: %v", err)
			}
			off := offsetAlong(e, ax, i, is, xs)
			c.run(off, e, 1)
		}
		return one(out), nil
	}), nil
}
