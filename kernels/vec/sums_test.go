package vec

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestRowMeans checks RowMeans bit for bit against a Sum per row (with and
// without the assembly), and within a float32 rounding of the mean computed
// sequentially in float64: row lengths below, at and around the 8-float
// groups, MobileNet's 49, large values that a float32 sum would lose.
func TestRowMeans(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	saved := useFMA
	defer func() { useFMA = saved }()
	for _, n := range []int{1, 2, 7, 8, 9, 15, 16, 17, 49, 64, 196} {
		for _, rows := range []int{1, 3, 10} {
			x := make([]float32, rows*n)
			for i := range x {
				x[i] = float32(r.NormFloat64())
				if i%5 == 0 {
					x[i] *= 1e6
				}
			}
			for _, fma := range []bool{false, saved} {
				useFMA = fma
				got := make([]float32, rows)
				if err := RowMeans(got, x, n); err != nil {
					t.Fatal(err)
				}
				for i := range got {
					row := x[i*n : (i+1)*n]
					want := float32(Sum(row) / float64(n))
					if math.Float32bits(got[i]) != math.Float32bits(want) {
						t.Fatalf("fma=%v n=%d row %d: %v, want %v (Sum)", fma, n, i, got[i], want)
					}
					ref := 0.0
					for _, v := range row {
						ref += float64(v)
					}
					ref /= float64(n)
					if d := math.Abs(float64(got[i]) - ref); d > 1e-6*math.Abs(ref)+1e-30 {
						t.Fatalf("fma=%v n=%d row %d: %v, float64 mean %v", fma, n, i, got[i], ref)
					}
				}
			}
		}
	}
	if err := RowMeans(make([]float32, 2), make([]float32, 9), 4); err == nil {
		t.Fatal("9 floats as 2 rows of 4: no error")
	}
	if err := RowMeans(nil, nil, 0); err == nil {
		t.Fatal("rows of 0: no error")
	}
}
