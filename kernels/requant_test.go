package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestRequant8MatchesScalar: the vector requantization gives the scalar
// loop's codes (round half to even of float32(acc) * multiplier, plus the
// zero point, saturated) for one multiplier, one per run of inner (a
// channel's plane), one per column and one per row and column, with
// accumulators past 2^24 (the conversion rounds) and multipliers that
// saturate.
func TestRequant8MatchesScalar(t *testing.T) {
	r := rand.New(rand.NewPCG(4, 4))
	for _, c := range []struct {
		n, inner, mults int
	}{{5000, 1, 1}, {9000, 1, 30}, {9000, 1, 6000}, {12000, 3000, 4}, {700, 7, 100}, {10000, 1, 10000}} {
		acc := make([]int32, c.n)
		for i := range acc { // magnitudes from 1 to 2^27, both signs
			acc[i] = int32(r.IntN(2<<r.IntN(27)) - 1<<r.IntN(27))
		}
		mult := make([]float32, c.mults)
		for i := range mult {
			mult[i] = float32(r.Float64() * 1e-5 * float64(int(1)<<r.IntN(12)))
		}
		if c.mults > 1 {
			mult[0] = 0.5 // ties at every odd accumulator
		}
		for _, z := range []float64{0, 128, -3} {
			name := fmt.Sprintf("n %d inner %d mults %d zp %v", c.n, c.inner, c.mults, z)
			want8, got8 := make([]uint8, c.n), make([]uint8, c.n)
			mid := 0
			if z >= 0 {
				requantRuns(want8, acc, mult, c.inner, z, 0, 255)
				requant8(got8, acc, mult, c.inner, z, 0, 255)
				for i := range want8 {
					if want8[i] != 0 && want8[i] != 255 {
						mid++
					}
					if want8[i] != got8[i] {
						t.Fatalf("%s uint8: code %d is %d, want %d (acc %d)", name, i, got8[i], want8[i], acc[i])
					}
				}
			}
			if z >= 0 && mid < c.n/8 {
				t.Fatalf("%s: only %d of %d codes between the saturation bounds", name, mid, c.n)
			}
			wants, gots := make([]int8, c.n), make([]int8, c.n)
			requantRuns(wants, acc, mult, c.inner, z-128, -128, 127)
			requant8(gots, acc, mult, c.inner, z-128, -128, 127)
			for i := range wants {
				if wants[i] != gots[i] {
					t.Fatalf("%s int8: code %d is %d, want %d (acc %d)", name, i, gots[i], wants[i], acc[i])
				}
			}
		}
	}
}
