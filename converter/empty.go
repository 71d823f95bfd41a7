package converter

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/onnxq/onnxq/graph"
)

// nothingQuantized says why a conversion quantizes no tensor: writing the
// model unchanged would look like success.
func nothingQuantized(m *graph.Model, opt Options, rep *Report) error {
	ops, other := 0, map[string]bool{}
	for _, n := range m.Graph.Nodes {
		if !quantizedOps[n.OpType] || !graph.IsStandardDomain(n.Domain) {
			continue
		}
		ops++
		for _, v := range n.Inputs {
			if v == nil {
				continue
			}
			if dt := v.ElemType(); dt != graph.Undefined && !quantizable(dt) && !dt.IsInteger() {
				other[dt.Short()] = true
			}
		}
	}
	const msg = "nothing to quantize: "
	quantized := map[string]int{}
	for _, n := range m.Graph.Nodes {
		if integerOps[n.OpType] {
			quantized[n.OpType]++
		}
	}
	switch {
	case ops == 0 && len(quantized) > 0:
		var found []string
		for _, op := range slices.Sorted(maps.Keys(quantized)) {
			found = append(found, fmt.Sprintf("%d %s", quantized[op], op))
		}
		return fmt.Errorf(msg+"the model is quantized already (%s); convert takes the float model (onnxq run and compare run this one)", strings.Join(found, ", "))
	case ops == 0:
		return fmt.Errorf(msg + "the model has none of the ops onnxq quantizes (Conv, ConvTranspose, Gemm, MatMul, Add, Mul, Concat, pooling, Resize, Relu, Clip, Softmax)")
	case len(other) > 0:
		return fmt.Errorf(msg+"its %d quantizable nodes compute in %s; onnxq quantizes float32, float16 and bfloat16", ops, strings.Join(slices.Sorted(maps.Keys(other)), ", "))
	case len(rep.FloatTensors) > 0:
		return fmt.Errorf(msg+"the overrides or options keep all %d candidate tensors in float (%s)", len(rep.FloatTensors), rep.FloatTensors[0].Reason)
	case opt.WeightOnly:
		return fmt.Errorf(msg + "--weight-only, and no Conv, ConvTranspose, Gemm or MatMul has a constant float weight")
	}
	return fmt.Errorf(msg+"none of the %d quantizable nodes has a float input, output or weight", ops)
}

// integerOps are the ops of models quantized by other tools (ONNX
// Runtime's quantize_dynamic and QOperator format, TFLite conversions):
// their computation is in integers already.
var integerOps = map[string]bool{
	"QLinearConv": true, "QLinearMatMul": true, "MatMulInteger": true, "ConvInteger": true,
	"DynamicQuantizeLinear": true, "DynamicQuantizeMatMul": true, "DynamicQuantizeLSTM": true,
	"MatMulIntegerToFloat": true, "QAttention": true, "QGemm": true, "QLinearAdd": true,
	"QLinearMul": true, "QLinearSigmoid": true, "QLinearLeakyRelu": true, "QLinearConcat": true,
	"QLinearGlobalAveragePool": true, "QLinearAveragePool": true, "QLinearSoftmax": true,
	"MatMulNBits": true, "GatherBlockQuantized": true,
}
