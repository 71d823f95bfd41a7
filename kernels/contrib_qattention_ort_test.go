//go:build ort

package kernels

import (
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/graph/onnxpb"
)

// TestQAttentionMatchesORT: QAttention against ONNX Runtime (whose CPU
// kernel takes uint8 inputs), int8 weights with a scale (and zero point) per column as
// quantize_dynamic writes them and uint8 weights with one, a key-ends
// mask, causal attention over a past. (The bridge feeds no 8-bit tensors:
// the codes are constants.)
func TestQAttentionMatchesORT(t *testing.T) {
	ms := "com.microsoft"
	heads := ai("num_heads", 2)
	const d, cols = 16, 48
	scales := make([]float32, cols)
	for i := range scales {
		scales[i] = 0.002 + 0.0001*float32(i%7)
	}
	colScale := graph.Float32Tensor([]int{cols}, scales)
	xu := qlRandCodes(80, graph.Uint8, 2, 3, d)
	xu2 := qlRandCodes(81, graph.Uint8, 2, 3, d)
	wi, wu := qlRandCodes(82, graph.Int8, d, cols), qlRandCodes(83, graph.Uint8, d, cols)
	bias := rnd(84, cols)
	past := rnd(85, 2, 2, 2, 4, 8)
	checkOps(t, []opCase{
		{name: "Uint8Int8PerColumn", domain: ms, op: "QAttention", attrs: []*onnxpb.AttributeProto{heads},
			inputs:  []opInput{kin(xu), kin(wi), fin(bias), kin(qlF32(0.03)), kin(colScale), none(), kin(qlCode(graph.Uint8, 121)), kin(qlCode(graph.Int8, 0, cols))},
			outputs: []string{"Y"}},
		{name: "KeyEnds", domain: ms, op: "QAttention", attrs: []*onnxpb.AttributeProto{heads},
			inputs:  []opInput{kin(xu2), kin(wi), fin(bias), kin(qlF32(0.05)), kin(colScale), fin(i32([]int{2}, 2, 3)), kin(qlCode(graph.Uint8, 3)), kin(qlCode(graph.Int8, 0, cols))},
			outputs: []string{"Y"}},
		{name: "Uint8Uint8CausalPast", domain: ms, op: "QAttention", attrs: []*onnxpb.AttributeProto{heads, ai("unidirectional", 1)},
			inputs:  []opInput{kin(xu), kin(wu), fin(bias), kin(qlF32(0.02)), kin(qlF32(0.004)), none(), kin(qlCode(graph.Uint8, 128)), kin(qlCode(graph.Uint8, 128)), fin(past)},
			outputs: []string{"Y", "present"}},
	}, 1e-5)
}
