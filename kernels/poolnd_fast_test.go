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

// randomPoolND draws N-D pooling attributes (1 to 3 spatial axes, now and
// then 4 on smaller sizes; windows 1-4, strides 1-3, dilations 1-2, pads up
// to the window less one on either side, ceil mode, count_include_pad,
// auto_pad) and a spatial input size about the window's.
func randomPoolND(r *rand.Rand) (*poolNDParams, []int) {
	n := 1 + r.IntN(3)
	if r.IntN(12) == 0 {
		n = 4 // the kernels take any number of axes
	}
	p := &poolNDParams{autoPad: "NOTSET", ceil: r.IntN(2) == 0, countIncludePad: r.IntN(2) == 0,
		kernel: make([]int, n), strides: make([]int, n), dilations: make([]int, n), pads: make([]int, 2*n)}
	in := make([]int, n)
	dilated := r.IntN(3) == 0
	for j := 0; j < n; j++ {
		p.kernel[j], p.strides[j], p.dilations[j] = 1+r.IntN(4), 1+r.IntN(3), 1
		if dilated {
			p.dilations[j] = 1 + r.IntN(2)
		}
		p.pads[j], p.pads[n+j] = r.IntN(p.kernel[j]), r.IntN(p.kernel[j])
		ek := p.dilations[j]*(p.kernel[j]-1) + 1
		in[j] = max(1, ek-2+r.IntN(12))
		if n == 4 {
			in[j] = max(1, ek-1+r.IntN(4))
		}
	}
	p.autoPad = randomAutoPad(r)
	if p.autoPad != "NOTSET" {
		clear(p.pads)
	}
	if r.IntN(6) == 0 { // the common video pools' non-overlapping windows
		for j := 0; j < n; j++ {
			p.kernel[j] = 1 + r.IntN(2)
			p.strides[j], p.dilations[j], p.pads[j], p.pads[n+j] = p.kernel[j], 1, 0, 0
		}
	}
	return p, in
}

// poolNDValues fills x with normal values, or with few distinct ones (so
// that windows tie: +0 against -0, equal maxima), and now and then NaNs of
// two payloads, infinities and signed zeros.
func poolNDValues(r *rand.Rand, x []float32) {
	specials := []float32{math.Float32frombits(0x7fc00001), math.Float32frombits(0xffc00002),
		float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.Copysign(0, -1)), 0}
	few := r.IntN(3) == 0
	rate := 4 + r.IntN(60)
	for i := range x {
		switch {
		case r.IntN(rate) == 0:
			x[i] = specials[r.IntN(len(specials))]
		case few:
			x[i] = []float32{-1, 0, float32(math.Copysign(0, -1)), 1}[r.IntN(4)]
		default:
			x[i] = float32(r.NormFloat64() * 3)
		}
	}
}

// TestPoolNDFastMatchesPlane: maxND and avgND give poolNDPlane's bits (the
// window-by-window form they replaced: NaN payloads, signed zeros, all-
// padding windows and averages included) on 1500 random attribute sets
// over 1 to 4 spatial axes, 2 x 1-3 planes, with the input read in place
// and through a padded copy, and on the video nets' pools.
func TestPoolNDFastMatchesPlane(t *testing.T) {
	r := rand.New(rand.NewPCG(31, 32))
	ctx := &Context{Threads: 1, pool: newBufferPool()}
	ran := map[string]int{}
	// The video nets' pools first, on sizes like theirs (wider rows than the
	// random ones: TapRows' 3x3 kernel, several vectors a row).
	video := []struct{ in, k, s, pads []int }{
		{[]int{8, 28, 28}, []int{2, 2, 2}, []int{2, 2, 2}, []int{0, 0, 0, 0, 0, 0}},
		{[]int{7, 29, 27}, []int{2, 2, 2}, []int{2, 2, 2}, []int{0, 0, 0, 0, 0, 0}},
		{[]int{4, 40, 40}, []int{1, 2, 2}, []int{1, 2, 2}, []int{0, 0, 0, 0, 0, 0}},
		{[]int{5, 33, 35}, []int{3, 3, 3}, []int{2, 2, 2}, []int{1, 1, 1, 1, 1, 1}},
		{[]int{4, 34, 34}, []int{1, 3, 3}, []int{1, 2, 2}, []int{0, 1, 1, 0, 1, 1}},
		{[]int{4, 21, 22}, []int{3, 3, 3}, []int{1, 1, 1}, []int{1, 1, 1, 1, 1, 1}},
		{[]int{4, 20, 20}, []int{1, 3, 3}, []int{1, 1, 1}, []int{0, 1, 1, 0, 1, 1}},
		{[]int{8, 7, 7}, []int{2, 7, 7}, []int{1, 1, 1}, []int{0, 0, 0, 0, 0, 0}},
	}
	defer func() { noRawRows = false }()
	for trial := 0; trial < len(video)+1500; trial++ {
		noRawRows = trial%4 == 3 // now and then the inputs a padded copy that need none
		var p *poolNDParams
		var in []int
		if trial < len(video) {
			v := video[trial]
			p = &poolNDParams{kernel: v.k, strides: v.s, dilations: []int{1, 1, 1}, pads: v.pads, autoPad: "NOTSET",
				ceil: trial%2 == 1, countIncludePad: trial%3 == 1}
			in = v.in
		} else {
			p, in = randomPoolND(r)
		}
		ax, err := p.axes(in)
		if err != nil {
			continue
		}
		g := newPoolNDGeom(ax)
		ran["all"]++
		ran[fmt.Sprintf("%d-D", len(in))]++
		for j := range ax {
			if ax[j].d > 1 {
				ran["dilated"]++
				break
			}
		}
		if p.ceil {
			ran["ceil"]++
		}
		if g.direct {
			ran["in place"]++
		}
		if ax[len(ax)-1].k == 2 && ax[len(ax)-1].s == 2 && ax[len(ax)-1].d == 1 {
			ran["pairs along the rows"]++
		}
		if max3 := ax[len(ax)-1]; max3.k == 3 && max3.s == 2 && max3.d == 1 {
			ran["threes at stride 2 along the rows"]++
		}
		if noRawRows {
			noRawRows = false
			if _, _, _, raw, _ := maxNDPath(g); raw {
				ran["max: rows that need no copy padded whole"]++
			}
			noRawRows = true
		}
		switch lead, _, mult, raw, split := maxNDPath(g); {
		case mult > 1 || len(lead) < len(ax):
			ran["max: leading axes as planes"]++
		case raw:
			ran["max: rows as they lie"]++
		case split:
			ran["max: rows split by phase"]++
		default:
			ran["max: rows padded whole"]++
		}
		if ax[len(ax)-1].s > 2 {
			ran["column stride over 2"]++
		}
		planes := 2 * (1 + r.IntN(3))
		inPlane, outPlane := 1, 1
		for _, a := range ax {
			inPlane *= a.in
			outPlane *= a.out
		}
		x := make([]float32, planes*inPlane)
		poolNDValues(r, x)
		ones := make([]float32, len(offsetsCount(ax)))
		fillSlice(ones, 1)
		div := ndDivisors(ax, p.countIncludePad)
		for _, kind := range []string{"max", "avg"} {
			want, got := make([]float32, planes*outPlane), make([]float32, planes*outPlane)
			for nc := 0; nc < planes; nc++ {
				poolNDPlane(ax, p, kind, x[nc*inPlane:(nc+1)*inPlane], want[nc*outPlane:(nc+1)*outPlane], nil, nc, inPlane, outPlane)
			}
			for i := range got {
				got[i] = 12345 // every output must be written
			}
			if kind == "max" {
				maxND(ctx, g, x, got, 0, planes)
			} else {
				avgND(ctx, g, ones, div, x, got, 0, planes)
			}
			for i := range want {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
					t.Fatalf("trial %d %s %+v on %v (out %v): [%d] = %v (%#x), poolNDPlane %v (%#x)",
						trial, kind, *p, in, outDims(ax), i, got[i], math.Float32bits(got[i]), want[i], math.Float32bits(want[i]))
				}
			}
		}
	}
	t.Logf("cases run: %v", ran)
	for what, least := range map[string]int{"all": 1200, "1-D": 300, "2-D": 300, "3-D": 300, "4-D": 50, "dilated": 200, "ceil": 400,
		"in place": 150, "pairs along the rows": 100, "threes at stride 2 along the rows": 50, "column stride over 2": 200,
		"max: leading axes as planes": 50, "max: rows as they lie": 150, "max: rows split by phase": 150, "max: rows padded whole": 150,
		"max: rows that need no copy padded whole": 80} {
		if ran[what] < least {
			t.Errorf("%d cases %s, want %d or more", ran[what], what, least)
		}
	}
	if n, _ := ctx.pool.idle(); len(ctx.pool.out) != 0 || n == 0 {
		t.Errorf("scratch buffers not returned: %d out, %d idle", len(ctx.pool.out), n)
	}
}

// offsetsCount is a slice as long as ax's window has taps.
func offsetsCount(ax []poolNDAxis) []struct{} {
	n := 1
	for _, a := range ax {
		n *= a.k
	}
	return make([]struct{}, n)
}

func outDims(ax []poolNDAxis) []int {
	var o []int
	for _, a := range ax {
		o = append(o, a.out)
	}
	return o
}

// TestPoolNDNodeThreads: MaxPool and AveragePool nodes over three spatial
// axes give on 1 and 2 threads the bits of the window-by-window path
// (noFastPoolND), on random attribute sets of 3-D windows (the 2-thread
// runs split the planes however little work they are).
func TestPoolNDNodeThreads(t *testing.T) {
	r := rand.New(rand.NewPCG(41, 42))
	run := func(op string, x *graph.Tensor, threads int, attrs []*onnxpb.AttributeProto) []float32 {
		t.Helper()
		m := graph.NewModel(graph.Opset{Domain: "", Version: 19})
		m.Graph.AddOutput(m.Graph.AddNode(op, "pool", []*graph.Value{m.Graph.AddInput("x", graph.Float, nil)}, []string{"y"}, attrs...).Outputs[0])
		s, err := NewSession(m, Options{Threads: threads})
		if err != nil {
			t.Fatal(err)
		}
		res, err := s.Run(map[string]*graph.Tensor{"x": x})
		if err != nil {
			t.Fatal(err)
		}
		return res["y"].Float32s()
	}
	ran := 0
	for trial := 0; ran < 60 && trial < 400; trial++ {
		p, in := randomPoolND(r)
		if len(in) != 3 {
			continue
		}
		if _, err := p.axes(in); err != nil {
			continue
		}
		i64 := func(v []int) []int64 {
			out := make([]int64, len(v))
			for i, x := range v {
				out[i] = int64(x)
			}
			return out
		}
		attrs := []*onnxpb.AttributeProto{
			graph.AttrIntsOf("kernel_shape", i64(p.kernel)...), graph.AttrIntsOf("strides", i64(p.strides)...),
			graph.AttrIntsOf("dilations", i64(p.dilations)...), graph.AttrIntOf("ceil_mode", map[bool]int64{false: 0, true: 1}[p.ceil]),
			graph.AttrIntOf("count_include_pad", map[bool]int64{false: 0, true: 1}[p.countIncludePad]),
		}
		if p.autoPad != "NOTSET" {
			attrs = append(attrs, graph.AttrStringOf("auto_pad", p.autoPad))
		} else {
			attrs = append(attrs, graph.AttrIntsOf("pads", i64(p.pads)...))
		}
		x := graph.NewTensor(graph.Float, append([]int{2, 1 + r.IntN(9)}, in...))
		poolNDValues(r, x.Float32s())
		for _, op := range []string{"MaxPool", "AveragePool"} {
			noFastPoolND = true
			want := run(op, x, 1, attrs)
			noFastPoolND = false
			for _, threads := range []int{1, 2} {
				if threads == 2 {
					parallel.ForceSplit(2) // the planes split however few
				}
				got := run(op, x, threads, attrs)
				parallel.ForceSplit(0)
				for i := range want {
					if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
						t.Fatalf("trial %d %s %+v on %v, %d threads: [%d] = %v, window by window %v", trial, op, *p, x.Shape, threads, i, got[i], want[i])
					}
				}
			}
		}
		ran++
	}
	if ran < 60 {
		t.Fatalf("only %d cases ran", ran)
	}
}

// BenchmarkPoolND: the video pools of the op survey and a few more, one
// thread (maxND / avgND on whole inputs).
func BenchmarkPoolND(b *testing.B) {
	for _, c := range []struct {
		name           string
		kind           string
		in, k, s, pads []int
	}{
		{"max 2x2x2 s2 8x28x28", "max", []int{8, 28, 28}, []int{2, 2, 2}, []int{2, 2, 2}, []int{0, 0, 0, 0, 0, 0}},
		{"avg 2x2x2 s2 8x28x28", "avg", []int{8, 28, 28}, []int{2, 2, 2}, []int{2, 2, 2}, []int{0, 0, 0, 0, 0, 0}},
		{"max 1x2x2 s(1,2,2) 8x56x56", "max", []int{8, 56, 56}, []int{1, 2, 2}, []int{1, 2, 2}, []int{0, 0, 0, 0, 0, 0}},
		{"max 3x3x3 s2 p1 16x56x56", "max", []int{16, 56, 56}, []int{3, 3, 3}, []int{2, 2, 2}, []int{1, 1, 1, 1, 1, 1}},
		{"max 1x3x3 s(1,2,2) p(0,1,1) 8x56x56", "max", []int{8, 56, 56}, []int{1, 3, 3}, []int{1, 2, 2}, []int{0, 1, 1, 0, 1, 1}},
		{"max 3x3x3 s1 p1 8x28x28", "max", []int{8, 28, 28}, []int{3, 3, 3}, []int{1, 1, 1}, []int{1, 1, 1, 1, 1, 1}},
		{"avg 3x3x3 s1 p1 8x28x28", "avg", []int{8, 28, 28}, []int{3, 3, 3}, []int{1, 1, 1}, []int{1, 1, 1, 1, 1, 1}},
		{"avg 3x3x3 s2 p1 16x56x56", "avg", []int{16, 56, 56}, []int{3, 3, 3}, []int{2, 2, 2}, []int{1, 1, 1, 1, 1, 1}},
	} {
		b.Run(c.name, func(b *testing.B) {
			p := &poolNDParams{kernel: c.k, strides: c.s, dilations: []int{1, 1, 1}, pads: c.pads, autoPad: "NOTSET"}
			ax, err := p.axes(c.in)
			if err != nil {
				b.Fatal(err)
			}
			g := newPoolNDGeom(ax)
			planes := 64
			inPlane, outPlane := 1, 1
			for _, a := range ax {
				inPlane *= a.in
				outPlane *= a.out
			}
			r := rand.New(rand.NewPCG(1, 2))
			x := make([]float32, planes*inPlane)
			for i := range x {
				x[i] = float32(r.NormFloat64())
			}
			y := make([]float32, planes*outPlane)
			ones := make([]float32, len(offsetsCount(ax)))
			fillSlice(ones, 1)
			div := ndDivisors(ax, false)
			ctx := &Context{Threads: 1, pool: newBufferPool()}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if c.kind == "max" {
					maxND(ctx, g, x, y, 0, planes)
				} else {
					avgND(ctx, g, ones, div, x, y, 0, planes)
				}
			}
		})
	}
}
