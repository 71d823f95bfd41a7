package vec

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestAccRow: both paths give the scalar loop's bits (a NaN for a NaN),
// inclusive and exclusive, over several steps, with NaN payloads, infinities and signed
// zeros among the values, for lengths ending in each part of the loop.
func TestAccRow(t *testing.T) {
	saved := useSIMD
	defer func() { useSIMD = saved }()
	r := rand.New(rand.NewPCG(41, 42))
	special := []float32{math.Float32frombits(0x7fc00001), math.Float32frombits(0xffc00002), float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.Copysign(0, -1)), 3e38}
	for n := 0; n < 48; n++ {
		for _, exclusive := range []bool{false, true} {
			rows := make([][]float32, 5)
			for k := range rows {
				rows[k] = make([]float32, n)
				for i := range rows[k] {
					rows[k][i] = float32(r.NormFloat64())
					if r.IntN(6) == 0 {
						rows[k][i] = special[r.IntN(len(special))]
					}
				}
			}
			var want [][]float32
			for _, simd := range []bool{false, saved} {
				useSIMD = simd
				acc := make([]float64, n)
				var got [][]float32
				for _, x := range rows {
					d := make([]float32, n)
					AccRow(acc, x, d, exclusive)
					got = append(got, d)
				}
				if want == nil {
					// the scalar loop, written out
					acc := make([]float64, n)
					for _, x := range rows {
						d := make([]float32, n)
						for i := range x {
							if exclusive {
								d[i] = float32(acc[i])
								acc[i] += float64(x[i])
							} else {
								acc[i] += float64(x[i])
								d[i] = float32(acc[i])
							}
						}
						want = append(want, d)
					}
				}
				for k := range got {
					for i := range got[k] {
						g, w := got[k][i], want[k][i]
						if math.Float32bits(g) != math.Float32bits(w) && !(g != g && w != w) { // which NaN is kept is the compiler's choice
							t.Fatalf("simd %v n=%d exclusive %v row %d [%d]: %x, want %x", simd, n, exclusive, k, i, math.Float32bits(got[k][i]), math.Float32bits(want[k][i]))
						}
					}
				}
			}
		}
	}
}

// TestWidenAdd: the SIMD path gives the scalar loop's float64 sums, bit for
// bit, at every length around its eight-lane steps (NaN, Inf, -0 included).
func TestWidenAdd(t *testing.T) {
	saved := useSIMD
	defer func() { useSIMD = saved }()
	r := rand.New(rand.NewPCG(43, 44))
	special := []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.Copysign(0, -1)), 3e38, 1e-45}
	for n := 0; n < 35; n++ {
		x := make([]float32, n)
		acc0 := make([]float64, n)
		for i := range x {
			x[i] = float32(r.NormFloat64() * 100)
			acc0[i] = r.NormFloat64() * 1e3
			if r.IntN(6) == 0 {
				x[i] = special[r.IntN(len(special))]
			}
		}
		want := slices.Clone(acc0)
		for i, v := range x {
			want[i] += float64(v)
		}
		useSIMD = saved
		got := slices.Clone(acc0)
		WidenAdd(got, x)
		for i := range want {
			if math.Float64bits(got[i]) != math.Float64bits(want[i]) && !(math.IsNaN(got[i]) && math.IsNaN(want[i])) {
				t.Fatalf("n=%d: acc[%d] = %v, want %v", n, i, got[i], want[i])
			}
		}
	}
}
