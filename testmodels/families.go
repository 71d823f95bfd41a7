package testmodels

import "github.com/onnxq/onnxq/graph"

// Families are architectures beyond the zoo for speed and correctness: the
// executor against ONNX Runtime (`make bench`, the ORT cross-checks) and
// its parallel paths against one thread. Unlike the zoo's, their weights
// are not trained-like: BatchNormalization has the builder's plain random
// statistics, so activations are not kept at unit scale through depth.
// Each is a pure function of its seed. They bring the op mixes the zoo
// lacks: ConvNeXt's 7x7 depthwise convolutions and channels-last
// LayerNormalization between two Transposes, a U-Net's ConvTranspose,
// Resize and skip Concats at full resolution, ShuffleNetV2's Split and
// channel shuffle (Reshape, Transpose, Reshape) around many small
// convolutions, and (families2.go) MobileNetV3's HardSwish and HardSigmoid
// gates, DenseNet's pre-activation BatchNormalization after Concats, a
// Vision Transformer's patch embedding and class token, ESPCN's
// DepthToSpace and Tanh, a bidirectional GRU, and (yolov8.go) YOLOv8's
// C2f Splits, chained SPPF pools and DFL box decoding, and (inception.go)
// Inception-v3's odd-sized maps, branch Concats and 1x7 / 7x1 kernels.
func Families() []string {
	return []string{"convnext", "unet", "shufflenet", "mobilenetv3", "densenet", "vit", "espcn", "gru", "yolov8", "inception", "wav2vec", "deeplab", "resnext", "style", "bert", "googlenet", "r3d", "hifigan", "detr", "swin", "dlrm"}
}

// trainedFamilies are the families whose weights the builder's probe pass
// makes trained-like, as the zoo's: their samples are images, as the zoo's.
var trainedFamilies = []string{"yolov8"}

// ConvNeXt is a small ConvNeXt (Liu et al., 2022) as PyTorch exports it: a
// 4x4 stride-4 patchify stem to 48 channels, three stages of two blocks (48,
// 96, 192 channels, 2x2 stride-2 convolutions between them). A block is a
// 7x7 depthwise convolution, a Transpose to channels-last, LayerNormalization
// over the channels, a Linear to 4x the channels (MatMul + Add), Gelu in the
// Erf form, a Linear back, a per-channel layer scale (Mul), a Transpose back
// and the residual Add. Global average pooling and a Gemm to 1000 classes.
// Input "input" 1x3x224x224, output "logits" 1x1000.
func ConvNeXt(seed uint64) *graph.Model {
	b := NewBuilder(seed, 17)
	x := b.Input("input", 1, 3, 224, 224)
	dims := []int{48, 96, 192}
	x = b.Conv(x, dims[0], 4, ConvOpts{Stride: 4})
	for st, d := range dims {
		if st > 0 {
			x = b.Conv(x, d, 2, ConvOpts{Stride: 2})
		}
		for blk := 0; blk < 2; blk++ {
			h := b.Conv(x, d, 7, ConvOpts{Pad: 3, Group: d})
			h = b.LayerNorm(b.Transpose(h, 0, 2, 3, 1))
			h = b.Linear(b.GeluErf(b.Linear(h, 4*d, 1)), d, 1)
			h = b.Binary("Mul", h, b.Const("layer_scale", []int{d}, b.Uniform(d, 0.1, 0.5)))
			x = b.Add(x, b.Transpose(h, 0, 3, 1, 2))
		}
	}
	x = b.Gemm(b.Flatten(b.GlobalAveragePool(x)), 1000)
	renameOutput(b, x, "logits")
	return b.Finish()
}

// UNet is a small U-Net (Ronneberger et al., 2015) for segmentation: three
// levels of two 3x3 Conv + BatchNormalization + Relu (16, 32, 64 channels)
// with 2x2 max pooling down; up again by nearest Resize and a 1x1
// convolution to the middle level, by a 2x2 stride-2 ConvTranspose to the
// top, each followed by the Concat of the skip connection and two more 3x3
// layers; a 1x1 convolution to 2 classes and Sigmoid. Input "input"
// 1x3x128x128, output "mask" 1x2x128x128.
func UNet(seed uint64) *graph.Model {
	b := NewBuilder(seed, 17)
	x := b.Input("input", 1, 3, 128, 128)
	cbr := func(x *graph.Value, c int) *graph.Value {
		return b.Relu(b.BatchNorm(b.Conv(x, c, 3, ConvOpts{Pad: 1, NoBias: true})))
	}
	chans := []int{16, 32, 64}
	var skips []*graph.Value
	for i, c := range chans {
		x = cbr(cbr(x, c), c)
		if i < len(chans)-1 {
			skips = append(skips, x)
			x = b.MaxPool(x, 2, 2, 0)
		}
	}
	for i := len(chans) - 2; i >= 0; i-- {
		c := chans[i]
		if i == 0 {
			x = b.ConvTranspose(x, c, 2, 2)
		} else {
			x = b.Conv(b.Upsample(x, 2), c, 1, ConvOpts{})
		}
		x = cbr(cbr(b.Concat(1, x, skips[i]), c), c)
	}
	x = b.Sigmoid(b.Conv(x, 2, 1, ConvOpts{}))
	renameOutput(b, x, "mask")
	return b.Finish()
}

// ShuffleNetV2 is a ShuffleNetV2 0.5x-like classifier (Ma et al., 2018): a
// 3x3 stride-2 stem to 24 channels and a 3x3 stride-2 max pool, then stages
// of 4, 8 and 4 units (48, 96, 192 channels). A unit splits its input's
// channels in two (Split), passes one half through 1x1 Conv + BN + Relu, 3x3
// depthwise Conv + BN and 1x1 Conv + BN + Relu, concatenates it with the
// other half and shuffles the channels (Reshape to two groups, Transpose,
// Reshape back); a stage's first unit instead runs both branches on the
// whole input with stride-2 depthwise convolutions. A 1x1 convolution to 1024
// channels, global average pooling and a Gemm to 1000 classes. Input "input"
// 1x3x224x224, output "logits" 1x1000.
func ShuffleNetV2(seed uint64) *graph.Model {
	b := NewBuilder(seed, 17)
	x := b.Input("input", 1, 3, 224, 224)
	cbr := func(x *graph.Value, c, k, stride, group int, relu bool) *graph.Value {
		y := b.BatchNorm(b.Conv(x, c, k, ConvOpts{Stride: stride, Pad: k / 2, Group: group, NoBias: true}))
		if relu {
			y = b.Relu(y)
		}
		return y
	}
	shuffle := func(x *graph.Value) *graph.Value {
		s := b.Shape(x)
		y := b.Transpose(b.Reshape(x, 1, 2, s[1]/2, s[2], s[3]), 0, 2, 1, 3, 4)
		return b.Reshape(y, 1, s[1], s[2], s[3])
	}
	x = b.MaxPool(cbr(x, 24, 3, 2, 1, true), 3, 2, 1)
	for _, st := range [][2]int{{48, 4}, {96, 8}, {192, 4}} {
		c, units := st[0], st[1]
		for i := 0; i < units; i++ {
			if i == 0 {
				in := b.Shape(x)[1]
				l := cbr(cbr(x, in, 3, 2, in, false), c/2, 1, 1, 1, true)
				r := cbr(cbr(cbr(x, c/2, 1, 1, 1, true), c/2, 3, 2, c/2, false), c/2, 1, 1, 1, true)
				x = shuffle(b.Concat(1, l, r))
				continue
			}
			halves := b.Split(x, 1, 2)
			r := cbr(cbr(cbr(halves[1], c/2, 1, 1, 1, true), c/2, 3, 1, c/2, false), c/2, 1, 1, 1, true)
			x = shuffle(b.Concat(1, halves[0], r))
		}
	}
	x = b.Gemm(b.Flatten(b.GlobalAveragePool(cbr(x, 1024, 1, 1, 1, true))), 1000)
	renameOutput(b, x, "logits")
	return b.Finish()
}
