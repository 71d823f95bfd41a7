package vec

import "fmt"

// Quads is a block of bilinear points on a plane of rows of row values, each
// point j reading the square of four values at base[j], base[j]+1,
// base[j]+row and base[j]+row+1 with the weights w[0][j] .. w[3][j]. Set
// checks the offsets once, so that Sample can read planes without checking
// each point.
type Quads struct {
	base []int32
	w    [4][]float32
	row  int
	end  int     // the largest offset read, plus 1: a plane must be this long
	perm []int32 // base in the order the assembly gathers it
}

// Set makes q the block of base and w (each as long as base), keeping
// references to them; every base offset must be 0 or more.
func (q *Quads) Set(base []int32, w [4][]float32, row int) error {
	n := len(base)
	for t := range w {
		if len(w[t]) < n {
			return fmt.Errorf("vec.Quads: %d weights %d for %d points", len(w[t]), t, n)
		}
		w[t] = w[t][:n]
	}
	if row < 0 {
		return fmt.Errorf("vec.Quads: negative row %d", row)
	}
	hi := int32(0)
	for _, o := range base {
		if o < 0 {
			return fmt.Errorf("vec.Quads: negative offset %d", o)
		}
		hi = max(hi, o)
	}
	// Each step gathers the pairs of points 0, 1, 4, 5, then of 2, 3, 6, 7,
	// so that splitting the pairs puts the points in order (quadsAVX2).
	k := simdLen(n)
	if cap(q.perm) < k {
		q.perm = make([]int32, k)
	}
	q.perm = q.perm[:k]
	for j := 0; j < k; j += 8 {
		b, p := base[j:j+8:j+8], q.perm[j:j+8:j+8]
		p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7] = b[0], b[1], b[4], b[5], b[2], b[3], b[6], b[7]
	}
	*q = Quads{base: base, w: w, row: row, end: int(hi) + row + 2, perm: q.perm}
	return nil
}

// Sample sets dst[j] = ((w[0][j]*x[o] + w[1][j]*x[o+1]) + w[2][j]*x[o+row]) +
// w[3][j]*x[o+row+1] with o = base[j], each product and sum rounded to
// float32 (no fused multiply-add).
func (q *Quads) Sample(dst, x []float32) {
	n := len(q.base)
	if n == 0 {
		return
	}
	if len(dst) < n || len(x) < q.end {
		panic(fmt.Sprintf("vec.Quads.Sample: %d outputs for %d points, a plane of %d for %d", len(dst), n, len(x), q.end))
	}
	k := len(q.perm)
	if k > 0 {
		quadsAsm(&dst[0], &x[0], &q.perm[0], &q.w[0][0], &q.w[1][0], &q.w[2][0], &q.w[3][0], k, q.row)
	}
	w0, w1, w2, w3, r := q.w[0], q.w[1], q.w[2], q.w[3], q.row
	for j := k; j < n; j++ {
		o := int(q.base[j])
		dst[j] = float32(float32(float32(w0[j]*x[o])+float32(w1[j]*x[o+1]))+float32(w2[j]*x[o+r])) + float32(w3[j]*x[o+r+1])
	}
}
