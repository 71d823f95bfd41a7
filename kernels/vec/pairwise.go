package vec

// Max sets dst[i] = max(a[i], b[i]); a NaN in either gives NaN (as MaxPool
// and the ONNX Max op propagate it): b's when b is NaN, else a's. Between
// equal values (+0 and -0) it keeps a's. Both paths give the same bits.
// dst may be a itself, and b may start further on in dst (b = dst[s:],
// s >= 0): pooling takes running maxima of a row and the row shifted in place.
func Max(dst, a, b []float32) {
	n := len(dst)
	a, b = a[:n], b[:n]
	k := simdLen(n)
	if k > 0 {
		maxAsm(&dst[0], &a[0], &b[0], k)
	}
	for i := k; i < n; i++ {
		if x, y := a[i], b[i]; y != y || y > x {
			dst[i] = y
		} else {
			dst[i] = x
		}
	}
}

// Div sets dst[i] = a[i] / b[i].
func Div(dst, a, b []float32) {
	n := len(dst)
	a, b = a[:n], b[:n]
	k := simdLen(n)
	if k > 0 {
		divAsm(&dst[0], &a[0], &b[0], k)
	}
	for i := k; i < n; i++ {
		dst[i] = a[i] / b[i]
	}
}
