package kernels

import (
	"fmt"
	"slices"

	"github.com/onnxq/onnxq/graph"
)

func init() {
	// MaxUnpool-11 changed only the documentation of version 9.
	Register("", "MaxUnpool", 9, newMaxUnpool)
}

// newMaxUnpool scatters each value of X to the flat position its index names
// in a zero tensor of the unpooled shape, (in-1)*stride - pads + kernel along
// each spatial axis: the partial inverse of MaxPool with its Indices output.
// An output_shape input makes the output that shape, which must hold the
// unpooled one: as in the ONNX reference implementation and the spec's
// with_output_shape example, the indices still address the unpooled shape
// (pads included), whose values then sit at the start of every axis of the
// output, the rest zero. (ONNX Runtime instead indexes the output_shape
// tensor directly; the two agree when output_shape is the unpooled shape.)
func newMaxUnpool(ni *NodeInfo) (Kernel, error) {
	a := attrsOf(ni.Node)
	kernel := a.Ints("kernel_shape", nil)
	strides := a.Ints("strides", nil)
	pads := a.Ints("pads", nil)
	if a.err != nil {
		return nil, a.err
	}
	k := len(kernel)
	if k == 0 {
		return nil, fmt.Errorf("MaxUnpool needs kernel_shape")
	}
	if strides == nil {
		strides = slices.Repeat([]int64{1}, k)
	}
	if pads == nil {
		pads = make([]int64, 2*k)
	}
	if len(strides) != k || len(pads) != 2*k {
		return nil, fmt.Errorf("MaxUnpool has %d kernel dims, %d strides and %d pads (want %d, %d)", k, len(strides), len(pads), k, 2*k)
	}
	for d := range kernel {
		if kernel[d] < 1 || strides[d] < 1 || pads[d] < 0 || pads[k+d] < 0 {
			return nil, fmt.Errorf("MaxUnpool kernel_shape %v, strides %v, pads %v: kernel and strides must be positive, pads not negative", kernel, strides, pads)
		}
	}
	return KernelFunc(func(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
		if err := need(in, 2); err != nil {
			return nil, err
		}
		x, idx := in[0], in[1]
		if err := wantFloat(x, "MaxUnpool X"); err != nil {
			return nil, err
		}
		if x.Rank() != k+2 {
			return nil, fmt.Errorf("MaxUnpool X %v must have %d dims for a %d-D kernel", x.Shape, k+2, k)
		}
		if !slices.Equal(idx.Shape, x.Shape) {
			return nil, fmt.Errorf("MaxUnpool indices %v differ in shape from X %v", idx.Shape, x.Shape)
		}
		iv, err := ints(idx)
		if err != nil {
			return nil, fmt.Errorf("MaxUnpool indices: %v", err)
		}
		unpooled := slices.Clone(x.Shape)
		for d := range kernel {
			unpooled[d+2] = (x.Shape[d+2]-1)*int(strides[d]) - int(pads[d]+pads[k+d]) + int(kernel[d])
			if unpooled[d+2] < 0 {
				return nil, fmt.Errorf("MaxUnpool of X %v with kernel_shape %v, strides %v, pads %v has a negative size", x.Shape, kernel, strides, pads)
			}
		}
		shape := unpooled
		if len(in) > 2 && in[2] != nil {
			if shape, err = ints(in[2]); err != nil {
				return nil, fmt.Errorf("MaxUnpool output_shape: %v", err)
			}
			if len(shape) != len(unpooled) {
				return nil, fmt.Errorf("MaxUnpool output_shape %v must have %d dims", shape, len(unpooled))
			}
			for d := range shape {
				if shape[d] < unpooled[d] {
					return nil, fmt.Errorf("MaxUnpool output_shape %v is smaller than the unpooled shape %v", shape, unpooled)
				}
			}
		}
		n := graph.Numel(unpooled)
		for i, j := range iv {
			if j < 0 || j >= n {
				return nil, fmt.Errorf("MaxUnpool index %d at position %d is outside [0, %d) of the unpooled shape %v", j, i, n, unpooled)
			}
		}
		out := ctx.New(graph.Float, shape)
		od, xd := out.Float32s(), x.Float32s()
		// An index of the unpooled shape, mapped to the same coordinates in out.
		at := func(j int) int { return j }
		if !slices.Equal(shape, unpooled) {
			ust, ost := stridesOf(unpooled), stridesOf(shape)
			at = func(j int) int {
				o := 0
				for d := range ust {
					o += j / ust[d] * ost[d]
					j %= ust[d]
				}
				return o
			}
		}
		for i, j := range iv {
			od[at(j)] = xd[i] // a repeated index keeps the last value
		}
		return one(out), nil
	}), nil
}
