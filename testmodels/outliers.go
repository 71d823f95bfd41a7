package testmodels

import (
	"math"

	"github.com/onnxq/onnxq/graph"
)

func init() { catalog["outlier-block"] = OutlierBlock }

// OutlierChannels are the input channels OutlierBlock plants its activation
// outliers on, and OutlierFactor how much larger those channels are.
var OutlierChannels = []int{5, 23, 41}

// OutlierFactor is the planted outliers' factor over the other channels.
const OutlierFactor = 100

// OutlierBlock is a pre-norm transformer block (Llama style) on a sequence of
// 32 vectors of 64, with the activation outliers LLMs show: the scale of each
// norm is 100x on 3 of the 64 channels (OutlierChannels), so the tensors the
// projections read have 3 channels 100x the rest, and the projections'
// weight rows of those channels are 100x smaller, so the float function is
// an ordinary block. Per-tensor activation quantization of those tensors
// leaves the other 61 channels a few levels; SmoothQuant moves the outliers
// into the weights.
//
//	h = x + o_proj(attention(q, k, v of rmsnorm(x)))   RMSNorm decomposed: Pow/ReduceMean/Add/Sqrt/Div/Mul
//	y = h + down(gelu(up(layernorm(h))))               LayerNormalization (opset 17), Linear with bias
//
// 4 heads of 16, MLP 128. Input "input" 1x32x64, output "output" 1x32x64.
func OutlierBlock(seed uint64) *graph.Model {
	const seq, dim, heads, mlp = 32, 64, 4, 128
	hd := dim / heads
	b := NewBuilder(seed, 17)
	x := b.Input("input", 1, seq, dim)
	plantNorm := func(gamma *graph.Value) {
		for _, c := range OutlierChannels {
			gamma.Const.Float32s()[c] *= OutlierFactor
		}
	}
	// Rows of the weight W [dim, out] that read the outlier channels.
	plantRows := func(mm *graph.Node) {
		w := mm.Input(1).Const
		for _, c := range OutlierChannels {
			row := w.Float32s()[c*w.Shape[1] : (c+1)*w.Shape[1]]
			for i := range row {
				row[i] /= OutlierFactor
			}
		}
	}
	proj := func(v *graph.Value, out int, gain float64) *graph.Value {
		w := b.Const("proj_w", []int{dim, out}, b.Normal(dim*out, 0, gain/math.Sqrt(dim)))
		return b.MatMul(v, w)
	}

	// RMSNorm as llama exporters decompose it.
	keep := []int{1, seq, 1}
	ms := b.node("ReduceMean", []*graph.Value{b.Binary("Pow", x, b.Scalar("two", 2))}, keep, graph.AttrIntsOf("axes", -1), graph.AttrIntOf("keepdims", 1))
	rms := b.Unary("Sqrt", b.Binary("Add", ms, b.Scalar("eps", 1e-5)))
	gamma := b.Const("rms_weight", []int{dim}, b.logNormal(dim, 1, 0.3))
	plantNorm(gamma)
	n1 := b.Binary("Mul", b.Binary("Div", x, rms), gamma)
	q, k, v := proj(n1, dim, 1.5), proj(n1, dim, 1.5), proj(n1, dim, 1)
	for _, p := range []*graph.Value{q, k, v} {
		plantRows(p.Producer)
	}
	split := func(t *graph.Value, perm ...int) *graph.Value {
		return b.Transpose(b.Reshape(t, 1, seq, heads, hd), perm...)
	}
	scores := b.Binary("Div", b.MatMul(split(q, 0, 2, 1, 3), split(k, 0, 2, 3, 1)), b.Scalar("sqrt_dk", float32(math.Sqrt(float64(hd)))))
	ctx := b.MatMul(b.Softmax(scores), split(v, 0, 2, 1, 3))
	o := proj(b.Reshape(b.Transpose(ctx, 0, 2, 1, 3), 1, seq, dim), dim, 1)
	h := b.Add(x, o)

	n2 := b.LayerNorm(h)
	plantNorm(n2.Producer.Input(1))
	up := b.Linear(n2, mlp, 1)
	plantRows(up.Producer.Input(0).Producer)
	y := b.Add(h, b.Linear(b.GeluErf(up), dim, 1))
	renameOutput(b, y, "output")
	return b.Finish()
}
