package vec

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestArgBest: both paths against the scalar definition over several rows
// (lengths 0-70, so vector bodies and tails), each predicate, with ties,
// NaNs, infinities and signed zeros drawn often.
func TestArgBest(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	saved := useSIMD
	defer func() { useSIMD = saved }()
	pool := []float32{0, float32(math.Copysign(0, -1)), 1, -1, 2, float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))}
	draw := func() float32 {
		if r.IntN(3) == 0 {
			return pool[r.IntN(len(pool))]
		}
		return float32(r.NormFloat64())
	}
	for trial := 0; trial < 3000; trial++ {
		n := r.IntN(71)
		isMax, last := r.IntN(2) == 0, r.IntN(2) == 0
		rows := make([][]float32, 1+r.IntN(6))
		for k := range rows {
			rows[k] = make([]float32, n)
			for i := range rows[k] {
				rows[k][i] = draw()
			}
		}
		// The definition: a scan down each column.
		wantB, wantI := make([]float32, n), make([]int32, n)
		for i := 0; i < n; i++ {
			b, bi := rows[0][i], int32(0)
			for k := 1; k < len(rows); k++ {
				v := rows[k][i]
				if (isMax && v > b) || (!isMax && v < b) || (last && v == b) {
					b, bi = v, int32(k)
				}
			}
			wantB[i], wantI[i] = b, bi
		}
		for _, simd := range []bool{false, true} {
			useSIMD = simd && saved
			best, ids := append([]float32(nil), rows[0]...), make([]int32, n)
			for k := 1; k < len(rows); k++ {
				ArgBest(best, ids, rows[k], int32(k), isMax, last)
			}
			for i := 0; i < n; i++ {
				same := math.Float32bits(best[i]) == math.Float32bits(wantB[i])
				if ids[i] != wantI[i] || !same {
					t.Fatalf("simd %v, max %v last %v, %d rows of %d: [%d] = %v at %d, want %v at %d", simd, isMax, last, len(rows), n, i, best[i], ids[i], wantB[i], wantI[i])
				}
			}
		}
	}
}
