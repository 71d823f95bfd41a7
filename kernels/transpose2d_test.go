package kernels

import (
	"fmt"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/graph/onnxpb"
)

// naiveTranspose permutes x one element at a time, by index arithmetic.
func naiveTranspose(x []float32, shape, perm []int) []float32 {
	r := len(shape)
	out := make([]float32, len(x))
	xs := stridesOf(shape)
	oshape := make([]int, r)
	for i, p := range perm {
		oshape[i] = shape[p]
	}
	idx := make([]int, r)
	for o := range out {
		src := 0
		for i := range idx {
			src += idx[i] * xs[perm[i]]
		}
		out[o] = x[src]
		for i := r - 1; i >= 0; i-- {
			if idx[i]++; idx[i] < oshape[i] {
				break
			}
			idx[i] = 0
		}
	}
	return out
}

func TestTransposeMatchesNaive(t *testing.T) {
	cases := []struct {
		shape, perm []int
		matrix      bool // goes through transposeBlocked
		block       bool // goes through transposeBlocks
	}{
		{[]int{1, 85, 3549}, []int{0, 2, 1}, true, false}, // YOLO's head
		{[]int{17, 33}, []int{1, 0}, true, false},
		{[]int{1, 1}, []int{1, 0}, false, false},
		{[]int{3, 5, 7}, []int{0, 2, 1}, true, false},
		{[]int{3, 5, 1, 7}, []int{0, 3, 2, 1}, true, false},
		{[]int{2, 3, 4, 5}, []int{0, 3, 1, 2}, true, false}, // [2, 12, 5] -> [2, 5, 12]
		{[]int{2, 3, 4, 5}, []int{2, 3, 0, 1}, true, false}, // [6, 20] -> [20, 6]
		{[]int{2, 3, 4, 5}, []int{1, 0, 2, 3}, false, true}, // swaps the leading two under a block of 20
		{[]int{2, 3, 4, 5}, []int{0, 2, 1, 3}, false, true}, // attention's heads: blocks of 5
		{[]int{1, 256, 8, 8}, []int{0, 2, 1, 3}, false, true},
		{[]int{1, 7, 3, 8}, []int{0, 2, 1, 3}, false, true},
		{[]int{2, 3, 4, 5, 6}, []int{0, 3, 1, 2, 4}, false, true},
		{[]int{2, 3, 4, 5}, []int{3, 2, 1, 0}, false, false},
		{[]int{2, 3, 4, 5}, []int{0, 3, 2, 1}, false, false},
		{[]int{2, 3, 4}, []int{0, 1, 2}, false, false},
		{[]int{31, 1, 18}, []int{1, 2, 0}, true, false},
		{[]int{40, 3}, []int{1, 0}, true, false},
		// Short contiguous runs copied a row of them at a time (Swin's
		// q, k, v split; its window partition is a block transpose), and
		// a long run.
		{[]int{4, 4, 3, 3, 16}, []int{2, 0, 3, 1, 4}, false, false},
		{[]int{1, 4, 4, 4, 4, 6}, []int{0, 1, 3, 2, 4, 5}, false, true},
		{[]int{2, 3, 2, 2, 70}, []int{2, 0, 3, 1, 4}, false, false},
	}
	for _, c := range cases {
		t.Run(fmt.Sprint(c.shape, c.perm), func(t *testing.T) {
			_, _, _, ok := matrixTranspose(c.shape, c.perm)
			if ok != c.matrix {
				t.Errorf("matrixTranspose says %v, want %v", ok, c.matrix)
			}
			if _, _, _, _, ok := blockTranspose(c.shape, c.perm); ok != c.block && !c.matrix {
				t.Errorf("blockTranspose says %v, want %v", ok, c.block)
			}
			x := seeded(7, c.shape...)
			p64 := make([]int64, len(c.perm))
			for i, p := range c.perm {
				p64[i] = int64(p)
			}
			got := runOp(t, "Transpose", []*onnxpb.AttributeProto{graph.AttrIntsOf("perm", p64...)}, x)[0].Float32s()
			want := naiveTranspose(x.Float32s(), c.shape, c.perm)
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("element %d: %v, want %v", i, got[i], want[i])
				}
			}
		})
	}
}

// TestTransposeBlockedSplits checks that strips of destination rows, as
// threads take them, together write the whole transpose.
func TestTransposeBlockedSplits(t *testing.T) {
	rows, cols := 37, 53
	src := seededFloats(rows*cols, 3)
	dst := make([]float32, rows*cols)
	for j := 0; j < cols; j += 11 { // strips of 8 and a tail of 3
		transposeBlocked(dst, src, rows, cols, j, min(cols, j+11))
	}
	want := naiveTranspose(src, []int{rows, cols}, []int{1, 0})
	for i := range want {
		if dst[i] != want[i] {
			t.Fatalf("element %d: %v, want %v", i, dst[i], want[i])
		}
	}
}

// BenchmarkTransposeHead times YOLO's head transpose against one strided
// pass per destination row.
func BenchmarkTransposeHead(b *testing.B) {
	rows, cols := 85, 3549
	src := seededFloats(rows*cols, 3)
	dst := make([]float32, rows*cols)
	b.Run("blocked", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			transposeBlocked(dst, src, rows, cols, 0, cols)
		}
	})
	b.Run("rows", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			for j := 0; j < cols; j++ {
				d := dst[j*rows : (j+1)*rows]
				for k := range d {
					d[k] = src[j+k*cols]
				}
			}
		}
	})
}
