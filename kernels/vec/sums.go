package vec

// Sum is the sum of x accumulated in float64 (in four lanes on the AVX2 path,
// so the last bits may differ from a sequential sum).
func Sum(x []float32) float64 {
	var acc [4]float64
	k := 0
	if useFMA {
		k = len(x) &^ 7
		if k > 0 {
			sumF64Asm(&x[0], k, &acc)
		}
	}
	s := (acc[0] + acc[1]) + (acc[2] + acc[3])
	for _, v := range x[k:] {
		s += float64(v)
	}
	return s
}

// SumSqDev is the sum of (x - mean)^2 in float64: the variance's numerator,
// in the two-pass form that does not cancel when the mean is large.
func SumSqDev(x []float32, mean float64) float64 {
	var acc [4]float64
	k := 0
	if useFMA {
		k = len(x) &^ 7
		if k > 0 {
			sumSqDevAsm(&x[0], k, mean, &acc)
		}
	}
	s := (acc[0] + acc[1]) + (acc[2] + acc[3])
	for _, v := range x[k:] {
		d := float64(v) - mean
		s += d * d
	}
	return s
}
