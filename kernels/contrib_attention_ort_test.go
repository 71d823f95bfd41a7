//go:build ort

package kernels

import (
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/graph/onnxpb"
)

func TestContribAttentionMatchesORT(t *testing.T) {
	ms := "com.microsoft"
	heads := ai("num_heads", 2)
	causal := ai("unidirectional", 1)
	x, w, bias := rnd(50, 2, 3, 16), rnd(51, 16, 48), rnd(52, 48)
	past := rnd(53, 2, 2, 2, 4, 8) // (2, B, N, P=4, H)
	mask2D := i32([]int{2, 7}, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1)
	checkOps(t, []opCase{
		{name: "Plain", domain: ms, op: "Attention", attrs: []*onnxpb.AttributeProto{heads},
			inputs: []opInput{fin(x), fin(w), fin(bias)}, outputs: []string{"Y"}},
		{name: "Causal", domain: ms, op: "Attention", attrs: []*onnxpb.AttributeProto{heads, causal},
			inputs: []opInput{fin(x), fin(w), fin(bias)}, outputs: []string{"Y", "present"}},
		{name: "RawMask", domain: ms, op: "Attention", attrs: []*onnxpb.AttributeProto{heads},
			inputs: []opInput{fin(x), fin(w), fin(bias), fin(i32([]int{2, 3}, 1, 1, 0, 1, 0, 1))}, outputs: []string{"Y"}},
		{name: "KeyEnds", domain: ms, op: "Attention", attrs: []*onnxpb.AttributeProto{heads},
			inputs: []opInput{fin(x), fin(w), fin(bias), fin(i32([]int{2}, 2, 3))}, outputs: []string{"Y"}},
		{name: "KeyEndsStarts", domain: ms, op: "Attention", attrs: []*onnxpb.AttributeProto{heads},
			inputs: []opInput{fin(x), fin(w), fin(bias), fin(i32([]int{4}, 3, 2, 1, 0))}, outputs: []string{"Y"}},
		{name: "Mask3DNoCausal", domain: ms, op: "Attention", attrs: []*onnxpb.AttributeProto{heads},
			inputs: []opInput{fin(x), fin(w), fin(bias), fin(i32([]int{2, 3, 3}, 1, 0, 1, 1, 1, 0, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1, 0, 1))}, outputs: []string{"Y"}},
		{name: "Mask3D", domain: ms, op: "Attention", attrs: []*onnxpb.AttributeProto{heads, causal},
			inputs: []opInput{fin(x), fin(w), fin(bias), fin(i32([]int{2, 3, 3}, 1, 0, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 0, 1, 0, 1, 1))}, outputs: []string{"Y"}},
		{name: "PastMaskCausal", domain: ms, op: "Attention", attrs: []*onnxpb.AttributeProto{heads, causal, af("mask_filter_value", -3.4028235e38)},
			inputs: []opInput{fin(x), fin(w), fin(bias), fin(mask2D), fin(past)}, outputs: []string{"Y", "present"}},
		{name: "LongCausalPast", domain: ms, op: "Attention", attrs: []*onnxpb.AttributeProto{heads, causal},
			inputs: []opInput{fin(rnd(57, 1, 40, 16)), fin(w), fin(bias), none(), fin(rnd(58, 2, 1, 2, 9, 8))}, outputs: []string{"Y", "present"}},
		{name: "AttentionBiasScale", domain: ms, op: "Attention", attrs: []*onnxpb.AttributeProto{heads, af("scale", 0.2)},
			inputs: []opInput{fin(x), fin(w), fin(bias), none(), none(), fin(rnd(54, 1, 2, 3, 3))}, outputs: []string{"Y"}},
		{name: "SmallerV", domain: ms, op: "Attention", attrs: []*onnxpb.AttributeProto{heads, graph.AttrIntsOf("qkv_hidden_sizes", 16, 16, 8)},
			inputs: []opInput{fin(x), fin(rnd(55, 16, 40)), fin(rnd(56, 40))}, outputs: []string{"Y"}},
	}, 1e-5)
}

func TestMultiHeadAttentionMatchesORT(t *testing.T) {
	ms := "com.microsoft"
	heads := ai("num_heads", 2)
	q, k, v := rnd(60, 2, 3, 16), rnd(61, 2, 4, 16), rnd(62, 2, 4, 16)
	bias := rnd(63, 48)
	pk, pv := rnd(64, 2, 2, 5, 8), rnd(65, 2, 2, 5, 8)
	checkOps(t, []opCase{
		{name: "Separate", domain: ms, op: "MultiHeadAttention", attrs: []*onnxpb.AttributeProto{heads},
			inputs: []opInput{fin(q), fin(k), fin(v), fin(bias)}, outputs: []string{"Y"}},
		{name: "CrossPrecomputed", domain: ms, op: "MultiHeadAttention", attrs: []*onnxpb.AttributeProto{heads},
			inputs: []opInput{fin(q), fin(rnd(68, 2, 2, 6, 8)), fin(rnd(69, 2, 2, 6, 8))}, outputs: []string{"Y"}},
		{name: "PastCausal", domain: ms, op: "MultiHeadAttention", attrs: []*onnxpb.AttributeProto{heads, ai("unidirectional", 1)},
			inputs:  []opInput{fin(q), fin(rnd(70, 2, 3, 16)), fin(rnd(71, 2, 3, 16)), fin(bias), none(), none(), fin(pk), fin(pv)},
			outputs: []string{"Y", "present_key", "present_value"}},
		{name: "LongCausal", domain: ms, op: "MultiHeadAttention", attrs: []*onnxpb.AttributeProto{heads, ai("unidirectional", 1)},
			inputs: []opInput{fin(rnd(73, 1, 70, 16)), fin(rnd(74, 1, 70, 16)), fin(rnd(75, 1, 70, 16))}, outputs: []string{"Y"}},
		{name: "KeyPaddingMask", domain: ms, op: "MultiHeadAttention", attrs: []*onnxpb.AttributeProto{heads},
			inputs: []opInput{fin(q), fin(k), fin(v), none(), fin(i32([]int{2, 4}, 1, 1, 1, 0, 1, 1, 0, 0))}, outputs: []string{"Y"}},
		{name: "KeyLengths", domain: ms, op: "MultiHeadAttention", attrs: []*onnxpb.AttributeProto{heads},
			inputs: []opInput{fin(q), fin(k), fin(v), none(), fin(i32([]int{2}, 3, 2))}, outputs: []string{"Y"}},
		{name: "AttentionBias", domain: ms, op: "MultiHeadAttention", attrs: []*onnxpb.AttributeProto{heads, af("scale", 0.3)},
			inputs: []opInput{fin(q), fin(k), fin(v), none(), none(), fin(rnd(72, 2, 2, 3, 4))}, outputs: []string{"Y"}},
	}, 1e-5)
}

// gqaCase is a GroupQueryAttention node with 4 query and 2 KV heads of size 8.
func gqaCase(name string, attrs []*onnxpb.AttributeProto, inputs []opInput) opCase {
	attrs = append([]*onnxpb.AttributeProto{ai("num_heads", 4), ai("kv_num_heads", 2)}, attrs...)
	return opCase{name: name, domain: "com.microsoft", op: "GroupQueryAttention", attrs: attrs, inputs: inputs,
		outputs: []string{"Y", "present_key", "present_value"}}
}

func TestGroupQueryAttentionMatchesORT(t *testing.T) {
	total := func(v int32) opInput { return kin(int32Tensor(nil, []int32{v})) }
	// Prompt: B 2, S 5, no past.
	q, k, v := rnd(80, 2, 5, 32), rnd(81, 2, 5, 16), rnd(82, 2, 5, 16)
	prompt := []opInput{fin(q), fin(k), fin(v), none(), none(), fin(i32([]int{2}, 4, 4)), total(5)}
	// Decode: B 2, S 1 after 6 cached tokens.
	q1, k1, v1 := rnd(83, 2, 1, 32), rnd(84, 2, 1, 16), rnd(85, 2, 1, 16)
	pk, pv := rnd(86, 2, 2, 6, 8), rnd(87, 2, 2, 6, 8)
	decode := []opInput{fin(q1), fin(k1), fin(v1), fin(pk), fin(pv), fin(i32([]int{2}, 6, 6)), total(7)}
	// ONNX Runtime rotates heads whose size is a multiple of 16 only.
	cos16, sin16 := ropeCache(32, 8)
	promptR := []opInput{fin(rnd(91, 2, 5, 64)), fin(rnd(92, 2, 5, 32)), fin(rnd(93, 2, 5, 32)), none(), none(), fin(i32([]int{2}, 4, 4)), total(5), fin(cos16), fin(sin16)}
	decodeR := []opInput{fin(rnd(94, 2, 1, 64)), fin(rnd(95, 2, 1, 32)), fin(rnd(96, 2, 1, 32)), fin(rnd(97, 2, 2, 6, 16)), fin(rnd(98, 2, 2, 6, 16)), fin(i32([]int{2}, 6, 6)), total(7), fin(cos16), fin(sin16)}
	posIDs := fin(i64([]int{2, 5}, 3, 4, 5, 6, 7, 0, 1, 2, 3, 4))
	packed := rnd(88, 2, 5, 64)
	checkOps(t, []opCase{
		gqaCase("Prompt", nil, prompt),
		gqaCase("PromptPacked", nil, []opInput{fin(packed), none(), none(), none(), none(), fin(i32([]int{2}, 4, 4)), total(5)}),
		gqaCase("Decode", nil, decode),
		gqaCase("PromptRotary", []*onnxpb.AttributeProto{ai("do_rotary", 1)}, promptR),
		gqaCase("PromptRotaryPositionIDs", []*onnxpb.AttributeProto{ai("do_rotary", 1)}, append(append([]opInput(nil), promptR...), posIDs)),
		gqaCase("DecodeRotaryPositionIDs", []*onnxpb.AttributeProto{ai("do_rotary", 1)}, append(append([]opInput(nil), decodeR...), fin(i64([]int{2, 1}, 9, 4)))),
		gqaCase("DecodeRotaryInterleaved", []*onnxpb.AttributeProto{ai("do_rotary", 1), ai("rotary_interleaved", 1)}, decodeR),
		gqaCase("Bidirectional", []*onnxpb.AttributeProto{ai("causal", 0)}, prompt),
		gqaCase("BidirectionalDecode", []*onnxpb.AttributeProto{ai("causal", 0)}, decode),
		gqaCase("LocalWindow", []*onnxpb.AttributeProto{ai("local_window_size", 2)}, prompt),
		gqaCase("DecodeLocalWindow", []*onnxpb.AttributeProto{ai("local_window_size", 3)}, decode),
		gqaCase("Softcap", []*onnxpb.AttributeProto{af("softcap", 2), af("scale", 0.5)}, prompt),
		gqaCase("SmoothSoftmax", []*onnxpb.AttributeProto{ai("smooth_softmax", 1)}, decode),
		// Longer than one causal chunk of query rows (32), with a local window.
		gqaCase("LongPrompt", []*onnxpb.AttributeProto{ai("local_window_size", 40)}, []opInput{fin(rnd(99, 1, 70, 32)), fin(rnd(100, 1, 70, 16)), fin(rnd(101, 1, 70, 16)), none(), none(), fin(i32([]int{1}, 69)), total(70)}),
		gqaCase("LongChunkAfterPast", nil, []opInput{fin(rnd(102, 1, 40, 32)), fin(rnd(103, 1, 40, 16)), fin(rnd(104, 1, 40, 16)), fin(rnd(105, 1, 2, 9, 8)), fin(rnd(106, 1, 2, 9, 8)), fin(i32([]int{1}, 48)), total(49)}),
		gqaCase("HeadSink", nil, append(append([]opInput(nil), prompt...), none(), none(), none(), none(), fin(rnd(89, 4)))),
		gqaCase("AttentionBias", nil, append(append([]opInput(nil), decode...), none(), none(), none(), fin(rnd(90, 2, 1, 1, 7)))),
	}, 1e-5)
}

func TestONNXAttentionMatchesORT(t *testing.T) {
	q4, k4, v4 := rnd(100, 2, 4, 3, 8), rnd(101, 2, 2, 5, 8), rnd(102, 2, 2, 5, 8)
	pk, pv := rnd(103, 2, 2, 4, 8), rnd(104, 2, 2, 4, 8)
	boolMask := graph.NewTensor(graph.Bool, []int{3, 5})
	for i, keep := range []bool{true, true, false, true, true, true, false, true, true, true, true, true, true, false, true} {
		boolMask.Data().([]bool)[i] = keep
	}
	op := func(name string, attrs []*onnxpb.AttributeProto, in []opInput, outs ...string) opCase {
		return opCase{name: name, op: "Attention", opset: 23, attrs: attrs, inputs: in, outputs: outs}
	}
	checkOps(t, []opCase{
		op("GQA4D", nil, []opInput{fin(q4), fin(k4), fin(v4)}, "Y"),
		op("3D", []*onnxpb.AttributeProto{ai("q_num_heads", 4), ai("kv_num_heads", 2)}, []opInput{fin(rnd(105, 2, 3, 32)), fin(rnd(106, 2, 5, 16)), fin(rnd(107, 2, 5, 16))}, "Y"),
		op("Causal", []*onnxpb.AttributeProto{ai("is_causal", 1)}, []opInput{fin(q4), fin(rnd(108, 2, 2, 3, 8)), fin(rnd(109, 2, 2, 3, 8))}, "Y"),
		op("PastCausal", []*onnxpb.AttributeProto{ai("is_causal", 1)}, []opInput{fin(q4), fin(rnd(110, 2, 2, 3, 8)), fin(rnd(111, 2, 2, 3, 8)), none(), fin(pk), fin(pv)}, "Y", "present_key", "present_value"),
		op("LongCausalPast", []*onnxpb.AttributeProto{ai("is_causal", 1), af("softcap", 2)}, []opInput{fin(rnd(117, 1, 4, 70, 8)), fin(rnd(118, 1, 2, 70, 8)), fin(rnd(119, 1, 2, 70, 8)), fin(rnd(120, 1, 70, 75)), fin(rnd(121, 1, 2, 5, 8)), fin(rnd(122, 1, 2, 5, 8))}, "Y", "present_key", "present_value"),
		{name: "Opset24CausalPast", op: "Attention", opset: 24, attrs: []*onnxpb.AttributeProto{ai("is_causal", 1)},
			inputs: []opInput{fin(q4), fin(rnd(123, 2, 2, 3, 8)), fin(rnd(124, 2, 2, 3, 8)), none(), fin(pk), fin(pv)}, outputs: []string{"Y", "present_key", "present_value"}},
		{name: "Opset24NonPad", op: "Attention", opset: 24, attrs: []*onnxpb.AttributeProto{af("softcap", 2)},
			inputs: []opInput{fin(q4), fin(k4), fin(v4), fin(rnd(125, 3, 5)), none(), none(), fin(i64([]int{2}, 3, 5))}, outputs: []string{"Y"}},
		op("BoolMask", nil, []opInput{fin(q4), fin(k4), fin(v4), kin(boolMask)}, "Y"),
		op("FloatMask", []*onnxpb.AttributeProto{af("scale", 0.4)}, []opInput{fin(q4), fin(k4), fin(v4), fin(rnd(112, 2, 1, 3, 5))}, "Y"),
		op("Softcap", []*onnxpb.AttributeProto{af("softcap", 3)}, []opInput{fin(q4), fin(k4), fin(v4), fin(rnd(113, 3, 5))}, "Y"),
		op("QKOutput", []*onnxpb.AttributeProto{ai("qk_matmul_output_mode", 0)}, []opInput{fin(q4), fin(k4), fin(v4)}, "Y", "", "", "qk"),
		op("QKOutputMasked", []*onnxpb.AttributeProto{ai("qk_matmul_output_mode", 1), af("softcap", 3)}, []opInput{fin(q4), fin(k4), fin(v4), fin(rnd(115, 3, 5))}, "Y", "", "", "qk"),
		op("QKOutputSoftcapped", []*onnxpb.AttributeProto{ai("qk_matmul_output_mode", 2), af("softcap", 3)}, []opInput{fin(q4), fin(k4), fin(v4), fin(rnd(116, 3, 5))}, "Y", "", "", "qk"),
		op("QKOutputSoftmax", []*onnxpb.AttributeProto{ai("qk_matmul_output_mode", 3)}, []opInput{fin(q4), fin(k4), fin(v4), fin(rnd(114, 3, 5))}, "Y", "", "", "qk"),
	}, 1e-5)
}
