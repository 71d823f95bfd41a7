package converter

import (
	"fmt"

	"github.com/onnxq/onnxq/graph"
)

// Runtime is the runtime a QDQ model is placed for. A QDQ model runs anywhere,
// but which ops pay off in integer arithmetic depends on the runtime's
// kernels: an NPU toolchain wants every tensor quantized, while ONNX
// Runtime's CPU provider runs some integer kernels slower than float, has
// none for others, and turns each Q/DQ pair around a float op into pure
// conversion work.
type Runtime int

const (
	// RuntimeGeneric quantizes every op that has an integer form (NPU
	// toolchains, TensorRT, QNN: the default).
	RuntimeGeneric Runtime = iota
	// RuntimeORT places Q/DQ only where ONNX Runtime's CPU kernels gain (see
	// ortFloatReason) and quantizes int8 weights met by uint8 activations
	// to 7 bits, since its x86 kernels without AVX-VNNI add product pairs
	// in saturating int16.
	RuntimeORT
	// RuntimeORTVNNI is RuntimeORT's placement with full 8-bit weights, for
	// CPUs whose integer dot products do not saturate (AVX-VNNI, AVX512-VNNI,
	// ARM64 dot product).
	RuntimeORTVNNI
)

// Runtimes are the names ParseRuntime takes, in Runtime order.
var Runtimes = []string{"generic", "ort", "ort-vnni"}

// ParseRuntime reads a runtime name.
func ParseRuntime(s string) (Runtime, error) {
	for i, n := range Runtimes {
		if s == n {
			return Runtime(i), nil
		}
	}
	return RuntimeGeneric, fmt.Errorf("runtime %q is not one of generic, ort, ort-vnni", s)
}

func (t Runtime) String() string {
	if t >= 0 && int(t) < len(Runtimes) {
		return Runtimes[t]
	}
	return fmt.Sprintf("Runtime(%d)", int(t))
}

// ort reports whether the placement is ONNX Runtime's.
func (t Runtime) ort() bool { return t == RuntimeORT || t == RuntimeORTVNNI }

// ortFloatOps have no integer kernel in ONNX Runtime's CPU provider that beats
// float, so for it they run in float between DQ and Q (and where their
// neighbours are float too, with no Q/DQ at all):
//   - Softmax: QLinearSoftmax is a scalar loop with a float division per
//     element (FastestDet's 22x22x80 Softmax: 0.65 ms against 0.03 ms float);
//   - AveragePool: QLinearAveragePool runs in NCHW with a scalar inner loop
//     (FastestDet: 0.32 ms against 0.014 ms float);
//   - ConvTranspose: the provider has no integer ConvTranspose, so a Q/DQ
//     pair around it is pure conversion; its weight stays float too.
var ortFloatOps = map[string]string{
	"Softmax":       "ONNX Runtime (--runtime ort): its QLinearSoftmax is slower than float",
	"AveragePool":   "ONNX Runtime (--runtime ort): its QLinearAveragePool is slower than float",
	"ConvTranspose": "ONNX Runtime (--runtime ort): no integer ConvTranspose on CPU",
}

// ortFloatReason says why ONNX Runtime runs this node better in float, or "".
// grouped tells whether an activation directly follows the compute op it
// would be fused into; floatIn whether an input comes from a node that runs
// in float, allFloatIn whether every activation input does; slower that the
// latency model keeps this node in float (ortPlace).
func ortFloatReason(n *graph.Node, grouped, floatIn, allFloatIn, slower bool) string {
	if r := ortFloatOps[n.OpType]; r != "" {
		return r
	}
	if slower {
		return "ONNX Runtime (--runtime ort): faster in float here, Q/DQ included (latency model)"
	}
	// A Mul of a float result (the exported HardSwish x*Clip(x+3, 0, 6)/6
	// once its Clip runs in float) would need a Q just to feed QLinearMul
	// and a DQ after it for the Div: in float the chain costs one DQ and one
	// Q. SiLU's x*Sigmoid(x) stays integer: QLinearSigmoid is a table lookup.
	if n.OpType == "Mul" && floatIn {
		return "ONNX Runtime (--runtime ort): multiplies a float result; one DQ and one Q around the float chain instead"
	}
	// A Relu or Clip pays off only fused into the QLinearConv/QLinearAdd
	// before it (ONNX Runtime folds it into the output range); alone, as in
	// an exported HardSwish, it would need a Q/DQ pair of its own.
	if (n.OpType == "Relu" || n.OpType == "Clip") && !grouped {
		return "ONNX Runtime (--runtime ort): an activation not fused into a Conv or Add runs in float"
	}
	// An op without weights whose inputs all come from float nodes (a Concat
	// of float branches) would only gain a Q per input and a DQ after. Not an
	// Add: a residual Add of a MatMul's float bias-add output stays a
	// QLinearAdd, as ONNX Runtime fuses the bias into the MatMul.
	if _, w := weightOps[n.OpType]; !w && allFloatIn && quantizedOps[n.OpType] && n.OpType != "Add" {
		return "ONNX Runtime (--runtime ort): all its inputs come from float nodes; it runs in float with them"
	}
	return ""
}
