package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/graph/onnxpb"
)

// The integer convolution as it was before it ran on the float GEMM: a
// direct int32 loop, kept as the reference the GEMM form must match bit for
// bit.

// centered (reference) returns t's values minus its zero point(s) as int32. axisLen > 0 allows a
// zero point per index of axis (rows of A or columns of B, or output channels).
func centered(t, zp *graph.Tensor, perIndex func(i int) int) ([]int32, error) {
	if t.DType != graph.Int8 && t.DType != graph.Uint8 {
		return nil, fmt.Errorf("%s is not int8 or uint8", t.DType.Short())
	}
	v := readInt64s(t)
	out := make([]int32, len(v))
	var z []int64
	if zp != nil {
		if zp.DType != t.DType {
			return nil, fmt.Errorf("zero point type %s differs from %s", zp.DType.Short(), t.DType.Short())
		}
		z = readInt64s(zp)
	}
	for i, x := range v {
		zz := int64(0)
		switch {
		case len(z) == 1:
			zz = z[0]
		case len(z) > 1:
			k := perIndex(i)
			if k >= len(z) {
				return nil, fmt.Errorf("zero point has %d values, need more", len(z))
			}
			zz = z[k]
		}
		out[i] = int32(x - zz)
	}
	return out, nil
}

// convInt32 (reference) is an exact int32 convolution of centered inputs. Each output
// plane accumulates weight x shifted input row, so the inner loop runs over
// contiguous output pixels; planes (batch x output channel) run in parallel.
func convInt32(x, w []int32, n, c, m, cg int, g convGeom, groups, threads int) []int32 {
	mg := m / groups
	plane := g.oh * g.ow
	out := make([]int32, n*m*plane)
	parallelFor(threads, n*m, func(lo, hi int) {
		for job := lo; job < hi; job++ {
			b, oc := job/m, job%m
			gi := oc / mg
			o := out[job*plane : (job+1)*plane]
			for ci := 0; ci < cg; ci++ {
				xc := x[(b*c+gi*cg+ci)*g.h*g.w : (b*c+gi*cg+ci+1)*g.h*g.w]
				wc := w[(oc*cg+ci)*g.kh*g.kw : (oc*cg+ci+1)*g.kh*g.kw]
				for ki := 0; ki < g.kh; ki++ {
					for kj := 0; kj < g.kw; kj++ {
						wv := wc[ki*g.kw+kj]
						if wv == 0 {
							continue
						}
						// Output columns whose input column ox*sw + off lies inside the row.
						off := kj*g.dw - g.pl
						ox0 := 0
						if off < 0 {
							ox0 = (-off + g.sw - 1) / g.sw
						}
						ox1 := min(g.ow, (g.w-1-off)/g.sw+1)
						if g.w-1-off < 0 || ox1 <= ox0 {
							continue
						}
						for oy := 0; oy < g.oh; oy++ {
							iy := oy*g.sh + ki*g.dh - g.pt
							if iy < 0 || iy >= g.h {
								continue
							}
							row := xc[iy*g.w : (iy+1)*g.w]
							orow := o[oy*g.ow : (oy+1)*g.ow]
							ix := ox0*g.sw + off
							if g.sw == 1 {
								src := row[ix : ix+ox1-ox0]
								dst := orow[ox0:ox1]
								for i, v := range src {
									dst[i] += wv * v
								}
								continue
							}
							for ox := ox0; ox < ox1; ox++ {
								orow[ox] += wv * row[ix]
								ix += g.sw
							}
						}
					}
				}
			}
		}
	})
	return out
}

// TestConvIntegerExact: ConvInteger and QLinearConv give the reference's
// int32 sums (and its requantized codes) over kernel sizes 1 to 7, strides,
// padding, dilation, groups and depthwise, a 1-D convolution, channel
// counts whose K passes intGemm's chunk, zero points per tensor and per
// output channel, the extreme codes, and images of several pieces (igemm's
// path), at 1 and 2 threads; QLinearConv's codes uint8 and int8.
func TestConvIntegerExact(t *testing.T) {
	defer func(v bool) { useIgemm = v }(useIgemm)
	rng := rand.New(rand.NewPCG(9, 1))
	type tc struct {
		x, w             []int
		stride, pad, dil int
		group            int
		extreme, perChZP bool
		flipTypes        bool // int8 x and uint8 w, the other way round
	}
	cases := []tc{
		{x: []int{1, 64, 12, 12}, w: []int{32, 64, 3, 3}, stride: 1, pad: 1, dil: 1, group: 1},
		{x: []int{2, 64, 11, 9}, w: []int{16, 64, 3, 3}, stride: 2, pad: 1, dil: 1, group: 1, extreme: true},
		{x: []int{1, 300, 5, 5}, w: []int{8, 300, 1, 1}, stride: 1, pad: 0, dil: 1, group: 1, extreme: true, perChZP: true},
		{x: []int{1, 16, 20, 20}, w: []int{16, 16, 7, 7}, stride: 2, pad: 3, dil: 1, group: 1, perChZP: true},
		{x: []int{1, 32, 13, 13}, w: []int{32, 1, 3, 3}, stride: 1, pad: 1, dil: 1, group: 32},
		{x: []int{1, 32, 13, 13}, w: []int{32, 1, 3, 3}, stride: 2, pad: 1, dil: 1, group: 32, extreme: true},
		{x: []int{1, 24, 10, 10}, w: []int{12, 8, 3, 3}, stride: 1, pad: 2, dil: 2, group: 3},
		{x: []int{1, 40, 9, 9}, w: []int{10, 40, 5, 5}, stride: 1, pad: 0, dil: 1, group: 1, extreme: true},
		{x: []int{1, 48, 50}, w: []int{20, 48, 3}, stride: 2, pad: 1, dil: 1, group: 1},
		{x: []int{1, 20, 9, 9}, w: []int{12, 20, 3, 3}, stride: 1, pad: 1, dil: 2, group: 1, flipTypes: true, perChZP: true},
		{x: []int{1, 30, 8, 8}, w: []int{7, 30, 3, 3}, stride: 2, pad: 1, dil: 1, group: 1, flipTypes: true, extreme: true},
		// Images of several of igemm's pieces, the last ragged.
		{x: []int{2, 16, 40, 40}, w: []int{24, 16, 3, 3}, stride: 1, pad: 1, dil: 1, group: 1, perChZP: true},
		{x: []int{1, 8, 50, 50}, w: []int{40, 8, 1, 1}, stride: 1, pad: 0, dil: 1, group: 1},
		// Rows of K under 4 bytes, read in place.
		{x: []int{1, 1, 7, 7}, w: []int{3, 1, 1, 1}, stride: 1, pad: 0, dil: 1, group: 1},
		{x: []int{1, 2, 9, 9}, w: []int{4, 2, 1, 1}, stride: 1, pad: 0, dil: 1, group: 1, extreme: true},
	}
	for ci, c := range cases {
		spatial := len(c.x) - 2
		var x, w, xzp, wzp *graph.Tensor
		m := c.w[0]
		if c.extreme {
			// uint8 253-255 less 0 and int8 -128 to -126 less 127: the
			// largest products, all of one sign.
			x = int8Tensor(c.flipTypes, c.x, func(int) int { return 253 + rng.IntN(3) - 128*b2i(c.flipTypes) })
			w = int8Tensor(!c.flipTypes, c.w, func(int) int { return -128 + rng.IntN(3) + 128*b2i(c.flipTypes) })
			xzp = int8Tensor(c.flipTypes, nil, func(int) int { return -128 * b2i(c.flipTypes) })
			wzp = int8Tensor(!c.flipTypes, nil, func(int) int { return 127 + 128*b2i(c.flipTypes) })
		} else {
			x = int8Tensor(c.flipTypes, c.x, func(int) int { return rng.IntN(256) })
			w = int8Tensor(!c.flipTypes, c.w, func(int) int { return rng.IntN(256) })
			xzp = int8Tensor(c.flipTypes, nil, func(int) int { return rng.IntN(256) })
			wzp = int8Tensor(!c.flipTypes, nil, func(int) int { return rng.IntN(256) })
		}
		if c.perChZP {
			z := readInt64s(wzp)[0]
			wzp = int8Tensor(!c.flipTypes, []int{m}, func(i int) int { return int(z) + i%3 - 1 })
		}
		// The reference.
		ks := make([]int64, spatial)
		for i := range ks {
			ks[i] = int64(c.w[2+i])
		}
		rep := func(v int) []int64 { return slices.Repeat([]int64{int64(v)}, spatial) }
		attrs := []*onnxpb.AttributeProto{graph.AttrIntsOf("kernel_shape", ks...), graph.AttrIntsOf("strides", rep(c.stride)...),
			graph.AttrIntsOf("pads", slices.Repeat([]int64{int64(c.pad)}, 2*spatial)...), graph.AttrIntsOf("dilations", rep(c.dil)...),
			graph.AttrIntOf("group", int64(c.group))}
		xs, ws := c.x, c.w
		if spatial == 1 {
			xs, ws = []int{c.x[0], c.x[1], 1, c.x[2]}, []int{c.w[0], c.w[1], 1, c.w[2]}
		}
		oh := (xs[2]+2*c.pad*min(1, spatial-1)-c.dil*(ws[2]-1)-1)/c.stride + 1
		if spatial == 1 {
			oh = 1
		}
		ow := (xs[3]+2*c.pad-c.dil*(ws[3]-1)-1)/c.stride + 1
		g := convGeom{c: xs[1], h: xs[2], w: xs[3], kh: ws[2], kw: ws[3], sh: c.stride, sw: c.stride, dh: c.dil, dw: c.dil,
			pt: c.pad * min(1, spatial-1), pl: c.pad, oh: oh, ow: ow}
		if spatial == 1 {
			g.sh, g.dh = 1, 1
		}
		per := c.w[1] * ws[2] * ws[3]
		xc, err := centered(x, xzp, func(int) int { return 0 })
		if err != nil {
			t.Fatal(err)
		}
		wc, err := centered(w, wzp, func(i int) int { return i / per })
		if err != nil {
			t.Fatal(err)
		}
		want := convInt32(xc, wc, xs[0], xs[1], m, c.w[1], g, c.group, 1)
		// QLinearConv's bias, added before requantizing: each channel's
		// first sum brought within 100 of 0, so that its code (below, at a
		// multiplier of exactly 1) shows a bias off by one.
		plane := len(want) / (xs[0] * m)
		bias := make([]int32, m)
		for i := range bias {
			bias[i] = -want[i*plane] + int32(rng.IntN(201)-100)
		}
		biasT, _ := graph.TensorOf(graph.Int32, []int{m}, bias)
		for _, path := range intPaths() {
			for _, v := range []struct {
				threads int
				constW  bool
			}{{1, true}, {2, true}, {1, false}} {
				threads := v.threads
				useIgemm = path.igemm
				name := fmt.Sprintf("case %d (x %v w %v s%d p%d d%d g%d) %d threads, constant weights %v, %s", ci, c.x, c.w, c.stride, c.pad, c.dil, c.group, threads, v.constW, path.name)
				md := graph.NewModel(graph.Opset{Version: 17})
				gr := md.Graph
				xv := gr.AddInput("x", x.DType, nil)
				feeds := map[string]*graph.Tensor{"x": x}
				wv := gr.AddInitializer("w", w) // centered once
				if !v.constW {
					wv = gr.AddInput("w", w.DType, nil) // centered each run
					feeds["w"] = w
				}
				nd := gr.AddNode("ConvInteger", "ci", []*graph.Value{xv, wv, gr.AddInitializer("xzp", xzp), gr.AddInitializer("wzp", wzp)}, []string{"y"}, attrs...)
				gr.AddOutput(nd.Output())
				// QLinearConv of the same, to codes: y = sat(round(acc * s) + 128).
				// Multipliers 0.5 x 1e-4 / (0.5 x 1e-4) = 1 exactly, and 2 for
				// every fifth channel.
				ysc, wsc := graph.Float32Tensor(nil, []float32{float32(0.5) * float32(1e-4)}), graph.Float32Tensor([]int{m}, make([]float32, m))
				for i := range wsc.Float32s() {
					wsc.Float32s()[i] = float32(1e-4) * float32(1+i%5/4)
				}
				// Every other case to int8 codes, zero point -3.
				signedY := ci%2 == 1
				zy := 128
				if signedY {
					zy = -3
				}
				yzp := int8Tensor(signedY, nil, func(int) int { return zy })
				q := gr.AddNode("QLinearConv", "qc", []*graph.Value{xv, gr.AddInitializer("xs", graph.Float32Tensor(nil, []float32{0.5})), gr.Value("xzp"),
					gr.Value("w"), gr.AddInitializer("ws", wsc), gr.Value("wzp"), gr.AddInitializer("ys", ysc), gr.AddInitializer("yzp", yzp), gr.AddInitializer("bias", biasT)}, []string{"q"}, attrs...)
				gr.AddOutput(q.Output())
				s, err := NewSession(md, Options{Threads: threads})
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				res, err := s.Run(feeds)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				got := graph.Elems[int32](res["y"])
				if !slices.Equal(got, want) {
					i := 0
					for got[i] == want[i] {
						i++
					}
					t.Fatalf("%s: y[%d] = %d, want %d (of %d)", name, i, got[i], want[i], len(want))
				}
				lo, hi, _ := QuantRange(yzp.DType)
				codes := readInt64s(res["q"])
				for i, v := range want {
					mu := float32(0.5) * wsc.Float32s()[(i/plane)%m] / ysc.Float32s()[0]
					r := max(lo, min(hi, math.RoundToEven(float64(float32(v+bias[(i/plane)%m])*mu))+float64(zy)))
					if codes[i] != int64(r) {
						t.Fatalf("%s: QLinearConv %s code %d is %d, want %d", name, yzp.DType.Short(), i, codes[i], int64(r))
					}
				}
			}
		}
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
