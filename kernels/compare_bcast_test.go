package kernels

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/onnxq/onnxq/graph"
)

// TestCompareBroadcastMatchesDefinition runs the five comparisons on a row
// against a column ([n] against [m,1], and the other way round: the
// scalar-per-run loops) and on equal shapes, in float32 with NaN and ±0 and
// in int64, against the element-wise definition.
func TestCompareBroadcastMatchesDefinition(t *testing.T) {
	fa := []float32{-1, 0, float32(math.Copysign(0, -1)), 2.5, float32(math.NaN()), 7, 3, -4}
	fb := []float32{0, float32(math.NaN()), 2.5, -4, 9}
	ia := []int64{-3, 0, 2, 5, 7, 1, 9, 4}
	ib := []int64{2, 0, 7, -1, 5}
	def := map[string]func(x, y float64) bool{
		"Equal": func(x, y float64) bool { return x == y }, "Less": func(x, y float64) bool { return x < y },
		"Greater": func(x, y float64) bool { return x > y }, "LessOrEqual": func(x, y float64) bool { return x <= y },
		"GreaterOrEqual": func(x, y float64) bool { return x >= y },
	}
	for op, f := range def {
		for _, rowFirst := range []bool{true, false} {
			for _, dt := range []graph.DataType{graph.Float, graph.Int64} {
				var row, col *graph.Tensor
				var rv, cv []float64
				if dt == graph.Float {
					row, col = graph.Float32Tensor([]int{len(fa)}, fa), graph.Float32Tensor([]int{len(fb), 1}, fb)
					for _, v := range fa {
						rv = append(rv, float64(v))
					}
					for _, v := range fb {
						cv = append(cv, float64(v))
					}
				} else {
					row, col = graph.Int64Tensor([]int{len(ia)}, ia), graph.Int64Tensor([]int{len(ib), 1}, ib)
					for _, v := range ia {
						rv = append(rv, float64(v))
					}
					for _, v := range ib {
						cv = append(cv, float64(v))
					}
				}
				x, y := row, col
				if !rowFirst {
					x, y = col, row
				}
				got := runOp(t, op, nil, x, y)[0].Data().([]bool)
				for i := range cv {
					for j := range rv {
						want := f(rv[j], cv[i])
						if !rowFirst {
							want = f(cv[i], rv[j])
						}
						if got[i*len(rv)+j] != want {
							t.Fatalf("%s %s rowFirst=%v: [%d,%d] = %v, want %v", op, dt.Short(), rowFirst, i, j, got[i*len(rv)+j], want)
						}
					}
				}
			}
		}
	}
}

// TestSubDivBroadcastBits: float32 Sub and Div (vector loops for tensor -
// tensor, tensor - scalar and scalar - tensor runs) give the scalar
// definition's bits, NaN and signed zeros included, on broadcast shapes
// whose runs take each loop.
func TestSubDivBroadcastBits(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	special := []float32{float32(math.NaN()), 0, float32(math.Copysign(0, -1)), float32(math.Inf(1))}
	fill := func(n int) []float32 {
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(r.NormFloat64())
			if r.IntN(8) == 0 {
				x[i] = special[r.IntN(len(special))]
			}
		}
		return x
	}
	for _, sh := range [][2][]int{
		{{4, 37}, {4, 37}}, {{4, 37}, {}}, {{}, {4, 37}}, {{3, 1}, {1, 21}}, {{2, 3, 19}, {3, 1}}, {{1, 19}, {5, 19}},
	} {
		as, bs := sh[0], sh[1]
		os, err := broadcastShape(as, bs)
		if err != nil {
			t.Fatal(err)
		}
		a, b := fill(graph.Numel(as)), fill(graph.Numel(bs))
		for _, op := range []string{"Sub", "Div"} {
			got := runOp(t, op, nil, graph.Float32Tensor(as, a), graph.Float32Tensor(bs, b))[0].Float32s()
			// index of the element of x (shape xs) at output coordinates c
			at := func(xs, c []int) int {
				idx, off := 0, len(c)-len(xs)
				for d, n := range xs {
					idx = idx*n + c[off+d]%n
				}
				return idx
			}
			c := make([]int, len(os))
			for i := range got {
				for d, rem := len(os)-1, i; d >= 0; d-- {
					c[d], rem = rem%os[d], rem/os[d]
				}
				ai, bi := at(as, c), at(bs, c)
				want := a[ai] - b[bi]
				if op == "Div" {
					want = a[ai] / b[bi]
				}
				if math.Float32bits(got[i]) != math.Float32bits(want) {
					t.Fatalf("%s %v %v: [%d] = %v, want %v (%v, %v)", op, as, bs, i, got[i], want, a[ai], b[bi])
				}
			}
		}
	}
}

// TestPReluBits: PRelu with a per-channel slope (LeakyRelu runs), a slope
// per element and one slope, against x < 0 ? slope*x : x bit for bit, on
// NaN, infinities and signed zeros.
func TestPReluBits(t *testing.T) {
	r := rand.New(rand.NewPCG(23, 24))
	special := []float32{float32(math.NaN()), 0, float32(math.Copysign(0, -1)), float32(math.Inf(-1)), float32(math.Inf(1))}
	xs := []int{2, 5, 3, 13}
	x := make([]float32, graph.Numel(xs))
	for i := range x {
		x[i] = float32(r.NormFloat64())
		if r.IntN(8) == 0 {
			x[i] = special[r.IntN(len(special))]
		}
	}
	for _, ss := range [][]int{{5, 1, 1}, xs, {1}, {13}} {
		s := make([]float32, graph.Numel(ss))
		for i := range s {
			s[i] = float32(r.NormFloat64())
		}
		got := runOp(t, "PRelu", nil, graph.Float32Tensor(xs, x), graph.Float32Tensor(ss, s))[0].Float32s()
		for i, v := range x {
			// the slope for element i: its coordinates along the slope's
			// trailing axes
			si, rem, stride := 0, i, 1
			for d := len(xs) - 1; d >= 0; d-- {
				c := rem % xs[d]
				rem /= xs[d]
				if k := d - (len(xs) - len(ss)); k >= 0 && ss[k] != 1 {
					si += c * stride
				}
				if k := d - (len(xs) - len(ss)); k >= 0 {
					stride *= ss[k]
				}
			}
			want := v
			if v < 0 {
				want = s[si] * v
			}
			if math.Float32bits(got[i]) != math.Float32bits(want) {
				t.Fatalf("slope %v: [%d] = %v, want %v (x %v, slope %v)", ss, i, got[i], want, v, s[si])
			}
		}
	}
}
