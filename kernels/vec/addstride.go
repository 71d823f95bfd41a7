package vec

// AddEveryOther adds x[i] into dst[2*i] for i < len(x), leaving the odd
// elements of dst as they are: the scatter-add of a stride-2 transposed
// convolution's tap (col2im). dst must hold 2*len(x)-1 floats. Each element
// takes the one add it would in a scalar loop, so the bits are the same.
func AddEveryOther(dst, x []float32) {
	n := len(x)
	if n == 0 {
		return
	}
	dst = dst[:2*n-1]
	k := 0
	if useSIMD {
		// The assembly writes dst[2*i+1] too (adding -0, which keeps every
		// value's bits), so it stops where that would pass the slice.
		k = (n - 1) &^ 7
		if k > 0 {
			addEveryOtherAsm(&dst[0], &x[0], k)
		}
	}
	for i := k; i < n; i++ {
		dst[2*i] += x[i]
	}
}
