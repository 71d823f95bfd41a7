package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/kernels/parallel"
)

// gsRefSample is gridSample as it was before bilinear images got their own
// gather (gsBlock): the reference the new path is held to, bit for bit.
func gsRefSample[E float32 | float64](g *gridSampler, x, grid, y []E, xs, ys []int) {
	r := len(xs) - 2
	dims := xs[2:]
	st := stridesOf(dims)
	n, c := xs[0], xs[1]
	plane, pts := graph.Numel(dims), graph.Numel(ys[2:])
	k := [...]int{gsNearest: 1, gsLinear: 2, gsCubic: 4}[g.mode]
	taps := 1
	for range r {
		taps *= k
	}
	block := max(1, 1024/taps)
	bilinear := r == 2 && g.mode == gsLinear
	off, wt := make([]int, block*taps), make([]E, block*taps)
	ai, aw := make([]int, r*k), make([]E, r*k)
	for p := 0; p < n*pts; {
		b := p / pts // batch
		end := min(n*pts, (b+1)*pts, p+block)
		for j := p; j < end; j++ {
			q := (j - p) * taps
			if bilinear {
				gsBilinear(g, grid[2*j], grid[2*j+1], dims[0], dims[1], off[q:q+4], wt[q:q+4])
			} else {
				gsPoint(g, grid[j*r:(j+1)*r], dims, st, off[q:q+taps], wt[q:q+taps], ai, aw)
			}
		}
		q0, m := p-b*pts, end-p
		for ch := 0; ch < c; ch++ {
			xp := x[(b*c+ch)*plane : (b*c+ch+1)*plane]
			yp := y[(b*c+ch)*pts+q0 : (b*c+ch)*pts+q0+m]
			gsGather(yp, xp, off[:m*taps], wt[:m*taps], taps) // unchanged by the new path
		}
		p = end
	}
}

// gsRandomCase draws a GridSample case: shapes from 1 pixel wide to larger
// than a block of points, pixels with Inf, NaN and signed zeros among them,
// grid points exactly on the corners, far outside, and NaN.
func gsRandomCase(rng *rand.Rand) (xs, ys []int, x, grid []float64) {
	r := 2
	if rng.IntN(6) == 0 {
		r = 3
	}
	xs = []int{1 + rng.IntN(2), 1 + rng.IntN(4)}
	ys = slices.Clone(xs)
	sizes := []int{1, 2, 3, 5, 8, 17}
	for range r {
		xs = append(xs, sizes[rng.IntN(len(sizes))])
		ys = append(ys, 1+rng.IntN(9))
	}
	if r == 2 && rng.IntN(5) == 0 { // more points than a block
		ys[2], ys[3] = 64+rng.IntN(10), 65
	}
	x = make([]float64, graph.Numel(xs))
	for i := range x {
		x[i] = float64(float32(rng.NormFloat64() * 3))
		switch rng.IntN(60) {
		case 0:
			x[i] = math.Inf(1 - 2*rng.IntN(2))
		case 1:
			x[i] = math.NaN()
		case 2:
			x[i] = math.Copysign(0, -1)
		case 3, 4, 5:
			x[i] = 0
		}
	}
	if rng.IntN(4) == 0 { // a map of zeros and negative zeros: sums that are zero
		for i := range x {
			x[i] = math.Copysign(0, float64(rng.IntN(2))-0.5)
		}
	}
	grid = make([]float64, ys[0]*graph.Numel(ys[2:])*r)
	for i := range grid {
		grid[i] = float64(float32(rng.Float64()*2.6 - 1.3))
		switch rng.IntN(40) {
		case 0, 1:
			grid[i] = float64(1 - 2*rng.IntN(2))
		case 2:
			grid[i] = 0
		case 3:
			grid[i] = float64(float32(rng.NormFloat64() * 5))
		case 4:
			grid[i] = 1e30
		case 5:
			grid[i] = math.NaN()
		}
	}
	return xs, ys, x, grid
}

// sameFloats fails unless got and want hold the same bits (any NaN matching
// any NaN: a NaN's payload depends on operand order).
func sameFloats[E float32 | float64](t *testing.T, what string, got, want []E) {
	t.Helper()
	for i := range want {
		g, w := float64(got[i]), float64(want[i])
		if math.IsNaN(g) && math.IsNaN(w) {
			continue
		}
		if math.Float64bits(g) != math.Float64bits(w) {
			t.Fatalf("%s: element %d = %g, want %g", what, i, got[i], want[i])
		}
	}
}

// gridSample gives gsRefSample's results to the bit, in float32 and float64,
// on one thread and split over two, for every mode, padding and
// align_corners on images and volumes.
func TestGridSampleMatchesOldPath(t *testing.T) {
	defer parallel.ForceSplit(parallel.ForcedSplit())
	rng := rand.New(rand.NewPCG(21, 22))
	for i := range 300 {
		xs, ys, xv, gv := gsRandomCase(rng)
		g := &gridSampler{mode: rng.IntN(3), pad: rng.IntN(3), align: rng.IntN(2) == 1, nd: true}
		name := fmt.Sprintf("case %d: x %v y %v mode %d pad %d align %v", i, xs, ys, g.mode, g.pad, g.align)
		check := func(t *testing.T, ref func() any, run func(ctx *Context) any) {
			want := ref()
			for _, threads := range []int{1, 2} {
				parallel.ForceSplit(threads)
				got := run(&Context{Threads: threads})
				switch w := want.(type) {
				case []float32:
					sameFloats(t, fmt.Sprintf("%s float32, %d threads", name, threads), got.([]float32), w)
				case []float64:
					sameFloats(t, fmt.Sprintf("%s float64, %d threads", name, threads), got.([]float64), w)
				}
			}
		}
		x32, g32 := toF32(xv), toF32(gv)
		check(t, func() any {
			y := make([]float32, graph.Numel(ys))
			gsRefSample(g, x32, g32, y, xs, ys)
			return y
		}, func(ctx *Context) any {
			y := make([]float32, graph.Numel(ys))
			gridSample(ctx, g, x32, g32, y, xs, ys)
			return y
		})
		check(t, func() any {
			y := make([]float64, graph.Numel(ys))
			gsRefSample(g, xv, gv, y, xs, ys)
			return y
		}, func(ctx *Context) any {
			y := make([]float64, graph.Numel(ys))
			gridSample(ctx, g, xv, gv, y, xs, ys)
			return y
		})
	}
}
