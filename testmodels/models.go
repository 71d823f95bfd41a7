package testmodels

import (
	"fmt"
	"math"
	"sort"

	"github.com/onnxq/onnxq/graph"
)

// ConvBNReLU is a small image classifier: three Conv+BatchNorm+ReLU blocks, a
// residual add, global pooling and a Gemm head. Input "input" 1x3x32x32,
// output "logits" 1x10.
func ConvBNReLU(seed uint64) *graph.Model {
	b := NewBuilder(seed, 13)
	x := b.Input("input", 1, 3, 32, 32)
	x = b.Relu(b.BatchNorm(b.Conv(x, 16, 3, ConvOpts{Pad: 1})))
	skip := x
	x = b.Relu(b.BatchNorm(b.Conv(x, 16, 3, ConvOpts{Pad: 1})))
	x = b.Relu(b.Add(x, skip))
	x = b.Relu(b.BatchNorm(b.Conv(x, 32, 3, ConvOpts{Pad: 1, Stride: 2})))
	x = b.Gemm(b.Flatten(b.GlobalAveragePool(x)), 10)
	renameOutput(b, x, "logits")
	return b.M
}

// ResNet50 is a network with ResNet-50's shapes (bottleneck stages of 3, 4, 6, 3
// blocks; 25.6 M parameters, about 100 MB) and seeded weights, input "input"
// batch x 3 x 224 x 224, output "logits" batch x 1000. With withBN false the
// convolutions carry biases and no BatchNormalization follows them, as after
// BatchNorm folding.
func ResNet50(seed uint64, batch int, withBN bool) *graph.Model {
	b := NewBuilder(seed, 13)
	convBN := func(x *graph.Value, outC, k int, o ConvOpts) *graph.Value {
		o.NoBias = withBN
		x = b.Conv(x, outC, k, o)
		if withBN {
			x = b.BatchNorm(x)
		}
		return x
	}
	x := b.Input("input", batch, 3, 224, 224)
	x = b.Relu(convBN(x, 64, 7, ConvOpts{Stride: 2, Pad: 3}))
	x = b.MaxPool(x, 3, 2, 1)
	for stage, blocks := range []int{3, 4, 6, 3} {
		width := 64 << stage
		for i := 0; i < blocks; i++ {
			stride := 1
			if i == 0 && stage > 0 {
				stride = 2
			}
			skip := x
			y := b.Relu(convBN(x, width, 1, ConvOpts{}))
			y = b.Relu(convBN(y, width, 3, ConvOpts{Stride: stride, Pad: 1}))
			y = convBN(y, width*4, 1, ConvOpts{})
			if i == 0 {
				skip = convBN(x, width*4, 1, ConvOpts{Stride: stride})
			}
			x = b.Relu(b.Add(y, skip))
		}
	}
	x = b.Gemm(b.Flatten(b.GlobalAveragePool(x)), 1000)
	renameOutput(b, x, "logits")
	return b.M
}

// renameOutput gives the value a stable public name and makes it the graph output.
func renameOutput(b *Builder, v *graph.Value, name string) {
	out := b.G.AddNode("Identity", "output", []*graph.Value{v}, []string{name}).Output()
	b.shapes[out] = b.shapes[v]
	b.Output(out)
}

// Names lists the models Build knows.
func Names() []string {
	out := make([]string, 0, len(catalog))
	for n := range catalog {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

var catalog = map[string]func(seed uint64) *graph.Model{
	"convbnrelu":        ConvBNReLU,
	"resnet50":          func(s uint64) *graph.Model { return ResNet50(s, 1, true) },
	"resnet50-bnfolded": func(s uint64) *graph.Model { return ResNet50(s, 1, false) },
	"mobilenetv2-block": MobileNetV2Block,
	"gemm-bn":           GemmBN,
	"convtranspose-bn":  ConvTransposeBN,
	"unbalanced":        Unbalanced,
	// The zoo (zoo.go): trained-like weights, image-like or sequence samples.
	"yolo-silu":    YOLOSiLU,
	"squeezenet":   SqueezeNet,
	"resnet-cifar": func(s uint64) *graph.Model { return ResNetCIFAR(s, 56, true) },
	"resnet20":     func(s uint64) *graph.Model { return ResNetCIFAR(s, 20, false) },
	"mobilenetv2":  MobileNetV2,
	"efficientnet": EfficientNetB0,
	"transformer":  Transformer,
	"lstm":         LSTMModel,
	// Families (families.go): other architectures, for speed and correctness.
	"convnext":    ConvNeXt,
	"unet":        UNet,
	"shufflenet":  ShuffleNetV2,
	"mobilenetv3": MobileNetV3,
	"densenet":    DenseNet,
	"vit":         ViT,
	"espcn":       ESPCN,
	"gru":         GRUTagger,
	"yolov8":      YOLOv8,
	"inception":   Inception,
	"wav2vec":     Wav2Vec,
	"deeplab":     DeepLab,
	"resnext":     ResNeXt,
	"style":       StyleTransfer,
	"bert":        BERT,
	"googlenet":   GoogLeNet,
	"r3d":         R3D,
	"hifigan":     HiFiGAN,
	"detr":        DETR,
	"swin":        Swin,
	"dlrm":        DLRM,
}

// Zoo lists the benchmark zoo's models (see zoo.go), in a fixed order.
func Zoo() []string {
	return []string{"yolo-silu", "squeezenet", "resnet-cifar", "resnet20", "mobilenetv2", "efficientnet", "transformer", "lstm"}
}

// Build returns the named model.
func Build(name string, seed uint64) (*graph.Model, error) {
	f, ok := catalog[name]
	if !ok {
		return nil, fmt.Errorf("unknown test model %q (known: %v)", name, Names())
	}
	return f(seed), nil
}

// MobileNetV2Block is an inverted residual block: 1x1 expand + BN + ReLU6,
// 3x3 depthwise + BN + ReLU6, 1x1 project + BN, residual add; then a head.
// Input "input" 1x8x16x16, output "logits" 1x10.
func MobileNetV2Block(seed uint64) *graph.Model {
	b := NewBuilder(seed, 13)
	x := b.Input("input", 1, 8, 16, 16)
	y := b.Relu6(b.BatchNorm(b.Conv(x, 48, 1, ConvOpts{NoBias: true})))
	y = b.Relu6(b.BatchNorm(b.Conv(y, 48, 3, ConvOpts{Pad: 1, Group: 48, NoBias: true})))
	y = b.BatchNorm(b.Conv(y, 8, 1, ConvOpts{NoBias: true}))
	y = b.Add(x, y)
	y = b.Gemm(b.Flatten(b.GlobalAveragePool(y)), 10)
	renameOutput(b, y, "logits")
	return b.M
}

// GemmBN is an MLP whose fully connected layers are each followed by a
// BatchNormalization on [batch, features]. Input "input" 2x32, output "logits" 2x10.
func GemmBN(seed uint64) *graph.Model {
	b := NewBuilder(seed, 13)
	x := b.Input("input", 2, 32)
	x = b.Relu(b.BatchNorm(b.Gemm(x, 64)))
	x = b.BatchNorm(b.Gemm(x, 10))
	renameOutput(b, x, "logits")
	return b.M
}

// ConvTransposeBN upsamples: Conv + BN + ReLU, ConvTranspose (stride 2) + BN +
// ReLU, Conv. Input "input" 1x4x8x8, output "map" 1x1x16x16.
func ConvTransposeBN(seed uint64) *graph.Model {
	b := NewBuilder(seed, 13)
	x := b.Input("input", 1, 4, 8, 8)
	x = b.Relu(b.BatchNorm(b.Conv(x, 8, 3, ConvOpts{Pad: 1})))
	x = b.Relu(b.BatchNorm(b.ConvTranspose(x, 6, 2, 2)))
	x = b.Conv(x, 1, 1, ConvOpts{})
	renameOutput(b, x, "map")
	return b.M
}

// Unbalanced is Conv -> ReLU -> Conv -> ReLU -> Conv whose per-output-channel
// weight ranges differ by up to 100x within a layer, as after BN folding of a
// badly conditioned network: the case cross-layer equalization repairs.
// Input "input" 1x3x16x16, output "out" 1x4x16x16.
func Unbalanced(seed uint64) *graph.Model {
	b := NewBuilder(seed, 13)
	x := b.Input("input", 1, 3, 16, 16)
	x = b.Relu(b.Conv(x, 16, 3, ConvOpts{Pad: 1}))
	x = b.Relu(b.Conv(x, 16, 3, ConvOpts{Pad: 1}))
	x = b.Conv(x, 4, 1, ConvOpts{})
	// Scale output channel i of the first two convs by 10^(2*i/15 - 1): 0.1 .. 10.
	for _, n := range b.G.Nodes {
		if n.OpType != "Conv" || n.Input(1).Const.Shape[0] != 16 {
			continue
		}
		w := n.Input(1).Const
		per := graph.Numel(w.Shape[1:])
		bias := n.Input(2).Const.Float32s()
		for oc := 0; oc < 16; oc++ {
			s := float32(math.Pow(10, 2*float64(oc)/15-1))
			for i := range w.Float32s()[oc*per : (oc+1)*per] {
				w.Float32s()[oc*per+i] *= s
			}
			bias[oc] *= s
		}
	}
	renameOutput(b, x, "out")
	return b.M
}

// IR3Style rewrites m as exporters before IR 4 wrote models: ir_version 3 and
// every initializer also listed as a graph input (with its type and shape), as
// the old SqueezeNet and ResNet model-zoo files are.
func IR3Style(m *graph.Model) *graph.Model {
	ir := int64(3)
	m.Proto.IrVersion = &ir
	g := m.Graph
	for _, v := range g.Initializers {
		if g.IsInput(v) {
			continue
		}
		dims := make([]int64, len(v.Const.Shape))
		for i, d := range v.Const.Shape {
			dims[i] = int64(d)
		}
		v.SetTensorType(v.Const.DType, dims)
		g.Inputs = append(g.Inputs, v)
	}
	return m
}
