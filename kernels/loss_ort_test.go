//go:build ort

package kernels

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/graph/onnxpb"
	"github.com/onnxq/onnxq/internal/ortref"
	"github.com/onnxq/onnxq/internal/testdata"
)

// TestLossOpsMatchORT: both losses over ranks 2 to 4, each reduction, with
// and without weights and ignore_index, int32 and int64 labels.
func TestLossOpsMatchORT(t *testing.T) {
	labels := func(shape []int, c int, ignore int64, seed uint64) *graph.Tensor {
		v := make([]int64, graph.Numel(shape))
		for i := range v {
			v[i] = int64((uint64(i)*2654435761 + seed) % uint64(c))
			if i%5 == 3 {
				v[i] = ignore
			}
		}
		return i64(shape, v...)
	}
	red := func(r string) *onnxpb.AttributeProto { return graph.AttrStringOf("reduction", r) }
	w := graph.Float32Tensor([]int{4}, []float32{0.5, 1.5, 2, 0.25})
	var cases []opCase
	for _, op := range []string{"NegativeLogLikelihoodLoss", "SoftmaxCrossEntropyLoss"} {
		outs := []string{"loss"}
		if op == "SoftmaxCrossEntropyLoss" {
			outs = []string{"loss", "log_prob"}
		}
		for _, r := range []string{"none", "sum", "mean"} {
			cases = append(cases,
				opCase{name: op + "_NC_" + r, op: op, opset: 13, attrs: []*onnxpb.AttributeProto{red(r)},
					inputs: []opInput{fin(rnd(1, 6, 4)), fin(labels([]int{6}, 4, 0, 1))}, outputs: outs},
				opCase{name: op + "_NCd_weight_ii_" + r, op: op, opset: 13, attrs: []*onnxpb.AttributeProto{red(r), ai("ignore_index", -1)},
					inputs: []opInput{fin(rnd(2, 3, 4, 5)), fin(labels([]int{3, 5}, 4, -1, 2)), fin(w)}, outputs: outs},
				opCase{name: op + "_NCd1d2_ii_" + r, op: op, opset: 12, attrs: []*onnxpb.AttributeProto{red(r), ai("ignore_index", 2)},
					inputs: []opInput{fin(rnd(3, 2, 4, 3, 5)), fin(labels([]int{2, 3, 5}, 4, 2, 3))}, outputs: outs},
			)
		}
		// ignore_index -1 with no weights: the mean is over the counted targets
		cases = append(cases, opCase{name: op + "_negative_ii_mean", op: op, opset: 13, attrs: []*onnxpb.AttributeProto{ai("ignore_index", -1)},
			inputs: []opInput{fin(rnd(6, 10, 4)), fin(labels([]int{10}, 4, -1, 5))}, outputs: outs})
		lbl := labels([]int{4, 2}, 4, 1, 4)
		v32 := make([]int32, lbl.Len())
		for i, x := range lbl.Int64s() {
			v32[i] = int32(x)
		}
		cases = append(cases, opCase{name: op + "_int32_weight_high_ii", op: op, opset: 13, attrs: []*onnxpb.AttributeProto{ai("ignore_index", 10)},
			inputs: []opInput{fin(rnd(5, 4, 4, 2)), fin(i32([]int{4, 2}, v32...)), fin(w)}, outputs: outs})
	}
	lossMatchORT(t, cases, 1e-5)
}

// lossMatchORT is checkOps for the losses: the ORT bridge returns no scalar
// tensors, so a reduced loss goes out through a Reshape to [1].
func lossMatchORT(t *testing.T, cases []opCase, tol float64) {
	t.Helper()
	if err := ortref.Init(testdata.ORTLibrary(t)); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, feeds := c.model()
			g := m.Graph
			if loss := g.Outputs[0]; loss.Name == "loss" && !hasAttrValue(c.attrs, "reduction", "none") {
				shape := g.AddInitializer("shape1", graph.Int64Tensor([]int{1}, []int64{1}))
				r := g.AddNode("Reshape", "flat", []*graph.Value{loss, shape}, []string{"loss1"})
				r.Outputs[0].SetTensorType(graph.Float, nil)
				g.Outputs[0] = r.Outputs[0]
			}
			got, want := runBoth(t, filepath.Join(dir, fmt.Sprintf("loss%d.onnx", i)), m, feeds)
			for name, w := range want {
				d := maxAbsDiff(t, got[name], w)
				t.Logf("%s %s %v: max abs diff %.2e", c.op, name, w.Shape, d)
				if d > tol {
					t.Errorf("%s: %s differs from ONNX Runtime by %.3e > %g", c.name, name, d, tol)
				}
			}
		})
	}
}

func hasAttrValue(as []*onnxpb.AttributeProto, name, v string) bool {
	for _, a := range as {
		if a.GetName() == name {
			return string(a.GetS()) == v
		}
	}
	return false
}

// TestTfIdfVectorizerMatchesORT: the modes over skip-grams of int64 input,
// and weights that belong to pool n-grams under a permuted ngram_indexes.
func TestTfIdfVectorizerMatchesORT(t *testing.T) {
	pool := []int64{2, 3, 5, 4, 5, 6, 7, 8, 6, 7, 1, 2, 3}
	x := i64([]int{2, 9}, 1, 2, 3, 5, 6, 7, 8, 6, 7, 5, 5, 6, 2, 3, 4, 1, 2, 3)
	var cases []opCase
	for _, mode := range []string{"TF", "IDF", "TFIDF"} {
		for _, skip := range []int64{0, 1, 3} {
			attrs := []*onnxpb.AttributeProto{
				graph.AttrStringOf("mode", mode), ai("min_gram_length", 1), ai("max_gram_length", 3), ai("max_skip_count", skip),
				graph.AttrIntsOf("ngram_counts", 0, 4, 10), graph.AttrIntsOf("ngram_indexes", 0, 1, 2, 3, 4, 5, 6, 7),
				graph.AttrIntsOf("pool_int64s", pool...),
			}
			if mode != "TF" {
				attrs = append(attrs, graph.AttrFloatsOf("weights", 0.5, 1, 1.5, 2, 2.5, 3, 3.5, 4))
			}
			cases = append(cases, opCase{name: mode + "_skip" + string(rune('0'+skip)), op: "TfIdfVectorizer", opset: 9,
				attrs: attrs, inputs: []opInput{fin(x)}, outputs: []string{"Y"}})
		}
	}
	// weights[i] is the i-th pool n-gram's, wherever ngram_indexes puts it
	for _, mode := range []string{"IDF", "TFIDF"} {
		cases = append(cases, opCase{name: mode + "_permuted_weights", op: "TfIdfVectorizer", opset: 9,
			attrs: []*onnxpb.AttributeProto{
				graph.AttrStringOf("mode", mode), ai("min_gram_length", 1), ai("max_gram_length", 1), ai("max_skip_count", 0),
				graph.AttrIntsOf("ngram_counts", 0), graph.AttrIntsOf("ngram_indexes", 2, 0, 1),
				graph.AttrIntsOf("pool_int64s", 7, 8, 9), graph.AttrFloatsOf("weights", 0.5, 2, 4),
			}, inputs: []opInput{fin(i64([]int{3}, 7, 7, 8))}, outputs: []string{"Y"}})
	}
	// TF with a permuted ngram_indexes and bigrams only
	cases = append(cases, opCase{name: "TF_permuted_bigrams", op: "TfIdfVectorizer", opset: 9,
		attrs: []*onnxpb.AttributeProto{
			graph.AttrStringOf("mode", "TF"), ai("min_gram_length", 2), ai("max_gram_length", 2), ai("max_skip_count", 2),
			graph.AttrIntsOf("ngram_counts", 0, 4, 10), graph.AttrIntsOf("ngram_indexes", 7, 6, 5, 4, 3, 2, 1, 0),
			graph.AttrIntsOf("pool_int64s", pool...),
		}, inputs: []opInput{fin(x)}, outputs: []string{"Y"}})
	checkOps(t, cases, 0)
}
