package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// randomPool draws pooling attributes and an input size they fit: windows up
// to 7 (and SPP's 9 and 13), strides and dilations up to 3, pads smaller than
// the window, ceil mode, count_include_pad, auto_pad, 1-D and 2-D.
func randomPool(r *rand.Rand) (*poolParams, int, int) {
	k := func() int {
		if r.IntN(8) == 0 {
			return []int{9, 13}[r.IntN(2)]
		}
		return 1 + r.IntN(7)
	}
	p := &poolParams{kh: k(), kw: k(), sh: 1 + r.IntN(3), sw: 1 + r.IntN(3), dh: 1, dw: 1,
		ceil: r.IntN(2) == 0, countIncludePad: r.IntN(2) == 0, spatial: 2, autoPad: "NOTSET"}
	if r.IntN(3) == 0 {
		p.dh, p.dw = 1+r.IntN(3), 1+r.IntN(3)
	}
	pad := func(k int) int { return r.IntN(k) }
	p.padT, p.padL, p.padB, p.padR = pad(p.kh), pad(p.kw), pad(p.kh), pad(p.kw)
	p.autoPad = randomAutoPad(r)
	if p.autoPad != "NOTSET" {
		p.padT, p.padL, p.padB, p.padR = 0, 0, 0, 0
	}
	if r.IntN(5) == 0 { // 1-D
		p.spatial, p.kh, p.sh, p.dh, p.padT, p.padB = 1, 1, 1, 1, 0, 0
	}
	h := p.dh*(p.kh-1) + 1 + r.IntN(30)
	if p.spatial == 1 {
		h = 1
	}
	w := p.dw*(p.kw-1) + 1 + r.IntN(40)
	return p, h, w
}

// TestPoolRowsMatchesReference: the separable vector path gives the window-
// by-window reference's results on 600 random shapes and attribute sets:
// MaxPool bit for bit (NaN where a window holds one, -Inf where a window is
// all padding), AveragePool within the rounding of a different summation order.
func TestPoolRowsMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	ctx := &Context{Threads: 1, pool: newBufferPool()}
	ran := map[string]int{}
	for trial := 0; trial < 600; trial++ {
		p, h, w := randomPool(r)
		g, err := p.geometry(h, w)
		if err != nil {
			continue
		}
		ran["all"]++
		if p.ceil {
			ran["ceil"]++
		}
		if p.dh > 1 || p.dw > 1 {
			ran["dilated"]++
		}
		if p.kh >= 9 || p.kw >= 9 {
			ran["large"]++
		}
		if p.padT+p.padL+p.padB+p.padR > 0 {
			ran["padded"]++
		}
		if g.pt == 0 && g.pl == 0 && (g.oh-1)*p.sh+p.dh*(p.kh-1)+1 <= h && (g.ow-1)*p.sw+p.dw*(p.kw-1)+1 <= w {
			ran["inside"]++ // MaxPool takes maxInside
		}
		planes := 1 + r.IntN(3)
		x := make([]float32, planes*h*w)
		abs := make([]float32, len(x))
		for i := range x {
			x[i] = float32(r.NormFloat64() * 3)
			if r.IntN(50) == 0 {
				x[i] = []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))}[r.IntN(3)]
			}
			abs[i] = float32(math.Abs(float64(x[i])))
		}
		n := planes * g.oh * g.ow
		for _, kind := range []string{"max", "avg"} {
			want, got, scale := make([]float32, n), make([]float32, n), make([]float32, n)
			poolReference(g, kind, x, want, nil, 0, planes)
			poolRows(ctx, g, kind, x, got, 0, planes)
			poolReference(g, "avg", abs, scale, nil, 0, planes)
			for i := range want {
				wv, gv := want[i], got[i]
				var ok bool
				if kind == "max" {
					ok = wv == gv || wv != wv && gv != gv
				} else {
					tol := 2 * float64(p.kh*p.kw) * 6e-8 * float64(scale[i])
					ok = math.Abs(float64(wv-gv)) <= tol || wv == gv || wv != wv && gv != gv
				}
				if !ok {
					t.Fatalf("trial %d %s %+v on %dx%d (out %dx%d, pads %d,%d): [%d] = %v, reference %v",
						trial, kind, *p, h, w, g.oh, g.ow, g.pt, g.pl, i, gv, wv)
				}
			}
		}
	}
	t.Logf("cases run: %v", ran)
	if ran["all"] < 500 || ran["ceil"] < 100 || ran["dilated"] < 50 || ran["large"] < 50 || ran["padded"] < 100 || ran["inside"] < 100 {
		t.Errorf("too few cases of some kind: %v", ran)
	}
	if n, _ := ctx.pool.idle(); len(ctx.pool.out) != 0 || n == 0 {
		t.Errorf("scratch buffers not returned: %d out, %d idle", len(ctx.pool.out), n)
	}
}

// TestWindows2x2s2: 2x2 stride-2 pools whose windows lie inside the plane
// (even and odd sizes in floor mode, rows narrower and wider than a vector)
// take windows2x2s2, whose max has the bits of maxInside, the separable
// path it replaced (NaN payloads included: two payloads tell which won), and
// whose max and average agree with the window-by-window reference.
func TestWindows2x2s2(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	ctx := &Context{Threads: 1, pool: newBufferPool()}
	nans := []float32{math.Float32frombits(0x7fc00001), math.Float32frombits(0xffc00002), float32(math.Inf(-1)), float32(math.Copysign(0, -1)), 0}
	for _, hw := range [][2]int{{2, 2}, {3, 5}, {8, 16}, {9, 17}, {14, 31}, {28, 28}, {56, 56}, {57, 113}, {7, 40}} {
		h, w := hw[0], hw[1]
		p := &poolParams{kh: 2, kw: 2, sh: 2, sw: 2, dh: 1, dw: 1, spatial: 2, autoPad: "NOTSET"}
		g, err := p.geometry(h, w)
		if err != nil {
			t.Fatal(err)
		}
		planes := 3
		x := make([]float32, planes*h*w)
		for i := range x {
			x[i] = float32(r.NormFloat64())
			if r.IntN(10) == 0 {
				x[i] = nans[r.IntN(len(nans))]
			}
		}
		n := planes * g.oh * g.ow
		for _, kind := range []string{"max", "avg"} {
			got, want := make([]float32, n), make([]float32, n)
			poolRows(ctx, g, kind, x, got, 0, planes)
			poolReference(g, kind, x, want, nil, 0, planes)
			for i := range got {
				if !(got[i] == want[i] || got[i] != got[i] && want[i] != want[i] || kind == "avg" && math.Abs(float64(got[i]-want[i])) <= 1e-6*(1+math.Abs(float64(want[i])))) {
					t.Fatalf("%dx%d %s: [%d] = %v, reference %v", h, w, kind, i, got[i], want[i])
				}
			}
			if kind == "max" {
				sep := make([]float32, n)
				maxInside(ctx, g, x, sep, 0, planes)
				for i := range got {
					if math.Float32bits(got[i]) != math.Float32bits(sep[i]) {
						t.Fatalf("%dx%d max: [%d] = %#x, maxInside %#x", h, w, i, math.Float32bits(got[i]), math.Float32bits(sep[i]))
					}
				}
			}
		}
	}
}

// TestAvg3x3Pool: 3x3 stride-1 average pools (Inception's), with and
// without count_include_pad and padding, on widths under and over a
// vector, take the one-pass path (vec.Avg3x3Rows) and agree with the
// window-by-window reference; the divisors a pool keeps for the last input
// size are not reused for another (sizes alternating on one poolParams,
// each result against a fresh poolParams').
func TestAvg3x3Pool(t *testing.T) {
	r := rand.New(rand.NewPCG(31, 32))
	ctx := &Context{Threads: 1, pool: newBufferPool()}
	for _, include := range []bool{false, true} {
		for _, pad := range []int{0, 1} {
			kept := &poolParams{kh: 3, kw: 3, sh: 1, sw: 1, dh: 1, dw: 1, padT: pad, padL: pad, padB: pad, padR: pad,
				countIncludePad: include, spatial: 2, autoPad: "NOTSET", divs: new(divCache)}
			for _, hw := range [][2]int{{56, 56}, {5, 7}, {17, 30}, {56, 56}, {3, 3}, {17, 30}} {
				h, w := hw[0], hw[1]
				fresh := *kept
				fresh.divs = nil
				planes := 2
				x := make([]float32, planes*h*w)
				for i := range x {
					x[i] = float32(r.NormFloat64())
				}
				for _, p := range []*poolParams{kept, &fresh} {
					g, err := p.geometry(h, w)
					if err != nil {
						t.Fatal(err)
					}
					n := planes * g.oh * g.ow
					got, want := make([]float32, n), make([]float32, n)
					poolRows(ctx, g, "avg", x, got, 0, planes)
					poolReference(g, "avg", x, want, nil, 0, planes)
					for i := range got {
						if math.Abs(float64(got[i]-want[i])) > 1e-6*(1+math.Abs(float64(want[i]))) {
							t.Fatalf("include=%v pad=%d %dx%d cached=%v: [%d] = %v, reference %v", include, pad, h, w, p.divs != nil, i, got[i], want[i])
						}
					}
				}
			}
		}
	}
}

// TestMaxInsideManyPlanes: SqueezeNet's pools (3x3 stride 2, ceil mode, no
// padding) on 70 to 130 planes, which maxInside reduces a few planes at a
// time (poolRows now gives them to max3x3s2; maxInside still takes other
// windows that stay inside), against the reference, NaN and infinities included.
func TestMaxInsideManyPlanes(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	ctx := &Context{Threads: 1, pool: newBufferPool()}
	p := &poolParams{kh: 3, kw: 3, sh: 2, sw: 2, dh: 1, dw: 1, ceil: true, spatial: 2, autoPad: "NOTSET"}
	for _, tc := range []struct{ c, hw int }{{70, 55}, {130, 27}, {9, 111}, {100, 13}} {
		g, err := p.geometry(tc.hw, tc.hw)
		if err != nil {
			t.Fatal(err)
		}
		x := make([]float32, tc.c*tc.hw*tc.hw)
		for i := range x {
			x[i] = float32(r.NormFloat64())
			if r.IntN(500) == 0 {
				x[i] = []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))}[r.IntN(3)]
			}
		}
		n := tc.c * g.oh * g.ow
		want := make([]float32, n)
		poolReference(g, "max", x, want, nil, 0, tc.c)
		// maxInside itself, and poolRows (which takes max3x3s2 for these).
		for _, path := range []string{"maxInside", "poolRows"} {
			got := make([]float32, n)
			// Planes [1, c) only: a range that does not start at 0 must read its own planes.
			if path == "maxInside" {
				maxInside(ctx, g, x, got, 1, tc.c)
			} else {
				poolRows(ctx, g, "max", x, got, 1, tc.c)
			}
			for i := g.oh * g.ow; i < n; i++ {
				if w, v := want[i], got[i]; w != v && !(w != w && v != v) {
					t.Fatalf("%s, %d planes of %dx%d: [%d] = %v, reference %v", path, tc.c, tc.hw, tc.hw, i, v, w)
				}
			}
			for i := 0; i < g.oh*g.ow; i++ {
				if got[i] != 0 {
					t.Fatalf("%s, %d planes of %dx%d: plane 0 was written outside [1, %d)", path, tc.c, tc.hw, tc.hw, tc.c)
				}
			}
		}
	}
}

// TestPoolStride1Chunks: stride-1 pools with padding (SPP's 5/9/13,
// asymmetric pads, dilation, 1-D), max and average (with and without
// count_include_pad), over 40-90 planes, which poolStride1 lays out padded a
// chunk at a time (chunks of one plane up to all of them), on planes [1, c):
// MaxPool bit for bit the reference's, NaN and infinities included;
// AveragePool within the rounding of its summation order; plane 0 untouched.
func TestPoolStride1Chunks(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	ctx := &Context{Threads: 1, pool: newBufferPool()}
	defer func(n int) { poolChunkFloats = n }(poolChunkFloats)
	cases := []struct {
		p     poolParams
		c, hw int
	}{
		{poolParams{kh: 5, kw: 5, padT: 2, padL: 2, padB: 2, padR: 2}, 90, 20},
		{poolParams{kh: 9, kw: 9, padT: 4, padL: 4, padB: 4, padR: 4}, 40, 13},
		{poolParams{kh: 13, kw: 13, padT: 6, padL: 6, padB: 6, padR: 6}, 40, 13},
		{poolParams{kh: 3, kw: 3, padT: 1, padL: 1, padB: 1, padR: 1, countIncludePad: true}, 40, 17},
		{poolParams{kh: 3, kw: 4, padT: 0, padL: 3, padB: 2, padR: 1}, 50, 17},
		{poolParams{kh: 3, kw: 3, dh: 2, dw: 3, padT: 1, padL: 2, padB: 3, padR: 0}, 50, 19},
		{poolParams{kh: 1, kw: 5, padL: 2, padR: 2, spatial: 1}, 60, 1},
	}
	for _, tc := range cases {
		p := tc.p
		p.sh, p.sw, p.autoPad = 1, 1, "NOTSET"
		p.dh, p.dw = max(p.dh, 1), max(p.dw, 1)
		if p.spatial == 0 {
			p.spatial = 2
		}
		w := tc.hw + 6
		g, err := p.geometry(tc.hw, w)
		if err != nil {
			t.Fatal(err)
		}
		x := make([]float32, tc.c*tc.hw*w)
		abs := make([]float32, len(x))
		for i := range x {
			x[i] = float32(r.NormFloat64())
			abs[i] = float32(math.Abs(float64(x[i])))
		}
		n := tc.c * g.oh * g.ow
		plane := (g.oh + p.dh*(p.kh-1)) * (g.ow + p.dw*(p.kw-1))
		for _, kind := range []string{"max", "avg"} {
			if kind == "max" { // NaN and infinities: only MaxPool's bits are exact
				for i := range x {
					if r.IntN(300) == 0 {
						x[i] = []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))}[r.IntN(3)]
					}
				}
			} else {
				for i := range x {
					x[i] = float32(r.NormFloat64())
					abs[i] = float32(math.Abs(float64(x[i])))
				}
			}
			want, scale := make([]float32, n), make([]float32, n)
			poolReference(g, kind, x, want, nil, 0, tc.c)
			poolReference(g, "avg", abs, scale, nil, 0, tc.c)
			for _, per := range []int{1, 7, tc.c} {
				poolChunkFloats = per * plane
				got := make([]float32, n)
				poolRows(ctx, g, kind, x, got, 1, tc.c)
				for i := g.oh * g.ow; i < n; i++ {
					wv, v := want[i], got[i]
					ok := wv == v || wv != wv && v != v
					if kind == "avg" {
						ok = math.Abs(float64(wv-v)) <= 2*float64(p.kh*p.kw)*6e-8*float64(scale[i])
					}
					if !ok {
						t.Fatalf("%s %+v on %d planes of %dx%d, chunks of %d planes: [%d] = %v, reference %v", kind, p, tc.c, tc.hw, w, per, i, v, wv)
					}
				}
				for i := 0; i < g.oh*g.ow; i++ {
					if got[i] != 0 {
						t.Fatalf("%s %+v: plane 0 was written outside [1, %d)", kind, p, tc.c)
					}
				}
			}
		}
	}
	if n, _ := ctx.pool.idle(); len(ctx.pool.out) != 0 || n == 0 {
		t.Errorf("scratch buffers not returned: %d out, %d idle", len(ctx.pool.out), n)
	}
}

// TestAvg2x2s2: 2x2 stride-2 AveragePool inside the plane (even and odd
// sizes, whose last row or column no window reads; rows of fewer and more
// than 8 outputs, 18 a row taking the vector kernel's overlapping last
// block) on planes [1, c), against the reference within the rounding of its
// summation order, infinities giving Inf or NaN where the reference does;
// plane 0 untouched.
func TestAvg2x2s2(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	p := &poolParams{kh: 2, kw: 2, sh: 2, sw: 2, dh: 1, dw: 1, spatial: 2, autoPad: "NOTSET"}
	for _, tc := range []struct{ c, h, w int }{{5, 56, 56}, {4, 7, 9}, {3, 2, 2}, {3, 14, 3}, {2, 33, 37}} {
		g, err := p.geometry(tc.h, tc.w)
		if err != nil {
			t.Fatal(err)
		}
		x, abs := make([]float32, tc.c*tc.h*tc.w), make([]float32, tc.c*tc.h*tc.w)
		for i := range x {
			x[i] = float32(r.NormFloat64() * 3)
			if r.IntN(100) == 0 {
				x[i] = []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))}[r.IntN(3)]
			}
			abs[i] = float32(math.Abs(float64(x[i])))
		}
		n := tc.c * g.oh * g.ow
		want, scale, got := make([]float32, n), make([]float32, n), make([]float32, n)
		poolReference(g, "avg", x, want, nil, 0, tc.c)
		poolReference(g, "avg", abs, scale, nil, 0, tc.c)
		ctx := &Context{Threads: 1, pool: newBufferPool()}
		poolRows(ctx, g, "avg", x, got, 1, tc.c)
		for i := 0; i < n; i++ {
			wv, v := want[i], got[i]
			ok := math.Abs(float64(wv-v)) <= 8*6e-8*float64(scale[i]) || wv == v || wv != wv && v != v
			if i < g.oh*g.ow {
				ok = v == 0
			}
			if !ok {
				t.Fatalf("%d planes of %dx%d: [%d] = %v, reference %v", tc.c, tc.h, tc.w, i, v, wv)
			}
		}
	}
}

// BenchmarkPool: the window-by-window reference against the separable vector
// path on one thread, on a 1x64x52x52 input: SqueezeNet's 3x3 stride-2
// ceil-mode MaxPool, and an SPP block's stride-1 MaxPools 5, 9 and 13.
func BenchmarkPool(b *testing.B) {
	const c, h, w = 64, 52, 52
	r := rand.New(rand.NewPCG(1, 1))
	x := make([]float32, c*h*w)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	cases := []struct {
		name string
		kind string
		p    poolParams
	}{
		{"squeezenet-max3x3s2-ceil", "max", poolParams{kh: 3, kw: 3, sh: 2, sw: 2, dh: 1, dw: 1, ceil: true, spatial: 2, autoPad: "NOTSET"}},
		{"spp-max5", "max", poolParams{kh: 5, kw: 5, sh: 1, sw: 1, dh: 1, dw: 1, padT: 2, padL: 2, padB: 2, padR: 2, spatial: 2, autoPad: "NOTSET"}},
		{"spp-max9", "max", poolParams{kh: 9, kw: 9, sh: 1, sw: 1, dh: 1, dw: 1, padT: 4, padL: 4, padB: 4, padR: 4, spatial: 2, autoPad: "NOTSET"}},
		{"spp-max13", "max", poolParams{kh: 13, kw: 13, sh: 1, sw: 1, dh: 1, dw: 1, padT: 6, padL: 6, padB: 6, padR: 6, spatial: 2, autoPad: "NOTSET"}},
		{"avg3x3s1-pad1", "avg", poolParams{kh: 3, kw: 3, sh: 1, sw: 1, dh: 1, dw: 1, padT: 1, padL: 1, padB: 1, padR: 1, spatial: 2, autoPad: "NOTSET"}},
	}
	ctx := &Context{Threads: 1, pool: newBufferPool()}
	for _, cs := range cases {
		g, err := cs.p.geometry(h, w)
		if err != nil {
			b.Fatal(err)
		}
		out := make([]float32, c*g.oh*g.ow)
		for _, impl := range []string{"reference", "rows"} {
			b.Run(fmt.Sprintf("%s/%s", cs.name, impl), func(b *testing.B) {
				b.SetBytes(int64(4 * len(x)))
				for i := 0; i < b.N; i++ {
					if impl == "rows" {
						poolRows(ctx, g, cs.kind, x, out, 0, c)
					} else {
						poolReference(g, cs.kind, x, out, nil, 0, c)
					}
				}
			})
		}
	}
}

func TestFillSlice(t *testing.T) {
	for n := 0; n < 100; n++ {
		s := make([]float32, n+1)
		s[n] = -1
		fillSlice(s[:n], 2.5)
		for i := 0; i < n; i++ {
			if s[i] != 2.5 {
				t.Fatalf("n=%d: s[%d] = %v", n, i, s[i])
			}
		}
		if s[n] != -1 {
			t.Fatalf("n=%d: wrote past the slice", n)
		}
	}
}

// TestPoolSideSameBits: poolSide (planes side by side) gives the bits of
// poolStride1 plane by plane on rows narrower than avg3SideWidth and
// poolSideWidth: 3x3 averages (one pass) and other averages and maxima
// (the passes: 5x5, 2x3, dilated), with and without count_include_pad,
// padding on some sides only, planes [lo, hi) in chunks of 1, 3 and all
// planes (a last chunk short), infinities, NaNs and signed zeros in the
// input.
func TestPoolSideSameBits(t *testing.T) {
	r := rand.New(rand.NewPCG(41, 42))
	ctx := &Context{Threads: 1, pool: newBufferPool()}
	defer func(n int) { poolChunkFloats = n }(poolChunkFloats)
	special := []float32{float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()), float32(math.Copysign(0, -1)), 0}
	ran := map[string]int{}
	for _, win := range [][4]int{{3, 3, 1, 1}, {5, 5, 1, 1}, {2, 3, 1, 1}, {3, 3, 2, 1}} { // kh, kw, dh, dw
		for _, pads := range [][4]int{{1, 1, 1, 1}, {0, 0, 0, 0}, {1, 0, 0, 2}, {0, 2, 1, 0}} {
			for _, kind := range []string{"max", "avg"} {
				for _, include := range []bool{false, true} {
					for _, hw := range [][2]int{{5, 5}, {1, 3}, {7, 9}, {11, 10}, {3, 1}, {8, 13}, {4, 6}, {6, 2}, {9, 4}} {
						p := poolParams{kh: win[0], kw: win[1], sh: 1, sw: 1, dh: win[2], dw: win[3], padT: pads[0], padL: pads[1], padB: pads[2], padR: pads[3],
							countIncludePad: include, spatial: 2, autoPad: "NOTSET", divs: new(divCache)}
						g, err := p.geometry(hw[0], hw[1])
						if err != nil || g.oh < 1 || g.ow < 1 {
							continue // a window larger than the padded plane
						}
						avg3 := kind == "avg" && win == [4]int{3, 3, 1, 1}
						if avg3 && g.ow >= avg3SideWidth || !avg3 && g.ow >= poolSideWidth {
							continue // the planes one by one
						}
						const c = 11
						x := make([]float32, c*hw[0]*hw[1])
						for i := range x {
							x[i] = float32(r.NormFloat64())
							if r.IntN(20) == 0 {
								x[i] = special[r.IntN(len(special))]
							}
						}
						n := c * g.oh * g.ow
						want := make([]float32, n)
						noPoolSide = true
						poolRows(ctx, g, kind, x, want, 2, c)
						noPoolSide = false
						for _, per := range []int{1, 3, c, 3, 1} { // the divisors' cache grown, then read by smaller chunks
							poolChunkFloats = per * (g.oh + p.dh*(p.kh-1)) * (g.ow + p.dw*(p.kw-1))
							got := make([]float32, n)
							poolRows(ctx, g, kind, x, got, 2, c)
							for i := range got {
								if math.Float32bits(got[i]) != math.Float32bits(want[i]) && !(got[i] != got[i] && want[i] != want[i]) {
									t.Fatalf("%s %v pads %v include %v %v, chunks of %d: [%d] = %v, plane by plane %v", kind, win, pads, include, hw, per, i, got[i], want[i])
								}
							}
						}
						ran[kind]++
						if avg3 {
							ran["avg3"]++
						}
					}
				}
			}
		}
	}
	t.Logf("cases: %v", ran)
	if ran["max"] < 80 || ran["avg"] < 100 || ran["avg3"] < 20 {
		t.Errorf("too few cases of a kind: %v", ran)
	}
	// Two threads' shares a plane apart (145 and 144 planes) reuse the
	// divisors laid out for the larger: no allocation call after call.
	poolChunkFloats = 1 << 15
	for _, win := range [][4]int{{3, 3, 1, 1}, {5, 5, 1, 1}} {
		p := poolParams{kh: win[0], kw: win[1], sh: 1, sw: 1, dh: 1, dw: 1, padT: 1, padL: 1, padB: 1, padR: 1,
			spatial: 2, autoPad: "NOTSET", divs: new(divCache)}
		g, err := p.geometry(5, 5)
		if err != nil {
			t.Fatal(err)
		}
		x, out := make([]float32, 289*25), make([]float32, 289*g.oh*g.ow)
		poolRows(ctx, g, "avg", x, out, 0, 145)
		if a := testing.AllocsPerRun(10, func() {
			poolRows(ctx, g, "avg", x, out, 145, 289)
			poolRows(ctx, g, "avg", x, out, 0, 145)
		}); a != 0 {
			t.Errorf("%v: %.0f allocations a call pair", win, a)
		}
	}
}

// BenchmarkPoolSide: stride-1 pools on planes side by side (poolSide) and
// plane by plane: Inception's padded 3x3 averages (count_include_pad) and
// GoogLeNet's padded 3x3 maxima.
func BenchmarkPoolSide(b *testing.B) {
	defer func(a, m int) { avg3SideWidth, poolSideWidth, noPoolSide = a, m, false }(avg3SideWidth, poolSideWidth)
	for _, kind := range []string{"avg", "max"} {
		for _, cs := range [][2]int{{288, 5}, {832, 7}, {128, 11}, {528, 14}, {96, 17}, {256, 28}} {
			c, hw := cs[0], cs[1]
			r := rand.New(rand.NewPCG(1, 1))
			x := make([]float32, c*hw*hw)
			for i := range x {
				x[i] = float32(r.NormFloat64())
			}
			p := poolParams{kh: 3, kw: 3, sh: 1, sw: 1, dh: 1, dw: 1, padT: 1, padL: 1, padB: 1, padR: 1,
				countIncludePad: true, spatial: 2, autoPad: "NOTSET", divs: new(divCache)}
			g, err := p.geometry(hw, hw)
			if err != nil {
				b.Fatal(err)
			}
			out := make([]float32, c*g.oh*g.ow)
			ctx := &Context{Threads: 1, pool: newBufferPool()}
			for _, side := range []bool{false, true} {
				b.Run(fmt.Sprintf("%s/%dx%dx%d/side=%v", kind, c, hw, hw, side), func(b *testing.B) {
					noPoolSide, avg3SideWidth, poolSideWidth = !side, 1<<20, 1<<20
					for i := 0; i < b.N; i++ {
						poolRows(ctx, g, kind, x, out, 0, c)
					}
				})
			}
		}
	}
}

// randomAutoPad draws a pool's auto_pad: SAME_UPPER, SAME_LOWER and VALID
// one time in eight each, else NOTSET.
func randomAutoPad(r *rand.Rand) string {
	return [...]string{"SAME_UPPER", "SAME_LOWER", "VALID", "NOTSET", "NOTSET", "NOTSET", "NOTSET", "NOTSET"}[r.IntN(8)]
}
