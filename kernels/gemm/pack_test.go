package gemm

import (
	"math/rand/v2"
	"testing"
)

// TestPackPanelsMatchDefinition: 12- and 6-row panels packed 8 columns at a
// time in registers (packPanel) hold A's values where the definition puts them
// (panel row p, float i: A[i0+i][pc+p]), for k blocks of 1-8, 9-16 and
// more columns, offset rows and columns, and a stride past the block.
func TestPackPanelsMatchDefinition(t *testing.T) {
	r := rand.New(rand.NewPCG(25, 26))
	for _, c := range []struct{ rows, cols, i0, pc, kc int }{
		{12, 8, 0, 0, 8}, {12, 7, 0, 0, 7}, {24, 40, 12, 3, 37}, {36, 300, 5, 40, 256}, {13, 19, 1, 2, 17},
	} {
		a := Matrix{randMat(r, c.rows*c.cols), c.cols, false}
		for _, mr := range []int{12, 6} {
			mc := (c.rows - c.i0) / mr * mr
			dst := make([]float32, mc*c.kc)
			packA(dst, a, 1, c.i0, mc, c.pc, c.kc, mr)
			for ir := 0; ir < mc; ir += mr {
				for p := 0; p < c.kc; p++ {
					for i := 0; i < mr; i++ {
						if got, want := dst[ir*c.kc+p*mr+i], a.at(c.i0+ir+i, c.pc+p); got != want {
							t.Fatalf("%+v mr %d: panel %d row %d float %d = %v, want %v", c, mr, ir/mr, p, i, got, want)
						}
					}
				}
			}
		}
	}
}
