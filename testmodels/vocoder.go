package testmodels

import (
	"math"

	"github.com/onnxq/onnxq/graph"
)

// HiFiGAN is a small HiFi-GAN generator (Kong et al., 2020, the V1
// layout at an eighth of its width), the neural vocoder of most TTS
// pipelines: a mel spectrogram in, a waveform out. A k7 Conv1d from 80 mel
// bins to 64 channels, four upsampling stages (LeakyRelu 0.1, then a 1-D
// ConvTranspose of rates 8, 8, 2, 2 with kernels 16, 16, 4, 4, halving the
// channels), each followed by the multi-receptive-field fusion: two
// residual blocks (kernels 3 and 7), each three steps of LeakyRelu ->
// dilated Conv1d (dilations 1, 3, 5) -> LeakyRelu -> Conv1d -> Add, whose
// outputs are averaged (Add, then Mul by 0.5); then LeakyRelu 0.01, a k7
// Conv1d to one channel and Tanh. Weight normalization is folded into the
// weights, as the exports have it. Input "mel" 1x80x32 (32 frames), output
// "audio" 1x1x8192.
func HiFiGAN(seed uint64) *graph.Model {
	b := NewBuilder(seed, 13)
	x := b.Input("mel", 1, 80, 32)
	lrelu := func(x *graph.Value, alpha float32) *graph.Value {
		return b.node("LeakyRelu", []*graph.Value{x}, b.shapes[x], graph.AttrFloatOf("alpha", alpha))
	}
	// conv is a Conv1d of odd kernel k and dilation d, padded to keep the
	// length; gain scales its He weights (a residual branch's last
	// convolution starts small, so the sums stay in range).
	conv := func(x *graph.Value, outC, k, d int, gain float64) *graph.Value {
		s := b.shapes[x]
		fan := s[1] * k
		w := b.Const("conv1d_w", []int{outC, s[1], k}, b.Normal(outC*fan, 0, gain*math.Sqrt(2/float64(fan))))
		bias := b.Const("conv1d_b", []int{outC}, b.Normal(outC, 0, 0.02))
		pad := int64(d * (k - 1) / 2)
		return b.node("Conv", []*graph.Value{x, w, bias}, []int{s[0], outC, s[2]},
			graph.AttrIntsOf("kernel_shape", int64(k)), graph.AttrIntsOf("dilations", int64(d)), graph.AttrIntsOf("pads", pad, pad))
	}
	up := func(x *graph.Value, outC, k, rate int) *graph.Value {
		s := b.shapes[x]
		w := b.Const("convt_w", []int{s[1], outC, k}, b.Normal(s[1]*outC*k, 0, math.Sqrt(2*float64(rate)/float64(s[1]*k))))
		bias := b.Const("convt_b", []int{outC}, b.Normal(outC, 0, 0.02))
		pad := int64((k - rate) / 2)
		return b.node("ConvTranspose", []*graph.Value{x, w, bias}, []int{s[0], outC, s[2] * rate},
			graph.AttrIntsOf("kernel_shape", int64(k)), graph.AttrIntsOf("strides", int64(rate)), graph.AttrIntsOf("pads", pad, pad))
	}
	resblock := func(x *graph.Value, k int) *graph.Value {
		c := b.shapes[x][1]
		for _, d := range []int{1, 3, 5} {
			h := conv(lrelu(x, 0.1), c, k, d, 1)
			h = conv(lrelu(h, 0.1), c, k, 1, 0.3)
			x = b.Add(x, h)
		}
		return x
	}
	x = conv(x, 64, 7, 1, 1)
	for i, st := range []struct{ rate, k int }{{8, 16}, {8, 16}, {2, 4}, {2, 4}} {
		x = up(lrelu(x, 0.1), 32>>i, st.k, st.rate)
		x = b.Binary("Mul", b.Add(resblock(x, 3), resblock(x, 7)), b.Scalar("mrf_mean", 0.5))
	}
	x = b.Unary("Tanh", conv(lrelu(x, 0.01), 1, 7, 1, 0.25))
	renameOutput(b, x, "audio")
	return b.Finish()
}
