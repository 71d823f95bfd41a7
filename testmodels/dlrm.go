package testmodels

import (
	"fmt"
	"math"

	"github.com/onnxq/onnxq/graph"
)

// DLRM is a small deep learning recommendation model (Naumov et al., 2019)
// as PyTorch exports it, for a batch of 8: a bottom MLP (13 -> 64 -> 16,
// ReLU) over the dense features, four embedding tables (1000, 500, 200 and
// 50 rows of 16) each read by Gather with its own int64 ids, the pairwise
// dot products of the five 16-vectors (Concat of Unsqueezes, a batched
// MatMul with its transpose, the 10 pairs below the diagonal picked by a
// Gather of the flattened 5x5 with constant indices), those and the
// bottom MLP's output concatenated, and a top MLP (26 -> 64 -> 32 -> 1)
// with a Sigmoid: a click probability. Inputs "dense" 8x13 (float) and
// "sparse_0" .. "sparse_3" 8 (int64 ids), output "prob" 8x1.
func DLRM(seed uint64) *graph.Model {
	const batch, dense, dim = 8, 13, 16
	rows := []int{1000, 500, 200, 50}
	b := NewBuilder(seed, 17)
	x := b.Input("dense", batch, dense)
	bottom := b.Relu(b.Gemm(b.Relu(b.Gemm(x, 64)), dim))
	vecs := []*graph.Value{b.node("Unsqueeze", []*graph.Value{bottom, b.Int64Const("axes", 1)}, []int{batch, 1, dim})}
	for i, n := range rows {
		ids := b.G.AddInput(fmt.Sprintf("sparse_%d", i), graph.Int64, []int64{batch})
		b.shapes[ids] = []int{batch}
		table := b.Const("embedding", []int{n, dim}, b.Normal(n*dim, 0, 1/math.Sqrt(dim)))
		e := b.node("Gather", []*graph.Value{table, ids}, []int{batch, dim}, graph.AttrIntOf("axis", 0))
		vecs = append(vecs, b.node("Unsqueeze", []*graph.Value{e, b.Int64Const("axes", 1)}, []int{batch, 1, dim}))
	}
	k := len(vecs)
	t := b.Concat(1, vecs...)
	z := b.Reshape(b.MatMul(t, b.Transpose(t, 0, 2, 1)), batch, k*k)
	var pairs []int64
	for i := range k {
		for j := range i {
			pairs = append(pairs, int64(i*k+j))
		}
	}
	idx := b.G.AddInitializer(b.G.UniqueName("pair_index"), graph.Int64Tensor([]int{len(pairs)}, pairs))
	b.shapes[idx] = []int{len(pairs)}
	inter := b.node("Gather", []*graph.Value{z, idx}, []int{batch, len(pairs)}, graph.AttrIntOf("axis", 1))
	top := b.Concat(1, bottom, inter)
	top = b.Relu(b.Gemm(b.Relu(b.Gemm(top, 64)), 32))
	renameOutput(b, b.Sigmoid(b.Gemm(top, 1)), "prob")
	return b.Finish()
}
