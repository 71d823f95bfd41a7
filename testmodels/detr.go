package testmodels

import (
	"math"

	"github.com/onnxq/onnxq/graph"
)

// DETR is a small DETR-style set-prediction detector (Carion et al., 2020)
// as PyTorch exports it: a CNN backbone (3x3 convolutions with BN and
// ReLU, stride 16 in all, one residual block) to an 8x8 map, a 1x1
// projection to 64 channels flattened to 64 tokens, a fixed 2-D sine
// position encoding added to the queries and keys of every attention, two
// post-norm encoder layers (self-attention, ReLU FFN), and two decoder
// layers over 16 learned object queries: self-attention among the queries,
// then cross-attention whose keys and values come from the encoder's
// memory (64 tokens against 16 queries), then the FFN. Two heads read the
// decoder's output: class logits (10 classes and "no object") and boxes
// (a 3-layer MLP, Sigmoid to normalized cx, cy, w, h). Input "images"
// 1x3x128x128, outputs "logits" 1x16x11 and "boxes" 1x16x4.
func DETR(seed uint64) *graph.Model {
	const dim, heads, ffn, queries, classes = 64, 4, 128, 16, 10
	const hd = dim / heads
	b := NewBuilder(seed, 17)
	x := b.Input("images", 1, 3, 128, 128)
	cbr := func(x *graph.Value, c, stride int) *graph.Value {
		return b.Relu(b.BatchNorm(b.Conv(x, c, 3, ConvOpts{Pad: 1, Stride: stride, NoBias: true})))
	}
	x = cbr(cbr(x, 16, 2), 32, 2)
	x = cbr(x, 64, 2)
	x = b.Relu(b.Add(x, b.BatchNorm(b.Conv(cbr(x, 64, 1), 64, 3, ConvOpts{Pad: 1, NoBias: true}))))
	x = cbr(x, 128, 2)
	s := b.Shape(x)
	hw := s[2] * s[3]
	mem := b.Transpose(b.Reshape(b.Conv(x, dim, 1, ConvOpts{}), 1, dim, hw), 0, 2, 1)
	pos := b.Const("pos_embed", []int{1, hw, dim}, sinePositions(s[2], s[3], dim))
	attention := func(q, k, v *graph.Value) *graph.Value {
		split := func(t *graph.Value, perm ...int) *graph.Value {
			n := b.Shape(t)[1]
			return b.Transpose(b.Reshape(t, 1, n, heads, hd), perm...)
		}
		nq := b.Shape(q)[1]
		qp, kp, vp := b.Linear(q, dim, 1), b.Linear(k, dim, 1), b.Linear(v, dim, 1)
		sc := b.Binary("Mul", b.MatMul(split(qp, 0, 2, 1, 3), split(kp, 0, 2, 3, 1)), b.Scalar("attn_scale", float32(1/math.Sqrt(hd))))
		a := b.MatMul(b.Softmax(sc), split(vp, 0, 2, 1, 3))
		return b.Linear(b.Reshape(b.Transpose(a, 0, 2, 1, 3), 1, nq, dim), dim, 1)
	}
	ffnBlock := func(t *graph.Value) *graph.Value {
		return b.LayerNorm(b.Add(t, b.Linear(b.Relu(b.Linear(t, ffn, 1)), dim, 1)))
	}
	for range 2 {
		qk := b.Add(mem, pos)
		mem = ffnBlock(b.LayerNorm(b.Add(mem, attention(qk, qk, mem))))
	}
	qpos := b.Const("query_embed", []int{1, queries, dim}, b.Normal(queries*dim, 0, 1))
	// DETR's first decoder layer starts from zeros: its self-attention
	// sees the query embeddings alone.
	tgt := b.Const("tgt", []int{1, queries, dim}, make([]float32, queries*dim))
	memK := b.Add(mem, pos)
	for range 2 {
		q := b.Add(tgt, qpos)
		tgt = b.LayerNorm(b.Add(tgt, attention(q, q, tgt)))
		tgt = b.LayerNorm(b.Add(tgt, attention(b.Add(tgt, qpos), memK, mem)))
		tgt = ffnBlock(tgt)
	}
	logits := b.Linear(tgt, classes+1, 1)
	box := b.Relu(b.Linear(b.Relu(b.Linear(tgt, dim, 1)), dim, 1))
	boxes := b.Sigmoid(b.Linear(box, 4, 1))
	renameOutput(b, logits, "logits")
	renameOutput(b, boxes, "boxes")
	return b.Finish()
}

// sinePositions is DETR's fixed 2-D position encoding of an h x w map in
// dim channels, token-major: half the channels encode the row, half the
// column, each as sines and cosines of the normalized coordinate times
// 2*pi over geometric frequencies (temperature 10000).
func sinePositions(h, w, dim int) []float32 {
	half := dim / 2
	out := make([]float32, h*w*dim)
	for y := range h {
		for x := range w {
			t := out[(y*w+x)*dim:]
			for i := 0; i < half; i += 2 {
				f := math.Pow(10000, float64(i)/float64(half))
				ry := 2 * math.Pi * float64(y+1) / float64(h) / f
				rx := 2 * math.Pi * float64(x+1) / float64(w) / f
				t[i], t[i+1] = float32(math.Sin(ry)), float32(math.Cos(ry))
				t[half+i], t[half+i+1] = float32(math.Sin(rx)), float32(math.Cos(rx))
			}
		}
	}
	return out
}
