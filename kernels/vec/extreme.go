package vec

import "math"

// MaxInto sets dst[i] = max(dst[i], x[i]) as math.Max takes it on float32
// values: NaN if either is NaN (the canonical NaN, math.NaN's float32), +0
// over -0. Reductions (ReduceMax along a middle axis) fold rows into dst;
// the order does not change the result.
func MaxInto(dst, x []float32) { extremeInto(dst, x, true) }

// MinInto is MaxInto for math.Min: -0 under +0.
func MinInto(dst, x []float32) { extremeInto(dst, x, false) }

// Extreme returns the largest (isMax) or smallest value of x as math.Max or
// math.Min fold it from -Inf or +Inf.
func Extreme(x []float32, isMax bool) float32 {
	var lanes [8]float32
	start := float32(math.Inf(1))
	if isMax {
		start = float32(math.Inf(-1))
	}
	for i := range lanes {
		lanes[i] = start
	}
	k := 0
	if useSIMD {
		k = len(x) &^ 7
		if k > 0 {
			extremeFoldAsm(&lanes, &x[0], k, isMax)
		}
	}
	r := start
	for _, v := range lanes {
		r = pickExtreme(r, v, isMax)
	}
	for _, v := range x[k:] {
		r = pickExtreme(r, v, isMax)
	}
	return r
}

func extremeInto(dst, x []float32, isMax bool) {
	n := len(dst)
	x = x[:n]
	k := 0
	if useSIMD {
		k = n &^ 7
		if k > 0 {
			extremeIntoAsm(&dst[0], &x[0], k, isMax)
		}
	}
	for i := k; i < n; i++ {
		dst[i] = pickExtreme(dst[i], x[i], isMax)
	}
}

// pickExtreme is math.Max (isMax) or math.Min on float32 values.
func pickExtreme(a, b float32, isMax bool) float32 {
	if isMax {
		return float32(math.Max(float64(a), float64(b)))
	}
	return float32(math.Min(float64(a), float64(b)))
}
