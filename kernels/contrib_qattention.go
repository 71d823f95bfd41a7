package kernels

import (
	"fmt"
	"sync/atomic"

	"github.com/onnxq/onnxq/graph"
)

// ---- com.microsoft QAttention ----
//
// Attention whose input and weights are 8-bit codes, as ONNX Runtime's
// quantize_dynamic writes it for a model its transformer optimizer fused
// (the input from a DynamicQuantizeLinear): inputs input, weight, bias,
// input_scale, weight_scale (one, or one a column), mask_index?,
// input_zero_point?, weight_zero_point? (like weight_scale), past?. The
// projection is the exact integer product of the centred codes, each sum
// times input_scale * weight_scale of its column, plus the bias (ORT's
// quantized GEMM with its scale-and-bias output); the rest is Attention's.

type qAttention struct {
	msAttention
	wc atomic.Pointer[qWeightsCache] // the centred constant weights
}

// qWeightsCache is a constant weight's codes less their zero points, as
// float32, and their largest magnitude.
type qWeightsCache struct {
	w, zp *graph.Tensor
	codes []float32
	max   float32
}

func newQAttention(ni *NodeInfo) (Kernel, error) {
	k := &qAttention{}
	var err error
	if k.heads, k.causal, k.maskFilter, k.scale, err = headAttrs("QAttention", attrsOf(ni.Node)); err != nil {
		return nil, err
	}
	return k, nil
}

func (k *qAttention) Run(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
	const op = "QAttention"
	opt := func(i int) *graph.Tensor {
		if i < len(in) {
			return in[i]
		}
		return nil
	}
	x, w, bias := opt(0), opt(1), opt(2)
	if x == nil || w == nil || bias == nil || opt(3) == nil || opt(4) == nil {
		return nil, fmt.Errorf("%s: input, weight, bias, input_scale and weight_scale are required", op)
	}
	if (x.DType != graph.Uint8 && x.DType != graph.Int8) || x.Rank() != 3 {
		return nil, fmt.Errorf("%s: input is %s%v, want 8-bit (batch, sequence, hidden)", op, x.DType.Short(), x.Shape)
	}
	b, s, d := x.Shape[0], x.Shape[1], x.Shape[2]
	if (w.DType != graph.Uint8 && w.DType != graph.Int8) || w.Rank() != 2 || w.Shape[0] != d {
		return nil, fmt.Errorf("%s: weight is %s%v, want 8-bit [%d, 3 x hidden]", op, w.DType.Short(), w.Shape, d)
	}
	cols := w.Shape[1]
	if _, _, _, err := k.hiddenSizes(op, cols); err != nil {
		return nil, err
	}
	if bias.DType != graph.Float || bias.Len() != cols {
		return nil, fmt.Errorf("%s: bias is %s%v, want %d float32 values", op, bias.DType.Short(), bias.Shape, cols)
	}
	xs, err := qlScale(op, "input_scale", opt(3))
	if err != nil {
		return nil, err
	}
	ws, err := float32sOf(opt(4), "weight_scale")
	if err != nil {
		return nil, err
	}
	if len(ws) != 1 && len(ws) != cols {
		return nil, fmt.Errorf("%s: weight_scale has %d values, want 1 or %d", op, len(ws), cols)
	}
	xz, wz := opt(6), opt(7)
	if xz != nil && (xz.DType != x.DType || xz.Len() != 1) {
		return nil, fmt.Errorf("%s: input_zero_point must be one %s, got %s%v", op, x.DType.Short(), xz.DType.Short(), xz.Shape)
	}
	if wz != nil && (wz.DType != w.DType || (wz.Len() != 1 && wz.Len() != cols)) {
		return nil, fmt.Errorf("%s: weight_zero_point must be 1 or %d %s values, got %s%v", op, cols, w.DType.Short(), wz.DType.Short(), wz.Shape)
	}
	// The codes less their zero points, exact in float32.
	xc := ctx.Scratch(x.Len())
	defer ctx.Release(xc)
	if err := centerInto(xc, x, xz, func(int) int { return 0 }); err != nil {
		return nil, fmt.Errorf("%s: input: %v", op, err)
	}
	wc := k.wc.Load()
	if wc == nil || wc.w != w || wc.zp != wz {
		codes := make([]float32, w.Len())
		if err := centerInto(codes, w, wz, func(i int) int { return i % cols }); err != nil {
			return nil, fmt.Errorf("%s: weight: %v", op, err)
		}
		wc = &qWeightsCache{w: w, zp: wz, codes: codes, max: maxAbs(codes)}
		k.wc.Store(wc)
	}
	acc := make([]int32, b*s*cols)
	intGemm(ctx, b*s, cols, d, intChunkFor(maxAbs(xc), wc.max), xc, wc.codes, nil, acc)
	proj := make([]float32, b*s*cols)
	bv := bias.Float32s()
	for r := range b * s {
		row, sums := proj[r*cols:(r+1)*cols], acc[r*cols:(r+1)*cols]
		for j, v := range sums {
			row[j] = float32(v)*(xs*ws[min(j, len(ws)-1)]) + bv[j]
		}
	}
	return k.attend(ctx, op, proj, b, s, cols, opt(5), opt(8), nil)
}

func init() {
	Register("com.microsoft", "QAttention", 1, newQAttention)
}
