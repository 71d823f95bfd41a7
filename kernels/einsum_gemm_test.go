package kernels

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/graph/onnxpb"
)

// TestEinsumGEMMMatchesDirect: two-operand Einsums run as batched GEMMs
// (operands in place, read transposed, or permuted; the product permuted
// to the output's order) give the direct evaluation's values to float32
// GEMM accuracy; equations the GEMM path does not take (a diagonal, a
// letter summed within one operand) still run directly.
func TestEinsumGEMMMatchesDirect(t *testing.T) {
	defer func() { noEinsumGEMM = false }()
	r := rand.New(rand.NewPCG(3, 4))
	for _, c := range []struct {
		eq   string
		a, b []int
	}{
		{"bhqd,bhkd->bhqk", []int{1, 3, 7, 5}, []int{1, 3, 9, 5}},
		{"bhqk,bhkd->bhqd", []int{2, 3, 7, 9}, []int{2, 3, 9, 5}},
		{"ij,jk->ik", []int{13, 40}, []int{40, 17}},
		{"ij,kj->ik", []int{13, 40}, []int{17, 40}},
		{"ji,jk->ki", []int{40, 13}, []int{40, 17}},
		{"bnd,nde->bne", []int{4, 3, 6}, []int{3, 6, 5}},
		{"abc,cd->abd", []int{2, 3, 300}, []int{300, 4}},
		{"ij,ij->", []int{5, 6}, []int{5, 6}},
		{"i,j->ij", []int{7}, []int{9}},
		{"ij,j->i", []int{8, 33}, []int{33}},
		{"...ij,...jk->...ik", []int{2, 3, 4, 5}, []int{2, 3, 5, 6}},
		{"ij,jk", []int{3, 0}, []int{0, 4}},
		{"ii,ij->j", []int{4, 4}, []int{4, 3}},
		{"ij,kl->ik", []int{3, 4}, []int{5, 6}},
	} {
		a := graph.Float32Tensor(c.a, randFloats(r, graph.Numel(c.a)))
		b := graph.Float32Tensor(c.b, randFloats(r, graph.Numel(c.b)))
		attrs := []*onnxpb.AttributeProto{graph.AttrStringOf("equation", c.eq)}
		noEinsumGEMM = true
		want := runOp(t, "Einsum", attrs, a, b)[0]
		noEinsumGEMM = false
		got := runOp(t, "Einsum", attrs, a, b)[0]
		if !slices.Equal(want.Shape, got.Shape) {
			t.Fatalf("%s: shape %v, direct %v", c.eq, got.Shape, want.Shape)
		}
		w, g := want.Float32s(), got.Float32s()
		for i := range w {
			if math.Abs(float64(w[i]-g[i])) > 1e-5*(1+math.Abs(float64(w[i]))) {
				t.Fatalf("%s: out[%d] = %v, direct %v", c.eq, i, g[i], w[i])
			}
		}
	}
}
