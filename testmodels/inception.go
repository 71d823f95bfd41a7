package testmodels

import (
	"math"

	"github.com/onnxq/onnxq/graph"
)

// Inception is a small Inception-v3 (Szegedy et al., 2016) as torchvision
// exports it: every convolution a BasicConv2d (Conv without bias,
// BatchNormalization, Relu). Its maps are odd-sized throughout, as
// Inception's 299x299 input makes them (149, 147, 73, 71, 35, 17, 8): a
// 107x107 input, a stem of valid 3x3 convolutions and stride-2 max pools
// (53, 51, 25, 23, 11), two Inception-A blocks on 11x11 (1x1, 5x5 and
// double-3x3 branches, and an average pool with a 1x1), a reduction to 5x5
// (stride-2 valid 3x3s beside a max pool), an Inception-C block of
// factorized 7x7 convolutions (1x7 and 7x1, padded 0x3 and 3x0) and an
// Inception-E block whose branches split into 1x3 and 3x1 halves that are
// concatenated again; global average pooling and a Gemm to 1000 classes.
// Input "input" 1x3x107x107, output "logits" 1x1000.
func Inception(seed uint64) *graph.Model {
	b := NewBuilder(seed, 17)
	x := b.Input("input", 1, 3, 107, 107)
	// conv is a BasicConv2d with a kh x kw kernel, padding ph, pw.
	conv := func(x *graph.Value, outC, kh, kw, stride, ph, pw int) *graph.Value {
		return b.Relu(b.BatchNorm(b.convRect(x, outC, kh, kw, stride, ph, pw)))
	}
	sq := func(x *graph.Value, outC, k, stride, pad int) *graph.Value {
		return conv(x, outC, k, k, stride, pad, pad)
	}
	x = sq(x, 16, 3, 2, 0)    // 53
	x = sq(x, 16, 3, 1, 0)    // 51
	x = sq(x, 32, 3, 1, 1)    // 51
	x = b.MaxPool(x, 3, 2, 0) // 25
	x = sq(x, 40, 1, 1, 0)
	x = sq(x, 64, 3, 1, 0)               // 23
	x = b.MaxPool(x, 3, 2, 0)            // 11
	for _, pool := range []int{16, 32} { // Inception-A
		b1 := sq(x, 32, 1, 1, 0)
		b5 := sq(sq(x, 24, 1, 1, 0), 32, 5, 1, 2)
		b3 := sq(sq(sq(x, 32, 1, 1, 0), 48, 3, 1, 1), 48, 3, 1, 1)
		bp := sq(b.AveragePool(x, 3, 1, 1), pool, 1, 1, 0)
		x = b.Concat(1, b1, b5, b3, bp)
	}
	// Reduction-A: 11 -> 5.
	r3 := sq(x, 96, 3, 2, 0)
	rd := sq(sq(sq(x, 32, 1, 1, 0), 48, 3, 1, 1), 48, 3, 2, 0)
	x = b.Concat(1, r3, rd, b.MaxPool(x, 3, 2, 0))
	// Inception-C: factorized 7x7 on 5x5.
	{
		c1 := sq(x, 48, 1, 1, 0)
		c7 := conv(conv(sq(x, 32, 1, 1, 0), 32, 1, 7, 1, 0, 3), 48, 7, 1, 1, 3, 0)
		d := sq(x, 32, 1, 1, 0)
		d = conv(conv(d, 32, 7, 1, 1, 3, 0), 32, 1, 7, 1, 0, 3)
		d = conv(conv(d, 32, 7, 1, 1, 3, 0), 48, 1, 7, 1, 0, 3)
		cp := sq(b.AveragePool(x, 3, 1, 1), 48, 1, 1, 0)
		x = b.Concat(1, c1, c7, d, cp)
	}
	// Inception-E: 1x3 and 3x1 halves of each branch, concatenated.
	{
		e1 := sq(x, 64, 1, 1, 0)
		e3 := sq(x, 48, 1, 1, 0)
		e3 = b.Concat(1, conv(e3, 48, 1, 3, 1, 0, 1), conv(e3, 48, 3, 1, 1, 1, 0))
		ed := sq(sq(x, 56, 1, 1, 0), 48, 3, 1, 1)
		ed = b.Concat(1, conv(ed, 48, 1, 3, 1, 0, 1), conv(ed, 48, 3, 1, 1, 1, 0))
		ep := sq(b.AveragePool(x, 3, 1, 1), 32, 1, 1, 0)
		x = b.Concat(1, e1, e3, ed, ep)
	}
	x = b.Gemm(b.Flatten(b.GlobalAveragePool(x)), 1000)
	renameOutput(b, x, "logits")
	return b.Finish()
}

// convRect adds a convolution without bias with a kh x kw kernel, the same
// stride on both axes and padding ph (top and bottom), pw (left and right),
// He-initialized. No probe: the families' weights are not trained-like.
func (b *Builder) convRect(x *graph.Value, outC, kh, kw, stride, ph, pw int) *graph.Value {
	c := b.shapes[x][1]
	w := b.Normal(outC*c*kh*kw, 0, math.Sqrt(2/float64(c*kh*kw)))
	return b.convRectWith(x, w, nil, outC, kh, kw, ph, pw, ConvOpts{Stride: stride})
}
