package kernels

import (
	"fmt"

	"github.com/onnxq/onnxq/graph"
)

// ---- com.microsoft DynamicQuantizeMatMul ----
//
// ONNX Runtime's dynamic W8A8 MatMul in one node: A (float) is quantized at
// run time to uint8 per tensor exactly as DynamicQuantizeLinear does, multiplied
// in int32 with the 8-bit B (zero point per tensor or per column), and
// rescaled: Y = float(acc) * (a_scale * b_scale[n]) (+ bias[n]). This is the
// arithmetic of DynamicQuantizeLinear -> MatMulInteger -> Cast -> Mul, so both
// forms onnxq writes compute the same values.

func newDynamicQuantizeMatMul(ni *NodeInfo) (Kernel, error) {
	quant, _ := newDynamicQuantizeLinear(nil)
	im, err := newIntMatMul(ni, "DynamicQuantizeMatMul", 1, 3)
	if err != nil {
		return nil, err
	}
	return KernelFunc(func(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
		if len(in) < 3 || in[0] == nil || in[1] == nil || in[2] == nil {
			return nil, fmt.Errorf("DynamicQuantizeMatMul: A, B and b_scale are required")
		}
		b, bs := in[1], in[2]
		var bzp, bias *graph.Tensor
		if len(in) > 3 {
			bzp = in[3]
		}
		if len(in) > 4 {
			bias = in[4]
		}
		if b.Rank() != 2 {
			return nil, fmt.Errorf("DynamicQuantizeMatMul: B is %v, want 2-D [K, N]", b.Shape)
		}
		n := b.Shape[1]
		if err := wantFloat(bs, "DynamicQuantizeMatMul b_scale"); err != nil {
			return nil, err
		}
		scales := bs.Float32s()
		if len(scales) != 1 && len(scales) != n {
			return nil, fmt.Errorf("DynamicQuantizeMatMul: %d scales for %d columns", len(scales), n)
		}
		if bzp != nil && bzp.Len() != 1 && bzp.Len() != n {
			return nil, fmt.Errorf("DynamicQuantizeMatMul: %d zero points for %d columns", bzp.Len(), n)
		}
		var bv []float32
		if bias != nil {
			if err := wantFloat(bias, "DynamicQuantizeMatMul bias"); err != nil {
				return nil, err
			}
			if bv = bias.Float32s(); len(bv) != n {
				return nil, fmt.Errorf("DynamicQuantizeMatMul: bias of %d values for %d columns", len(bv), n)
			}
		}
		aq, err := quant.Run(ctx, in[:1])
		if err != nil {
			return nil, fmt.Errorf("DynamicQuantizeMatMul: %v", err)
		}
		acc, err := im.run(ctx, aq[0], aq[2], b, bzp)
		recycleTemp(ctx, aq[0])
		if err != nil {
			return nil, fmt.Errorf("DynamicQuantizeMatMul: %v", err)
		}
		defer recycleTemp(ctx, acc)
		return one(scaleAccumulators(ctx, graph.Elems[int32](acc), acc.Shape, aq[1].Float32s()[0], scales, bv, n)), nil
	}), nil
}

func init() {
	Register("com.microsoft", "DynamicQuantizeMatMul", 1, newDynamicQuantizeMatMul)
}
