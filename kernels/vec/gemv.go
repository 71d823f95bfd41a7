package vec

// MulAddT sets y[j] += sum_i x[i]*a[i*lda+j] for j < len(y) and i < len(x):
// y += x·A with A row-major, len(x) rows lda apart. It is a matrix-vector
// product for a matrix kept transposed, as the recurrent kernels keep R^T.
// The AVX2 path holds 64 outputs in registers while it streams down A's rows
// and rounds once per term (FMA); the portable loop rounds twice, so the two
// paths agree to rounding, not bit for bit.
func MulAddT(y, x, a []float32, lda int) {
	n, k := len(y), len(x)
	if n == 0 || k == 0 {
		return
	}
	_ = a[(k-1)*lda+n-1]
	j0 := 0
	if useFMA {
		j0 = n &^ 7
		if j0 > 0 {
			gemvAsm(&y[0], &x[0], &a[0], k, lda, j0)
		}
	}
	for j := j0; j < n; j++ {
		s := y[j]
		for i, v := range x {
			s += v * a[i*lda+j]
		}
		y[j] = s
	}
}
