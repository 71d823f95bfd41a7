package kernels

import (
	"fmt"

	"github.com/onnxq/onnxq/graph"
)

// ---- com.microsoft MatMulIntegerToFloat ----
//
// ONNX Runtime's MatMulInteger with the rescale fused: A and B are 8-bit,
// multiplied in int32 after their zero points are taken off, and
//
//	Y = float(acc) * (a_scale * b_scale[n]) (+ bias[n])
//
// Inputs: A, B, a_scale, b_scale, a_zero_point?, b_zero_point?, bias?.
// ORT takes A's scale and zero point per tensor only (one value), B's per
// tensor or per column; onnxq refuses the same shapes ORT refuses, so a model
// that runs here runs there.

func newMatMulIntegerToFloat(ni *NodeInfo) (Kernel, error) {
	im, err := newIntMatMul(ni, "MatMulIntegerToFloat", 1, 5)
	if err != nil {
		return nil, err
	}
	return KernelFunc(func(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
		at := func(i int) *graph.Tensor {
			if i < len(in) {
				return in[i]
			}
			return nil
		}
		a, b, as, bs, azp, bzp, bias := at(0), at(1), at(2), at(3), at(4), at(5), at(6)
		if a == nil || b == nil || as == nil || bs == nil {
			return nil, fmt.Errorf("MatMulIntegerToFloat: A, B, a_scale and b_scale are required")
		}
		if b.Rank() < 1 {
			return nil, fmt.Errorf("MatMulIntegerToFloat: B is a scalar")
		}
		n := b.Shape[b.Rank()-1]
		if err := wantFloat(as, "MatMulIntegerToFloat a_scale"); err != nil {
			return nil, err
		}
		if err := wantFloat(bs, "MatMulIntegerToFloat b_scale"); err != nil {
			return nil, err
		}
		if as.Len() != 1 {
			return nil, fmt.Errorf("MatMulIntegerToFloat: a_scale has %d values; A is scaled per tensor (one value)", as.Len())
		}
		if azp != nil && azp.Len() != 1 {
			return nil, fmt.Errorf("MatMulIntegerToFloat: a_zero_point has %d values; A is quantized per tensor (one value)", azp.Len())
		}
		scales := bs.Float32s()
		if len(scales) != 1 && len(scales) != n {
			return nil, fmt.Errorf("MatMulIntegerToFloat: %d b_scale values for %d columns", len(scales), n)
		}
		if bzp != nil && bzp.Len() != 1 && bzp.Len() != n {
			return nil, fmt.Errorf("MatMulIntegerToFloat: %d b_zero_point values for %d columns", bzp.Len(), n)
		}
		var bv []float32
		if bias != nil {
			if err := wantFloat(bias, "MatMulIntegerToFloat bias"); err != nil {
				return nil, err
			}
			if bv = bias.Float32s(); len(bv) != n {
				return nil, fmt.Errorf("MatMulIntegerToFloat: bias of %d values for %d columns", len(bv), n)
			}
		}
		acc, err := im.run(ctx, a, azp, b, bzp)
		if err != nil {
			return nil, fmt.Errorf("MatMulIntegerToFloat: %v", err)
		}
		defer recycleTemp(ctx, acc)
		return one(scaleAccumulators(ctx, graph.Elems[int32](acc), acc.Shape, as.Float32s()[0], scales, bv, n)), nil
	}), nil
}

func init() {
	Register("com.microsoft", "MatMulIntegerToFloat", 1, newMatMulIntegerToFloat)
}
