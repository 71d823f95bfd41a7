package testmodels

import "github.com/onnxq/onnxq/graph"

// Planted-outlier model facts, for tests that must find the planted layer.
const (
	// PlantedNode is the convolution with one output channel 1000x the others.
	PlantedNode = "Conv_3"
	// PlantedTensor is that layer's activation (after its ReLU): the tensor a
	// per-tensor activation encoding ruins.
	PlantedTensor = "Relu_3_out"
)

func init() { catalog["planted-outlier"] = PlantedOutlier }

// PlantedOutlier is a chain of five Conv+ReLU layers, global pooling and a
// Gemm head, where output channel 7 of PlantedNode has weights and bias 1000x
// the others and the next convolution reads that channel with weights 1/1000:
// the float function is an ordinary network, but one activation has one
// channel whose range is 1000x the rest, so per-tensor quantization of it
// leaves the other channels a handful of levels. Input "input" 1x3x32x32,
// output "logits" 1x10.
func PlantedOutlier(seed uint64) *graph.Model {
	b := NewBuilder(seed, 13)
	x := b.Input("input", 1, 3, 32, 32)
	var convs []*graph.Node
	for i := 0; i < 5; i++ {
		x = b.Conv(x, 16, 3, ConvOpts{Pad: 1})
		convs = append(convs, x.Producer)
		x = b.Relu(x)
	}
	x = b.Gemm(b.Flatten(b.GlobalAveragePool(x)), 10)
	renameOutput(b, x, "logits")
	const ch, factor = 7, 1000
	w := convs[2].Input(1).Const
	per := graph.Numel(w.Shape[1:])
	for i := range per {
		w.Float32s()[ch*per+i] *= factor
	}
	convs[2].Input(2).Const.Float32s()[ch] *= factor
	next := convs[3].Input(1).Const // [out, in, k, k]: input channel ch of every filter
	kk := next.Shape[2] * next.Shape[3]
	for oc := 0; oc < next.Shape[0]; oc++ {
		blk := next.Float32s()[(oc*next.Shape[1]+ch)*kk:]
		for i := range kk {
			blk[i] /= factor
		}
	}
	return b.M
}
