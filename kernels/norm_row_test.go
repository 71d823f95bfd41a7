package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestNormalizeRowLargeMean: the two-operation float64 form keeps rows with
// a mean 1000 standard deviations from 0 within an ulp of the direct
// (x - mean) * inv * scale + bias.
func TestNormalizeRowLargeMean(t *testing.T) {
	r := rand.New(rand.NewPCG(23, 24))
	row := make([]float32, 4096)
	for i := range row {
		row[i] = float32(1000 + r.NormFloat64())
	}
	mean, variance := meanVar(row)
	inv := 1 / math.Sqrt(variance+1e-5)
	dst := make([]float32, len(row))
	normalizeRow(dst, row, mean, inv, 1.7, -0.3)
	for j, v := range row {
		want := float32((float64(v)-mean)*inv*float64(float32(1.7)) + float64(float32(-0.3)))
		if d := math.Abs(float64(dst[j] - want)); d > ulp32(want) {
			t.Fatalf("x[%d] = %v: %v, direct %v", j, v, dst[j], want)
		}
	}
}
