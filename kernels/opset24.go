package kernels

import (
	"fmt"
	"slices"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/kernels/vec"
)

// Ops of opset 24 (ONNX 1.19): Swish, and TensorScatter, the KV-cache
// update that Attention-24's in-place cache pairs with.

// swish is x * sigmoid(alpha * x); with alpha 1 it is SiLU's kernel.
func swish(alpha float32) sliceFn {
	if alpha == 1 {
		return vec.Silu
	}
	return func(dst, src []float32) {
		// dst may be src (a fused epilogue): the sigmoid goes through a
		// block of scratch on the stack.
		var buf [256]float32
		for i := 0; i < len(src); i += len(buf) {
			j := min(len(src), i+len(buf))
			b := buf[:j-i]
			vec.MulScalar(b, src[i:j], alpha)
			vec.Sigmoid(b, b)
			vec.Mul(dst[i:j], src[i:j], b)
		}
	}
}

// newTensorScatter is TensorScatter: present = past_cache with update
// written along axis (the sequence axis) from each batch row's write index
// on, wrapping around in circular mode.
func newTensorScatter(ni *NodeInfo) (Kernel, error) {
	a := attrsOf(ni.Node)
	axisAttr := a.Int("axis", -2)
	mode := a.String("mode", "linear")
	if a.err != nil {
		return nil, a.err
	}
	if mode != "linear" && mode != "circular" {
		return nil, fmt.Errorf("TensorScatter mode must be linear or circular, got %q", mode)
	}
	return KernelFunc(func(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
		if err := need(in, 2); err != nil {
			return nil, err
		}
		past, upd := in[0], in[1]
		r := past.Rank()
		axis, err := normAxis(axisAttr, r)
		if err != nil {
			return nil, err
		}
		if axis == 0 {
			return nil, fmt.Errorf("TensorScatter axis cannot be the batch axis 0")
		}
		if upd.DType != past.DType || upd.Rank() != r {
			return nil, fmt.Errorf("update %s%v does not fit past_cache %s%v", upd.DType.Short(), upd.Shape, past.DType.Short(), past.Shape)
		}
		for i := range past.Shape {
			if i != axis && upd.Shape[i] != past.Shape[i] || i == axis && upd.Shape[i] > past.Shape[i] {
				return nil, fmt.Errorf("update of shape %v does not fit past_cache %v along axis %d", upd.Shape, past.Shape, axis)
			}
		}
		batch, maxSeq, seq := past.Shape[0], past.Shape[axis], upd.Shape[axis]
		writes := make([]int64, batch)
		if len(in) > 2 && in[2] != nil {
			w := in[2]
			if w.DType != graph.Int64 || !slices.Equal(w.Shape, []int{batch}) {
				return nil, fmt.Errorf("write_indices is %s%v, want int64 [%d]", w.DType.Short(), w.Shape, batch)
			}
			copy(writes, w.Int64s())
		}
		for b, w := range writes {
			if w < 0 || mode == "linear" && w+int64(seq) > int64(maxSeq) {
				return nil, fmt.Errorf("write index %d of batch row %d does not fit %d updates in a cache of %d (mode %s)", w, b, seq, maxSeq, mode)
			}
		}
		out := ctx.Empty(past.DType, past.Shape) // every element is written below
		c := copierOf(out, past)
		c.run(0, 0, past.Len())
		cu := copierOf(out, upd)
		inner := graph.Numel(past.Shape[axis+1:])
		outer := graph.Numel(past.Shape[:axis]) // batch rows first
		perBatch := outer / max(1, batch)
		for o := 0; o < outer; o++ {
			w := int(writes[o/max(1, perBatch)])
			for s := 0; s < seq; s++ {
				at := (w + s) % maxSeq // linear writes never wrap (checked)
				cu.run((o*maxSeq+at)*inner, (o*seq+s)*inner, inner)
			}
		}
		return one(out), nil
	}), nil
}

func init() {
	unaryFloat("Swish", 24, func(a *attrs, _ *NodeInfo) (sliceFn, error) { return swish(a.Float("alpha", 1)), nil })
	Register("", "TensorScatter", 24, newTensorScatter)
}
