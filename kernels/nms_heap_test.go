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
// last), on scores with many ties and NaNs.
func TestCandidateHeapOrder(t *testing.T) {
	r := rand.New(rand.NewPCG(19, 20))
	for _, n := range []int{0, 1, 2, 7, 100, 1000} {
		s := make([]float32, n)
		for i := range s {
			s[i] = float32(r.IntN(10))
			if r.IntN(20) == 0 {
				s[i] = float32(math.NaN())
			}
		}
		want := make([]int, n)
		for i := range want {
			want[i] = i
		}
		slices.SortStableFunc(want, func(i, j int) int { return cmp.Compare(s[j], s[i]) })
		h := candidateHeap{order: slices.Clone(want), before: func(i, j int) bool {
			c := cmp.Compare(s[j], s[i])
			return c < 0 || (c == 0 && i < j)
		}}
		r.Shuffle(len(h.order), func(i, j int) { h.order[i], h.order[j] = h.order[j], h.order[i] })
		h.init()
		for k, w := range want {
			if got := h.pop(); got != w {
				t.Fatalf("n=%d: pop %d is %d (score %v), want %d (score %v)", n, k, got, s[got], w, s[w])
			}
		}
	}
}
