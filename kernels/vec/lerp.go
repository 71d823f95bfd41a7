package vec

// Lerp64 sets dst[i] = float32((0 + wa*float64(a[i])) + wb*float64(b[i])),
// every step rounded in float64 as the scalar loop of linear Resize rounds
// it (the 0 turns a -0 sum into +0 as that loop's accumulator does).
func Lerp64(dst, a, b []float32, wa, wb float64) {
	n := len(dst)
	a, b = a[:n], b[:n]
	k := 0
	if useSIMD {
		k = n &^ 7
		if k > 0 {
			lerp64Asm(&dst[0], &a[0], &b[0], k, wa, wb)
		}
	}
	for i := k; i < n; i++ {
		s := 0.0
		s += wa * float64(a[i])
		s += wb * float64(b[i])
		dst[i] = float32(s)
	}
}
