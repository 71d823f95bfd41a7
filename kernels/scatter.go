package kernels

import (
	"fmt"
	"math"

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

func newGatherND(ni *NodeInfo) (Kernel, error) {
	a := attrsOf(ni.Node)
	batch := int(a.Int("batch_dims", 0))
	return KernelFunc(func(_ *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
		if err := need(in, 2); err != nil {
			return nil, err
		}
		x, it := in[0], in[1]
		idx, err := ints(it)
		if err != nil {
			return nil, err
		}
		q := it.Rank()
		if q < 1 {
			return nil, fmt.Errorf("indices need rank >= 1")
		}
		last := it.Shape[q-1]
		if batch+last > x.Rank() {
			return nil, fmt.Errorf("indices of depth %d do not fit data %v with %d batch dims", last, x.Shape, batch)
		}
		// Output: indices.shape[:-1] + data.shape[batch+last:].
		shape := append(append([]int(nil), it.Shape[:q-1]...), x.Shape[batch+last:]...)
		out := graph.NewTensor(x.DType, shape)
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
				tuple := idx[(b*per+t)*last : (b*per+t+1)*last]
				off := boff
				for k, v := range tuple {
					i, err := fixIndex(v, x.Shape[batch+k])
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

// reducer combines an existing value with an update (ScatterND/ScatterElements
// reduction attribute).
func reducer(name string) (func(old, upd float64) float64, error) {
	switch name {
	case "none":
		return nil, nil
	case "add":
		return func(o, u float64) float64 { return o + u }, nil
	case "mul":
		return func(o, u float64) float64 { return o * u }, nil
	case "max":
		return math.Max, nil
	case "min":
		return math.Min, nil
	}
	return nil, fmt.Errorf("unknown reduction %q", name)
}

func newScatterND(ni *NodeInfo) (Kernel, error) {
	a := attrsOf(ni.Node)
	red, err := reducer(a.String("reduction", "none"))
	if err != nil {
		return nil, err
	}
	return KernelFunc(func(_ *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
		if err := need(in, 3); err != nil {
			return nil, err
		}
		x, it, upd := in[0], in[1], in[2]
		idx, err := ints(it)
		if err != nil {
			return nil, err
		}
		last := it.Shape[it.Rank()-1]
		slice := graph.Numel(x.Shape[last:])
		xs := stridesOf(x.Shape)
		vals, err := asFloat64s(x)
		if err != nil {
			return nil, err
		}
		uv, err := asFloat64s(upd)
		if err != nil {
			return nil, err
		}
		n := len(idx) / max(1, last)
		if len(uv) != n*slice {
			return nil, fmt.Errorf("updates have %d values, want %d", len(uv), n*slice)
		}
		for t := 0; t < n; t++ {
			off := 0
			for k, v := range idx[t*last : (t+1)*last] {
				i, err := fixIndex(v, x.Shape[k])
				if err != nil {
					return nil, err
				}
				off += i * xs[k]
			}
			for j := 0; j < slice; j++ {
				if red == nil {
					vals[off+j] = uv[t*slice+j]
				} else {
					vals[off+j] = red(vals[off+j], uv[t*slice+j])
				}
			}
		}
		out := graph.NewTensor(x.DType, x.Shape)
		return one(out), storeFloat64s(out, vals)
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
	red, err := reducer(a.String("reduction", "none"))
	if err != nil {
		return nil, err
	}
	return KernelFunc(func(_ *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
		if err := need(in, 3); err != nil {
			return nil, err
		}
		x, it, upd := in[0], in[1], in[2]
		ax, err := normAxis(axis, x.Rank())
		if err != nil {
			return nil, err
		}
		idx, err := ints(it)
		if err != nil {
			return nil, err
		}
		vals, err := asFloat64s(x)
		if err != nil {
			return nil, err
		}
		uv, err := asFloat64s(upd)
		if err != nil {
			return nil, err
		}
		if it.Rank() != x.Rank() || len(uv) != len(idx) {
			return nil, fmt.Errorf("indices %v and updates %v must match in shape and rank with data", it.Shape, upd.Shape)
		}
		xs, is := stridesOf(x.Shape), stridesOf(it.Shape)
		for e, v := range idx {
			i, err := fixIndex(v, x.Shape[ax])
			if err != nil {
				return nil, err
			}
			off := offsetAlong(e, ax, i, is, xs)
			if red == nil {
				vals[off] = uv[e]
			} else {
				vals[off] = red(vals[off], uv[e])
			}
		}
		out := graph.NewTensor(x.DType, x.Shape)
		return one(out), storeFloat64s(out, vals)
	}), a.err
}

func newOneHot(ni *NodeInfo) (Kernel, error) {
	a := attrsOf(ni.Node)
	axis := a.Int("axis", -1)
	return KernelFunc(func(_ *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
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
		onOff, err := asFloat64s(in[2])
		if err != nil || len(onOff) != 2 {
			return nil, fmt.Errorf("values must hold [off, on]")
		}
		r := in[0].Rank() + 1
		ax, err := normAxis(axis, r)
		if err != nil {
			return nil, err
		}
		shape := append(append(append([]int(nil), in[0].Shape[:ax]...), depth), in[0].Shape[ax:]...)
		res := make([]float64, graph.Numel(shape))
		for i := range res {
			res[i] = onOff[0]
		}
		outer, inner := graph.Numel(in[0].Shape[:ax]), graph.Numel(in[0].Shape[ax:])
		for o := 0; o < outer; o++ {
			for i := 0; i < inner; i++ {
				v := int(idx[o*inner+i])
				if v < 0 {
					v += depth
				}
				if v >= 0 && v < depth {
					res[(o*depth+v)*inner+i] = onOff[1]
				}
			}
		}
		out := graph.NewTensor(in[2].DType, shape)
		return one(out), storeFloat64s(out, res)
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
	return KernelFunc(func(_ *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
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
		out := graph.NewTensor(x.DType, shape)
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
	return KernelFunc(func(_ *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
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
		offs := make([]int, x.Len())
		bcastIter(x.Shape, [][]int{stridesOf(x.Shape), ks}, func(o []int, cnt int, inner []int) {
			for j := 0; j < cnt; j++ {
				k := o[1] + j*inner[1]
				v := float64(xd[o[0]+j])
				sum[k] += v
				sq[k] += v * v
				offs[o[0]+j] = k
			}
		})
		out := graph.NewTensor(graph.Float, x.Shape)
		od := out.Float32s()
		for i, v := range xd {
			k := offs[i]
			mean := sum[k] / n
			variance := sq[k]/n - mean*mean
			od[i] = float32((float64(v) - mean) / (math.Sqrt(math.Max(variance, 0)) + 1e-9))
		}
		return one(out), nil
	}), a.err
}
