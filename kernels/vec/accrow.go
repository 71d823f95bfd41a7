package vec

// AccRow is one step of a running sum down rows (CumSum along a middle
// axis): acc[i] += float64(x[i]) and dst[i] = float32(acc[i]), or with
// exclusive dst[i] takes acc[i] before the add. The sums are float64, so
// both paths give the bits of the scalar loop.
func AccRow(acc []float64, x, dst []float32, exclusive bool) {
	n := len(dst)
	acc, x = acc[:n], x[:n]
	k := 0
	if useSIMD {
		k = n &^ 3
	}
	if k > 0 {
		accRowAsm(&acc[0], &x[0], &dst[0], k, exclusive)
	}
	for i := k; i < n; i++ {
		if exclusive {
			dst[i] = float32(acc[i])
			acc[i] += float64(x[i])
		} else {
			acc[i] += float64(x[i])
			dst[i] = float32(acc[i])
		}
	}
}

// WidenAdd sets acc[i] += float64(x[i]): float64 sums of float32 rows (a
// Softmax's denominators down its columns), the scalar loop's bits.
func WidenAdd(acc []float64, x []float32) {
	n := len(x)
	acc = acc[:n]
	k := 0
	if useSIMD {
		k = n &^ 7
	}
	if k > 0 {
		widenAddAsm(&acc[0], &x[0], k)
	}
	for i := k; i < n; i++ {
		acc[i] += float64(x[i])
	}
}
