package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/graph/onnxpb"
	"github.com/onnxq/onnxq/kernels/parallel"
)

func gsAttrs(mode, pad string, align int64) []*onnxpb.AttributeProto {
	return []*onnxpb.AttributeProto{graph.AttrStringOf("mode", mode), graph.AttrStringOf("padding_mode", pad), graph.AttrIntOf("align_corners", align)}
}

func closeTo(got, want float64) bool {
	return math.Abs(got-want) <= 1e-5+1e-5*math.Abs(want)
}

// Every mode x padding x align_corners on X = [[1 2 4] [8 16 32]] (a second
// channel holds -X) at points inside and outside [-1, 1], listed (x, y).
// Expected values are worked out from the spec's formulas in exact
// arithmetic; e.g. linear, zeros, align 1 at (-1.5, -1): x = -0.5 halfway
// between the missing column -1 and column 0, y = 0, so 0.5 * X[0][0] = 0.5;
// reflection, align 0 at (-1.5, -1): x = -1.25 mirrors at -0.5 to 0.25, so
// 0.75 * 1 + 0.25 * 2 = 1.25.
func TestGridSampleModesPaddings(t *testing.T) {
	x := moF32([]int{1, 2, 2, 3}, 1, 2, 4, 8, 16, 32, -1, -2, -4, -8, -16, -32)
	grid := moF32([]int{1, 1, 6, 2},
		-1.5, -1, // left of the corners
		1.4, 1, // right
		0.2, 3, // far below
		-0.5, 0.25, // inside
		-3.2, -2.6, // far out on both axes: several reflections
		1.0/3, -0.9, // inside, near the top
	)
	cases := []struct {
		mode, pad string
		align     int64
		want      []float64
	}{
		{"nearest", "zeros", 0, []float64{0, 0, 0, 8, 0, 4}},
		{"nearest", "zeros", 1, []float64{1, 32, 0, 8, 0, 2}},
		{"nearest", "border", 0, []float64{1, 32, 16, 8, 1, 4}},
		{"nearest", "border", 1, []float64{1, 32, 16, 8, 1, 2}},
		{"nearest", "reflection", 0, []float64{1, 32, 2, 8, 32, 4}},
		{"nearest", "reflection", 1, []float64{1, 32, 2, 8, 32, 2}},
		{"linear", "zeros", 0, []float64{0, 0, 0, 7.8125, 0, 1.8}},
		{"linear", "zeros", 1, []float64{0.5, 19.2, 0, 8.0625, 0, 3.6}},
		{"linear", "border", 0, []float64{1, 32, 20.8, 7.8125, 1, 3}},
		{"linear", "border", 1, []float64{1, 32, 19.2, 8.0625, 1, 3.6}},
		{"linear", "reflection", 0, []float64{1.25, 30.4, 2.6, 7.8125, 32, 3}},
		{"linear", "reflection", 1, []float64{1.5, 25.6, 2.4, 8.0625, 23.76, 3.6}},
		{"cubic", "zeros", 0, []float64{0.0164794921875, -1.13146875, 0, 9.201675415039062, 0, -0.4995}},
		{"cubic", "zeros", 1, []float64{0.40625, 21.312, 0, 9.031448364257812, 0, 3.9208333333333334}},
		{"cubic", "border", 0, []float64{0.34375, 34.625, 21.346, 7.416259765625, 1, 0.754875}},
		// cubic border pads the taps, not the coordinate (ONNX Runtime, PyTorch):
		// point 0 at x = -0.5 reads pixel 0 three times and pixel 1 once
		{"cubic", "border", 1, []float64{0.90625, 33.728, 19.584, 7.18927001953125, 0.832, 3.4949583333333334}},
		{"cubic", "reflection", 0, []float64{-0.361328125, 35.785609375, -0.833828125, 7.416259765625, 35.9234, -0.804375}},
		{"cubic", "reflection", 1, []float64{1.21875, 28.096, 2.496, 7.0506591796875, 28.099008, 2.996583333333333}},
	}
	old := map[string]string{"linear": "bilinear", "cubic": "bicubic", "nearest": "nearest"}
	for _, c := range cases {
		for _, opset := range []int64{16, 20} {
			mode := c.mode
			if opset == 16 {
				mode = old[mode]
			}
			name := fmt.Sprintf("opset %d %s %s align %d", opset, mode, c.pad, c.align)
			out := moMust(t, "GridSample", opset, gsAttrs(mode, c.pad, c.align), 1, x, grid)[0]
			if fmt.Sprint(out.Shape) != "[1 2 1 6]" {
				t.Fatalf("%s: shape %v", name, out.Shape)
			}
			y := out.Float32s()
			for i, w := range c.want {
				if !closeTo(float64(y[i]), w) || !closeTo(float64(y[6+i]), -w) {
					t.Errorf("%s: point %d = %g (channel 1: %g), want %g", name, i, y[i], y[6+i], w)
				}
			}
		}
	}
}

// Volumetric input at opset 20: X[d][h][w] = 1 + 4d + 2h + w over 2x2x2,
// at the center, at an inside point and at one outside on two axes.
func TestGridSample5D(t *testing.T) {
	x := moF32([]int{1, 1, 2, 2, 2}, 1, 2, 3, 4, 5, 6, 7, 8)
	grid := moF32([]int{1, 1, 1, 3, 3}, 0, 0, 0, 0.5, -0.5, 0.25, 1.5, -2, 0.5) // (x, y, z)
	cases := []struct {
		mode, pad string
		align     int64
		want      []float64
	}{
		// center: the mean 4.5 when linear; nearest rounds 0.5 to 0 on each axis
		{"nearest", "zeros", 0, []float64{1, 6, 0}},
		{"nearest", "zeros", 1, []float64{1, 6, 6}},
		{"nearest", "border", 0, []float64{1, 6, 6}},
		{"nearest", "reflection", 0, []float64{1, 6, 8}},
		{"nearest", "reflection", 1, []float64{1, 6, 6}},
		{"linear", "zeros", 0, []float64{4.5, 5, 0}},
		{"linear", "zeros", 1, []float64{4.5, 4.75, 1.875}},
		{"linear", "border", 0, []float64{4.5, 5, 6}},
		{"linear", "border", 1, []float64{4.5, 4.75, 5}},
		{"linear", "reflection", 0, []float64{4.5, 5, 7}},
		{"linear", "reflection", 1, []float64{4.5, 4.75, 5.75}},
		// zeros padding: the taps outside read 0, so the weights 1.1875 per axis
		// inside scale the mean: 4.5 * 1.1875^3
		{"cubic", "zeros", 0, []float64{7.5355224609375, 5.796875, 0}},
		{"cubic", "zeros", 1, []float64{7.5355224609375, 7.3109753131866455, 2.1364974975585938}},
		{"cubic", "border", 0, []float64{4.5, 5.09375, 6}},
		{"cubic", "border", 1, []float64{4.5, 4.78515625, 5.01171875}},
		{"cubic", "reflection", 0, []float64{4.5, 5.09375, 7}},
		{"cubic", "reflection", 1, []float64{4.5, 4.890625, 6.21875}},
	}
	for _, c := range cases {
		name := fmt.Sprintf("%s %s align %d", c.mode, c.pad, c.align)
		out := moMust(t, "GridSample", 20, gsAttrs(c.mode, c.pad, c.align), 1, x, grid)[0]
		if fmt.Sprint(out.Shape) != "[1 1 1 1 3]" {
			t.Fatalf("%s: shape %v", name, out.Shape)
		}
		for i, w := range c.want {
			if y := float64(out.Float32s()[i]); !closeTo(y, w) {
				t.Errorf("%s: point %d = %g, want %g", name, i, y, w)
			}
		}
	}
}

// nestedSample reads the spec directly: interpolate along the outermost
// axis, each tap being the nested sample of the sub-volume it picks. pt is in
// axis order (the grid's vector reversed).
func nestedSample(x []float64, dims []int, pt []float64, mode, pad string, align bool) float64 {
	if len(dims) == 0 {
		return x[0]
	}
	n, inner := dims[0], graph.Numel(dims[1:])
	size := float64(n)
	pos, lo, hi := ((pt[0]+1)*size-1)/2, -0.5, size-0.5
	if align {
		pos, lo, hi = (pt[0]+1)/2*(size-1), 0, size-1
	}
	mirror := func(v float64) float64 {
		for hi > lo && (v < lo || v > hi) {
			if v < lo {
				v = 2*lo - v
			}
			if v > hi {
				v = 2*hi - v
			}
		}
		return max(lo, min(hi, v))
	}
	if mode == "nearest" {
		pos = math.RoundToEven(pos)
	}
	if pos < lo || pos > hi {
		switch pad {
		case "border":
			if mode != "cubic" { // cubic pads only its taps (at below)
				pos = max(0, min(size-1, pos))
			}
		case "reflection":
			pos = mirror(pos)
		}
	}
	at := func(i int) float64 {
		if i < 0 || i >= n {
			switch pad {
			case "zeros":
				return 0
			case "border":
				i = max(0, min(n-1, i))
			default:
				i = int(mirror(float64(i)))
			}
		}
		return nestedSample(x[i*inner:(i+1)*inner], dims[1:], pt[1:], mode, pad, align)
	}
	f := math.Floor(pos)
	i, t := int(f), pos-f
	switch mode {
	case "nearest":
		return at(i)
	case "linear":
		return (1-t)*at(i) + t*at(i+1)
	}
	keys := func(s float64) float64 { // A = -0.75
		s = math.Abs(s)
		if s <= 1 {
			return 1.25*s*s*s - 2.25*s*s + 1
		}
		return -0.75*s*s*s + 3.75*s*s - 6*s + 3
	}
	return keys(t+1)*at(i-1) + keys(t)*at(i) + keys(1-t)*at(i+1) + keys(2-t)*at(i+2)
}

// The kernel, run in blocks of points across batch boundaries, on one
// thread and split over two, gives the nested reading of the spec on 1, 2 and 3 spatial axes,
// in float32 and float64, for every mode, padding and align_corners.
func TestGridSampleMatchesNested(t *testing.T) {
	defer parallel.ForceSplit(parallel.ForcedSplit())
	rng := rand.New(rand.NewPCG(16, 20))
	// 3 batches, so that neither the 8 chunks of 2 forced threads nor the
	// blocks of one unsplit chunk end where a batch does
	for i, sh := range []struct{ in, out []int }{
		{[]int{3, 3, 5}, []int{300}},
		{[]int{3, 3, 4, 5}, []int{17, 19}},
		{[]int{3, 2, 3, 4, 5}, []int{5, 6, 7}},
		{[]int{3, 3, 4, 5}, []int{17, 19}},
	} {
		parallel.ForceSplit([]int{0, 0, 0, 2}[i])
		r := len(sh.in) - 2
		xv := make([]float64, graph.Numel(sh.in))
		for i := range xv {
			xv[i] = float64(float32(rng.NormFloat64() * 4))
		}
		gshape := append(append([]int{sh.in[0]}, sh.out...), r)
		gv := make([]float64, graph.Numel(gshape))
		for i := range gv {
			gv[i] = float64(float32(rng.Float64()*3.2 - 1.6))
			if i%17 == 0 { // the corners exactly
				gv[i] = float64(1 - 2*(i/17%2))
			}
		}
		for _, mode := range []string{"nearest", "linear", "cubic"} {
			for _, pad := range []string{"zeros", "border", "reflection"} {
				for _, align := range []int64{0, 1} {
					for _, dt := range []graph.DataType{graph.Float, graph.Double} {
						name := fmt.Sprintf("%v %s %s align %d %s, split %d", sh.in, mode, pad, align, dt.Short(), parallel.ForcedSplit())
						var xt, gt *graph.Tensor
						if dt == graph.Float {
							xt, gt = graph.Float32Tensor(sh.in, toF32(xv)), graph.Float32Tensor(gshape, toF32(gv))
						} else {
							xt, gt = tensorOf(t, dt, sh.in, xv), tensorOf(t, dt, gshape, gv)
						}
						outs, err := moRun(t, "GridSample", 20, 2, gsAttrs(mode, pad, align), 1, xt, gt)
						if err != nil {
							t.Fatalf("%s: %v", name, err)
						}
						got, _ := asFloat64s(outs[0])
						n, c, pts := sh.in[0], sh.in[1], graph.Numel(sh.out)
						plane := graph.Numel(sh.in[2:])
						pt := make([]float64, r)
						for b := range n {
							for p := range pts {
								for d := range r {
									pt[d] = gv[(b*pts+p)*r+r-1-d]
								}
								for ch := range c {
									want := nestedSample(xv[(b*c+ch)*plane:], sh.in[2:], pt, mode, pad, align == 1)
									if g := got[(b*c+ch)*pts+p]; math.Abs(g-want) > 1e-4+1e-4*math.Abs(want) {
										t.Fatalf("%s: batch %d point %d (%v) channel %d = %g, want %g", name, b, p, pt, ch, g, want)
									}
								}
							}
						}
					}
				}
			}
		}
	}
}

func toF32(v []float64) []float32 {
	out := make([]float32, len(v))
	for i, f := range v {
		out[i] = float32(f)
	}
	return out
}

// Outside the input under zeros padding a tap reads 0, not weight 0 times
// the pixel: an Inf pixel does not leak NaN into points that miss it. A NaN
// grid point gives NaN (or 0 under zeros) without a panic; integer input at
// opset 20 is sampled in floats and truncated.
func TestGridSampleEdges(t *testing.T) {
	inf := float32(math.Inf(1))
	x := moF32([]int{1, 1, 2, 2}, inf, 1, 1, 1)
	grid := moF32([]int{1, 1, 2, 2}, 5, 5, 1, 1) // far outside; the bottom-right corner
	for _, mode := range []string{"bilinear", "nearest", "bicubic"} {
		y := moMust(t, "GridSample", 16, gsAttrs(mode, "zeros", 0), 1, x, grid)[0].Float32s()
		if y[0] != 0 {
			t.Errorf("%s: far outside an Inf corner gives %g, want 0", mode, y[0])
		}
	}
	y := moMust(t, "GridSample", 16, gsAttrs("bilinear", "zeros", 0), 1, x, grid)[0].Float32s()
	if y[1] != 0.25 { // the corner of pixel (1, 1): a quarter of it
		t.Errorf("bilinear at the corner = %g, want 0.25", y[1])
	}
	nan := float32(math.NaN())
	for _, pad := range []string{"zeros", "border", "reflection"} {
		for _, mode := range []string{"bilinear", "nearest", "bicubic"} {
			_, err := moRun(t, "GridSample", 16, 1, gsAttrs(mode, pad, 1), 1, moF32([]int{1, 1, 1, 3}, 1, 2, 3),
				moF32([]int{1, 1, 3, 2}, nan, 0, float32(math.Inf(-1)), 0, 1e30, nan))
			if err != nil {
				t.Errorf("%s %s with NaN and Inf in the grid: %v", mode, pad, err)
			}
		}
	}
	xi := tensorOf(t, graph.Int32, []int{1, 1, 1, 2}, []int32{0, 7})
	xn := tensorOf(t, graph.Int32, []int{1, 1, 1, 2}, []int32{0, -7})
	g0 := moF32([]int{1, 1, 1, 2}, 0, 0) // halfway between the two pixels
	moWant(t, "int32", moMust(t, "GridSample", 20, nil, 1, xi, g0)[0], graph.Int32, []int{1, 1, 1, 1}, []int32{3})
	moWant(t, "negative int32", moMust(t, "GridSample", 20, nil, 1, xn, g0)[0], graph.Int32, []int{1, 1, 1, 1}, []int32{-3})
	// an empty grid gives an empty output
	out := moMust(t, "GridSample", 16, nil, 1, x, moF32([]int{1, 0, 3, 2}))
	if fmt.Sprint(out[0].Shape) != "[1 1 0 3]" {
		t.Errorf("empty grid: shape %v, want [1 1 0 3]", out[0].Shape)
	}
}

func TestGridSampleBadInput(t *testing.T) {
	x4 := moF32([]int{1, 1, 2, 2}, 1, 2, 3, 4)
	g4 := moF32([]int{1, 1, 1, 2}, 0, 0)
	x5 := moF32([]int{1, 1, 1, 2, 2}, 1, 2, 3, 4)
	g5 := moF32([]int{1, 1, 1, 1, 3}, 0, 0, 0)
	for _, c := range []struct {
		what     string
		opset    int64
		attrs    []*onnxpb.AttributeProto
		in       []*graph.Tensor
		fragment string
	}{
		{"5-D at opset 16", 16, nil, []*graph.Tensor{x5, g5}, "needs a 4-D input"},
		{"2-D at opset 20", 20, nil, []*graph.Tensor{moF32([]int{2, 2}, 1, 2, 3, 4), moF32([]int{2, 1}, 0, 0)}, "rank 3 or more"},
		{"grid of another rank", 20, nil, []*graph.Tensor{x4, g5}, "does not fit input"},
		{"grid vectors of 3 for 2 axes", 20, nil, []*graph.Tensor{x4, moF32([]int{1, 1, 1, 3}, 0, 0, 0)}, "does not fit input"},
		{"grid batch 2 for input batch 1", 16, nil, []*graph.Tensor{x4, moF32([]int{2, 1, 1, 2}, 0, 0, 0, 0)}, "does not fit input"},
		{"int grid", 20, nil, []*graph.Tensor{x4, moI64([]int{1, 1, 1, 2}, 0, 0)}, "grid must be a float"},
		{"empty input axis", 20, nil, []*graph.Tensor{moF32([]int{1, 1, 0, 2}), g4}, "empty spatial axis"},
		{"opset 20 mode at 16", 16, gsAttrs("linear", "zeros", 0), []*graph.Tensor{x4, g4}, `mode "linear"`},
		{"opset 16 mode at 20", 20, gsAttrs("bicubic", "zeros", 0), []*graph.Tensor{x4, g4}, `mode "bicubic"`},
		{"unknown padding", 20, gsAttrs("linear", "wrap", 0), []*graph.Tensor{x4, g4}, `padding_mode "wrap"`},
		{"string input", 20, nil, []*graph.Tensor{tensorOf(t, graph.String, []int{1, 1, 1, 1}, [][]byte{[]byte("a")}), g4}, "string input is not supported"},
		{"missing grid", 20, nil, []*graph.Tensor{x4}, "expected 2 inputs"},
	} {
		_, err := moRun(t, "GridSample", c.opset, 1, c.attrs, 1, c.in...)
		moWantErr(t, c.what, err, c.fragment)
	}
}

// BenchmarkGridSampleBilinear is deformable-attention sized: 8 heads of 32
// channels sampled at 4 points of 1000 queries from a 64x64 map.
func BenchmarkGridSampleBilinear(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	x := make([]float32, 8*32*64*64)
	for i := range x {
		x[i] = rng.Float32()
	}
	g := make([]float32, 8*1000*4*2)
	for i := range g {
		g[i] = rng.Float32()*2.2 - 1.1
	}
	xt, gt := graph.Float32Tensor([]int{8, 32, 64, 64}, x), graph.Float32Tensor([]int{8, 1000, 4, 2}, g)
	k, err := newGridSample(&NodeInfo{Node: &graph.Node{OpType: "GridSample"}, Opset: 16})
	if err != nil {
		b.Fatal(err)
	}
	for _, threads := range []int{1, 2} {
		b.Run(fmt.Sprintf("threads=%d", threads), func(b *testing.B) {
			ctx := &Context{Threads: threads}
			for range b.N {
				if _, err := k.Run(ctx, []*graph.Tensor{xt, gt}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
