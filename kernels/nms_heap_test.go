package kernels

import (
	"cmp"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestCandidateHeapOrder: NonMaxSuppression's candidate heap yields the
// order of a stable descending sort by score (equal scores by index, NaN
// last, -0 tying +0), on scores with many ties and NaNs.
func TestCandidateHeapOrder(t *testing.T) {
	r := rand.New(rand.NewPCG(19, 20))
	for _, n := range []int{0, 1, 2, 7, 100, 1000} {
		s := make([]float32, n)
		for i := range s {
			s[i] = float32(r.IntN(10))
			switch r.IntN(20) {
			case 0:
				s[i] = float32(math.NaN())
			case 1:
				s[i] = float32(math.Copysign(0, -1)) // ties +0
			}
		}
		want := make([]int, n)
		for i := range want {
			want[i] = i
		}
		slices.SortStableFunc(want, func(i, j int) int { return cmp.Compare(s[j], s[i]) })
		h := make(candidateHeap, n)
		for i := range h {
			h[i] = nmsCand{s[i], int32(i)}
		}
		r.Shuffle(len(h), func(i, j int) { h[i], h[j] = h[j], h[i] })
		h.init()
		for k, w := range want {
			if got := h.pop(); got != w {
				t.Fatalf("n=%d: pop %d is %d (score %v), want %d (score %v)", n, k, got, s[got], w, s[w])
			}
		}
	}
}
