package testmodels

import "github.com/onnxq/onnxq/graph"

// YOLOv8 is a YOLOv8n-style anchor-free detector (Ultralytics, 2023) as its
// ONNX export writes it: Conv (BatchNormalization folded) + SiLU written as
// Sigmoid and Mul; C2f blocks, which Split a 1x1 convolution's channels in
// two and feed the second half through bottlenecks (two 3x3 convolutions,
// with a residual Add in the backbone), concatenating both halves and every
// bottleneck's output; SPPF's three chained 5x5 MaxPools; a PAN neck with
// nearest upsampling; and decoupled heads at strides 8, 16 and 32, whose box
// branch predicts 4 distributions of 16 bins decoded by the DFL (Reshape,
// Transpose, Softmax over the bins, a fixed 1x1 Conv weighting bin i by i),
// and whose class branch ends in Sigmoid. Input "images" 1x3x256x256,
// output "output0" 1x84x1344 (4 box distances and 80 class scores per
// anchor point). Weights trained-like, as the zoo's (its probe pass).
func YOLOv8(seed uint64) *graph.Model {
	b := NewBuilder(seed, 17)
	b.Probe(1)
	cbs := func(x *graph.Value, out, k, stride int) *graph.Value {
		return b.SiLU(b.ConvBN(x, out, k, ConvOpts{Stride: stride, Pad: k / 2}, BNStyle{}, true))
	}
	c2f := func(x *graph.Value, out, n int, shortcut bool) *graph.Value {
		y := b.Split(cbs(x, out, 1, 1), 1, 2)
		parts := []*graph.Value{y[0], y[1]}
		last := y[1]
		for i := 0; i < n; i++ {
			z := cbs(cbs(last, out/2, 3, 1), out/2, 3, 1)
			if shortcut {
				z = b.Add(z, last)
			}
			parts = append(parts, z)
			last = z
		}
		z := cbs(b.Concat(1, parts...), out, 1, 1)
		b.MarkBlock(z)
		return z
	}
	sppf := func(x *graph.Value, out int) *graph.Value {
		x = cbs(x, b.Shape(x)[1]/2, 1, 1)
		p1 := b.MaxPoolWith(x, 5, PoolOpts{Pad: 2})
		p2 := b.MaxPoolWith(p1, 5, PoolOpts{Pad: 2})
		p3 := b.MaxPoolWith(p2, 5, PoolOpts{Pad: 2})
		return cbs(b.Concat(1, x, p1, p2, p3), out, 1, 1)
	}
	x := b.Input("images", 1, 3, 256, 256)
	x = cbs(cbs(x, 16, 3, 2), 32, 3, 2)                    // 64
	x = c2f(x, 32, 1, true)                                //
	p3 := c2f(cbs(x, 64, 3, 2), 64, 2, true)               // 32
	p4 := c2f(cbs(p3, 128, 3, 2), 128, 2, true)            // 16
	p5 := sppf(c2f(cbs(p4, 256, 3, 2), 256, 1, true), 256) // 8
	b.MarkBlock(p5)

	n4 := c2f(b.Concat(1, b.Upsample(p5, 2), p4), 128, 1, false)
	o3 := c2f(b.Concat(1, b.Upsample(n4, 2), p3), 64, 1, false)
	o4 := c2f(b.Concat(1, cbs(o3, 64, 3, 2), n4), 128, 1, false)
	o5 := c2f(b.Concat(1, cbs(o4, 128, 3, 2), p5), 256, 1, false)

	// The DFL's fixed weights: bin i counts i.
	bins := make([]float32, 16)
	for i := range bins {
		bins[i] = float32(i)
	}
	var boxes, classes []*graph.Value
	for _, p := range []*graph.Value{o3, o4, o5} {
		s := b.Shape(p)
		hw := s[2] * s[3]
		// Box distributions: trained logits of unit scale over the bins.
		reg := b.HeadConv(cbs(cbs(p, 64, 3, 1), 64, 3, 1), 64, 1, 0, 0.2)
		cls := b.Sigmoid(b.HeadConv(cbs(cbs(p, 80, 3, 1), 80, 3, 1), 80, 2, -4.6, 0.2))
		d := b.Transpose(b.Reshape(reg, 1, 4, 16, hw), 0, 2, 1, 3) // 1x16x4xHW
		d = b.node("Softmax", []*graph.Value{d}, b.Shape(d), graph.AttrIntOf("axis", 1))
		d = b.convWith(d, bins, nil, 1, 1, ConvOpts{NoBias: true}) // 1x1x4xHW
		boxes = append(boxes, b.Reshape(d, 1, 4, hw))
		classes = append(classes, b.Reshape(cls, 1, 80, hw))
	}
	out := b.Concat(1, b.Concat(2, boxes...), b.Concat(2, classes...))
	renameOutput(b, out, "output0")
	return b.Finish()
}
