package kernels

import (
	"fmt"
	"sync"
	"testing"
)

// TestParallelIterVisitsEachElementOnce walks broadcast shapes (same
// shapes, a per-channel operand, a scalar, size-1 and size-0 axes, rank 0,
// a transposed operand) on 1 to 4 threads and checks that every output
// element is visited once with each operand's offset where its index puts
// it, and that bcastIter visits them in row-major order.
func TestParallelIterVisitsEachElementOnce(t *testing.T) {
	cases := []struct {
		out []int
		in  [][]int
	}{
		{[]int{}, [][]int{{}}},
		{[]int{1}, [][]int{{1}}},
		{[]int{7}, [][]int{{7}, {}}},
		{[]int{1, 1, 5}, [][]int{{5}, {1, 1, 1}}},
		{[]int{2, 3, 4}, [][]int{{2, 3, 4}, {3, 1}, {4}}},
		{[]int{1, 16, 5, 5}, [][]int{{1, 16, 5, 5}, {1, 16, 1, 1}}},
		{[]int{2, 1, 3, 1, 4}, [][]int{{1, 1, 3, 1, 1}, {2, 1, 1, 1, 4}}},
		{[]int{3, 0, 2}, [][]int{{3, 0, 2}, {1}}},
		{[]int{1, 3, 1000}, [][]int{{1, 3, 1000}, {1000}}},
		{[]int{2, 3, 2, 2, 3, 2}, [][]int{{2, 3, 2, 2, 3, 2}, {2, 1, 2, 1, 3, 1}}},
	}
	for _, tc := range cases {
		strides := [][]int{}
		for _, s := range tc.in {
			strides = append(strides, bcastStrides(s, tc.out))
		}
		strides = append(strides, stridesOf(tc.out))
		// A transposed operand: the output's axes in reverse order.
		rev := make([]int, len(tc.out))
		st := 1
		for d := range tc.out {
			rev[d] = st
			st *= tc.out[d]
		}
		strides = append(strides, rev)
		total := 1
		for _, d := range tc.out {
			total *= d
		}
		// want[k][e] is operand k's offset at output element e.
		want := make([][]int, len(strides))
		for k := range strides {
			want[k] = make([]int, total)
			for e := range total {
				rem, off := e, 0
				for d := len(tc.out) - 1; d >= 0; d-- {
					off += rem % tc.out[d] * strides[k][d]
					rem /= tc.out[d]
				}
				want[k][e] = off
			}
		}
		o := len(tc.in) // the output's operand
		for _, threads := range []int{0, 1, 2, 4} {
			name := fmt.Sprintf("%v/%d", tc.out, threads)
			var mu sync.Mutex
			seen := make([]int, total)
			var order []int
			var bad []string
			visit := func(offs []int, n int, inner []int) {
				mu.Lock()
				defer mu.Unlock()
				for j := range n {
					e := offs[o] + j*inner[o]
					if e < 0 || e >= total {
						bad = append(bad, fmt.Sprintf("output offset %d out of range", e))
						continue
					}
					seen[e]++
					order = append(order, e)
					for k := range strides {
						if got := offs[k] + j*inner[k]; got != want[k][e] {
							bad = append(bad, fmt.Sprintf("element %d: operand %d at %d, want %d", e, k, got, want[k][e]))
						}
					}
				}
			}
			if threads == 0 {
				bcastIter(tc.out, strides, visit)
			} else {
				parallelIter(threads, tc.out, strides, visit)
			}
			for e, c := range seen {
				if c != 1 {
					bad = append(bad, fmt.Sprintf("element %d visited %d times", e, c))
				}
			}
			if threads == 0 {
				for i, e := range order {
					if e != i {
						bad = append(bad, fmt.Sprintf("bcastIter visited element %d %dth", e, i))
						break
					}
				}
			}
			if len(bad) > 0 {
				t.Errorf("%s: %d problems, first: %s", name, len(bad), bad[0])
			}
		}
	}
}
