package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"testing"

	"github.com/onnxq/onnxq/kernels/vec"
)

// TestMax3x3s2MatchesOtherPaths: the 3x3 stride-2 MaxPool path on widths and
// heights 1..40 (and SqueezeNet's 111, 55, 27), ceil mode or not, pads 0..2
// on each side and auto_pad, gives the bits of the paths it replaced
// (maxInside where no padding reaches a window, maxRowsStrided elsewhere),
// NaN payloads and signed zeros included, and the reference's values; both
// its AVX2 form and, where the machine has it, the masked AVX-512 one
// (max3x3s2Edges).
func TestMax3x3s2MatchesOtherPaths(t *testing.T) {
	defer func() { noMax3Edges = false }()
	for _, edges := range []bool{false, true} {
		if edges && !vec.HasMax3Stride2Edges() {
			continue
		}
		noMax3Edges = !edges
		t.Run(fmt.Sprintf("edges=%v", edges), testMax3x3s2)
	}
}

func testMax3x3s2(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	ctx := &Context{Threads: 1, pool: newBufferPool()}
	nan1, nan2 := math.Float32frombits(0x7fc00001), math.Float32frombits(0xffc00002)
	special := []float32{nan1, nan2, float32(math.Inf(1)), float32(math.Inf(-1)), 0, float32(math.Copysign(0, -1))}
	sizes := []int{111, 55, 27}
	for n := 1; n <= 40; n++ {
		sizes = append(sizes, n)
	}
	ran := map[string]int{}
	for trial := 0; trial < 1500; trial++ {
		w := sizes[trial%len(sizes)]
		h := sizes[r.IntN(len(sizes))]
		if h > 40 && w < 40 {
			h = 1 + r.IntN(40)
		}
		p := &poolParams{kh: 3, kw: 3, sh: 2, sw: 2, dh: 1, dw: 1, ceil: r.IntN(2) == 0, spatial: 2, autoPad: "NOTSET"}
		if r.IntN(2) == 0 {
			p.padT, p.padL, p.padB, p.padR = r.IntN(3), r.IntN(3), r.IntN(3), r.IntN(3)
		}
		if r.IntN(6) == 0 {
			p.autoPad = []string{"SAME_UPPER", "SAME_LOWER", "VALID"}[r.IntN(3)]
			p.padT, p.padL, p.padB, p.padR = 0, 0, 0, 0
		}
		g, err := p.geometry(h, w)
		if err != nil {
			continue
		}
		planes := 1 + r.IntN(3)
		x := make([]float32, planes*h*w)
		for i := range x {
			x[i] = float32(r.IntN(4) - 2) // ties between neighbours
			if r.IntN(10) == 0 {
				x[i] = special[r.IntN(len(special))]
			}
		}
		n := planes * g.oh * g.ow
		got, old, ref := make([]float32, n), make([]float32, n), make([]float32, n)
		max3x3s2(g, x, got, 0, planes)
		ekw, ekh := 3, 3
		wp := (g.ow-1)*2 + ekw
		if g.pt == 0 && g.pl == 0 && (g.oh-1)*2+ekh <= h && wp <= w {
			maxInside(ctx, g, x, old, 0, planes)
			ran["inside"]++
		} else {
			maxRowsStrided(ctx, g, x, old, 0, planes, wp, min(g.pl, wp), min(g.pl+w, wp))
			ran["padded"]++
		}
		if p.ceil {
			ran["ceil"]++
		}
		if g.ow >= 8 {
			ran["simd-wide"]++
		}
		poolReference(g, "max", x, ref, nil, 0, planes)
		for i := range got {
			if math.Float32bits(got[i]) != math.Float32bits(old[i]) {
				t.Fatalf("trial %d %+v on %dx%d (out %dx%d): [%d] = %v (%#x), old path %v (%#x)",
					trial, *p, h, w, g.oh, g.ow, i, got[i], math.Float32bits(got[i]), old[i], math.Float32bits(old[i]))
			}
			if v, want := got[i], ref[i]; v != want && !(v != v && want != want) {
				t.Fatalf("trial %d %+v on %dx%d: [%d] = %v, reference %v", trial, *p, h, w, i, v, want)
			}
		}
	}
	t.Logf("cases run: %v", ran)
	if ran["inside"] < 200 || ran["padded"] < 200 || ran["ceil"] < 200 || ran["simd-wide"] < 300 {
		t.Errorf("too few cases of some kind: %v", ran)
	}
}

// BenchmarkSqueezeNetMaxPools: SqueezeNet's three 3x3 stride-2 ceil-mode
// MaxPools on one thread, by max3x3s2 and by maxInside, which took them before.
func BenchmarkSqueezeNetMaxPools(b *testing.B) {
	ctx := &Context{Threads: 1, pool: newBufferPool()}
	p := &poolParams{kh: 3, kw: 3, sh: 2, sw: 2, dh: 1, dw: 1, ceil: true, spatial: 2, autoPad: "NOTSET"}
	r := rand.New(rand.NewPCG(1, 1))
	for _, tc := range []struct{ c, hw int }{{64, 111}, {128, 55}, {256, 27}} {
		g, x, out := poolInput(b, r, p, tc.c, tc.hw)
		for _, impl := range []string{"inside", "3x3s2"} {
			b.Run(fmt.Sprintf("%dx%d/%s", tc.c, tc.hw, impl), func(b *testing.B) {
				b.SetBytes(int64(4 * len(x)))
				for i := 0; i < b.N; i++ {
					if impl == "inside" {
						maxInside(ctx, g, x, out, 0, tc.c)
					} else {
						max3x3s2(g, x, out, 0, tc.c)
					}
				}
			})
		}
	}
}

// BenchmarkMax3x3s2Edges compares max3x3s2's masked AVX-512 form
// (max3x3s2Edges) with its AVX2 form on one thread, alternating call by call:
// ResNet's padded pool and SqueezeNet's ceil-mode ones; median thread CPU ms
// of each and the ratio.
func BenchmarkMax3x3s2Edges(b *testing.B) {
	if !vec.HasMax3Stride2Edges() {
		b.Skip("no AVX-512 here")
	}
	r := rand.New(rand.NewPCG(1, 1))
	for _, tc := range []struct {
		name      string
		c, hw     int
		pad, ceil bool
	}{{"resnet-64x112-pad1", 64, 112, true, false}, {"squeeze-64x111-ceil", 64, 111, false, true}, {"squeeze-128x55-ceil", 128, 55, false, true}, {"squeeze-256x27-ceil", 256, 27, false, true}} {
		b.Run(tc.name, func(b *testing.B) {
			p := &poolParams{kh: 3, kw: 3, sh: 2, sw: 2, dh: 1, dw: 1, ceil: tc.ceil, spatial: 2, autoPad: "NOTSET"}
			if tc.pad {
				p.padT, p.padL, p.padB, p.padR = 1, 1, 1, 1
			}
			g, x, out := poolInput(b, r, p, tc.c, tc.hw)
			defer func() { noMax3Edges = false }()
			var times [2][]float64
			for i := 0; i < b.N+2; i++ {
				for path := 0; path < 2; path++ {
					noMax3Edges = path == 1
					t0 := threadCPU()
					max3x3s2(g, x, out, 0, tc.c)
					if i >= 2 {
						times[path] = append(times[path], threadCPU()-t0)
					}
				}
			}
			med := func(v []float64) float64 { sort.Float64s(v); return v[len(v)/2] }
			e, a := med(times[0]), med(times[1])
			b.ReportMetric(e, "edges-ms")
			b.ReportMetric(a, "avx2-ms")
			b.ReportMetric(e/a, "edges/avx2")
		})
	}
}

// poolInput is p's geometry on c planes of hw x hw, random planes for it
// and room for the output.
func poolInput(b *testing.B, r *rand.Rand, p *poolParams, c, hw int) (g *poolGeom, x, out []float32) {
	g, err := p.geometry(hw, hw)
	if err != nil {
		b.Fatal(err)
	}
	x = make([]float32, c*hw*hw)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	return g, x, make([]float32, c*g.oh*g.ow)
}
