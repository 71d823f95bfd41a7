package vec

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestAddMulRows: AddRows and MulRows give, on every path, the bits of Add
// and Mul row by row, in place or not, for rows of 1 to 70 values and
// longer, with NaN, infinities and signed zeros among the values.
func TestAddMulRows(t *testing.T) {
	paths, restore := mathPaths()
	defer restore()
	r := rand.New(rand.NewPCG(11, 12))
	special := []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), 0, float32(math.Copysign(0, -1)), 1e-40}
	for _, p := range paths {
		p.use()
		for _, n := range append(softmaxRowLengths, 768) {
			rows := 1 + r.IntN(9)
			a := make([]float32, rows*n)
			row := make([]float32, n)
			for i := range a {
				a[i] = float32(r.NormFloat64())
				if r.IntN(20) == 0 {
					a[i] = special[r.IntN(len(special))]
				}
			}
			for i := range row {
				row[i] = float32(r.NormFloat64())
			}
			for _, mul := range []bool{false, true} {
				for _, inPlace := range []bool{false, true} {
					want := make([]float32, len(a))
					for i := 0; i < len(a); i += n {
						if mul {
							Mul(want[i:i+n], a[i:i+n], row)
						} else {
							Add(want[i:i+n], a[i:i+n], row)
						}
					}
					got := make([]float32, len(a))
					src := a
					if inPlace {
						copy(got, a)
						src = got
					}
					if mul {
						MulRows(got, src, row)
					} else {
						AddRows(got, src, row)
					}
					for i := range got {
						g, w := got[i], want[i]
						if math.Float32bits(g) != math.Float32bits(w) && !(g != g && w != w) {
							t.Fatalf("%s n=%d rows=%d mul=%v in place=%v: [%d] = %v, row by row %v", p.name, n, rows, mul, inPlace, i, g, w)
						}
					}
				}
			}
		}
	}
}

// BenchmarkAddRows: 256 rows of 48 (a Swin MLP's bias), one call against
// Add per row.
func BenchmarkAddRows(b *testing.B) {
	const rows, n = 256, 48
	a, row := make([]float32, rows*n), make([]float32, n)
	b.Run("rows", func(b *testing.B) {
		for range b.N {
			AddRows(a, a, row)
		}
	})
	b.Run("row-by-row", func(b *testing.B) {
		for range b.N {
			for i := 0; i < len(a); i += n {
				Add(a[i:i+n], a[i:i+n], row)
			}
		}
	})
}
