package vec

import (
	"math/rand/v2"
	"testing"
)

// Sample gives the scalar sum to the bit at every length around the SIMD
// width, including the tail.
func TestQuadsSample(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 9))
	const row, rows = 13, 7
	x := make([]float32, row*rows)
	for i := range x {
		x[i] = rng.Float32()*8 - 4
	}
	for n := 0; n <= 40; n++ {
		base := make([]int32, n)
		var w [4][]float32
		for t := range w {
			w[t] = make([]float32, n)
			for j := range w[t] {
				w[t][j] = rng.Float32()
			}
		}
		for j := range base {
			base[j] = int32(rng.IntN(rows-1)*row + rng.IntN(row-1))
		}
		var q Quads
		err := q.Set(base, w, row)
		if err != nil {
			t.Fatal(err)
		}
		dst := make([]float32, n)
		q.Sample(dst, x)
		for j, o := range base {
			want := w[0][j]*x[o] + w[1][j]*x[o+1] + w[2][j]*x[int(o)+row] + w[3][j]*x[int(o)+row+1]
			if dst[j] != want {
				t.Fatalf("n %d point %d: %g, want %g", n, j, dst[j], want)
			}
		}
	}
}
