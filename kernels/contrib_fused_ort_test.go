//go:build ort

package kernels

import (
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/graph/onnxpb"
)

// TestFusedContribOpsMatchORT checks FusedConv, FusedGemm and FusedMatMul
// against ONNX Runtime's own kernels for them.
func TestFusedContribOpsMatchORT(t *testing.T) {
	ms := "com.microsoft"
	act := func(name string, params ...float32) []*onnxpb.AttributeProto {
		out := []*onnxpb.AttributeProto{graph.AttrStringOf("activation", name)}
		if params != nil {
			out = append(out, graph.AttrFloatsOf("activation_params", params...))
		}
		return out
	}
	pads := graph.AttrIntsOf("pads", 1, 1, 1, 1)
	x, w, b := rnd(1, 1, 8, 9, 10), rnd(2, 16, 8, 3, 3), rnd(3, 16)
	var cases []opCase
	for _, a := range [][]*onnxpb.AttributeProto{act("Relu"), act("LeakyRelu", 0.1), act("Clip", -0.5, 1.5), act("HardSigmoid", 0.3, 0.4), act("Tanh"), act("Sigmoid")} {
		name := string(a[0].GetS())
		cases = append(cases, opCase{name: "FusedConv " + name, domain: ms, op: "FusedConv", attrs: append(a, pads), inputs: []opInput{fin(x), kin(w), kin(b)}, outputs: []string{"y"}})
	}
	gemmIn := []opInput{fin(rnd(4, 5, 12)), kin(rnd(5, 7, 12)), kin(rnd(6, 7))}
	gemm := []*onnxpb.AttributeProto{ai("transB", 1), af("alpha", 0.5), af("beta", 2)}
	for _, a := range [][]*onnxpb.AttributeProto{act("Relu"), act("Tanh"), act("Sigmoid"),
		append(act("LeakyRelu"), af("activation_alpha", 0.2)), append(act("HardSigmoid"), af("activation_alpha", 0.3), af("activation_beta", 0.6))} {
		cases = append(cases, opCase{name: "FusedGemm " + string(a[0].GetS()), domain: ms, op: "FusedGemm", attrs: append(a, gemm...), inputs: gemmIn, outputs: []string{"y"}})
	}
	cases = append(cases,
		opCase{name: "FusedConv Z", domain: ms, op: "FusedConv", attrs: append(act("Relu"), pads), inputs: []opInput{fin(x), kin(w), kin(b), fin(rnd(7, 1, 16, 9, 10))}, outputs: []string{"y"}},
		opCase{name: "FusedConv no activation", domain: ms, op: "FusedConv", attrs: []*onnxpb.AttributeProto{pads}, inputs: []opInput{fin(x), fin(w)}, outputs: []string{"y"}})
	for _, tr := range [][2]int64{{0, 0}, {1, 0}, {0, 1}, {1, 1}} {
		attrs := []*onnxpb.AttributeProto{ai("transA", tr[0]), ai("transB", tr[1]), af("alpha", 0.25)}
		as, bs := []int{3, 4, 6}, []int{6, 5}
		if tr[0] == 1 {
			as = []int{3, 6, 4}
		}
		if tr[1] == 1 {
			bs = []int{5, 6}
		}
		cases = append(cases,
			opCase{name: "FusedMatMul const B", domain: ms, op: "FusedMatMul", attrs: attrs, inputs: []opInput{fin(rnd(8, as...)), kin(rnd(9, bs...))}, outputs: []string{"y"}},
			opCase{name: "FusedMatMul batched B", domain: ms, op: "FusedMatMul", attrs: attrs, inputs: []opInput{fin(rnd(10, as...)), fin(rnd(11, append([]int{3}, bs...)...))}, outputs: []string{"y"}})
	}
	checkOps(t, cases, 1e-5)
}
