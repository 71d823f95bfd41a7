package vec

import "fmt"

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

// RowMeans sets dst[i] to the mean of row i of x (len(dst) rows of n floats,
// back to back): float32(Sum(row) / n), with Sum's summation order, so the
// bits are those of a Sum per row; one call for all rows, as global average
// pooling wants on its many small planes (MobileNet's 1280 planes of 7x7).
func RowMeans(dst, x []float32, n int) error {
	if n <= 0 || len(x) != len(dst)*n {
		return fmt.Errorf("vec.RowMeans: %d floats are not %d rows of %d", len(x), len(dst), n)
	}
	if useFMA && len(dst) > 0 {
		rowMeansAVX2(&dst[0], &x[0], len(dst), n)
		return nil
	}
	for i := range dst {
		dst[i] = float32(Sum(x[i*n:(i+1)*n]) / float64(n))
	}
	return nil
}
