package vec

import "fmt"

// SumTaps sets dst[i] = bias + w[0]*src[offs[0]+i] + w[1]*src[offs[1]+i] + ...
// adding the taps in order, one rounded multiply and one rounded add each (the
// same values as starting from bias and calling Axpy once per tap). It is the
// inner loop of a direct convolution over a zero-padded plane, where each
// kernel tap reads the plane at a fixed offset: the running sums stay in
// registers across all taps instead of passing through memory once per tap.
func SumTaps(dst, src []float32, offs []int, w []float32, bias float32) error {
	if len(offs) != len(w) {
		return fmt.Errorf("vec.SumTaps: %d offsets for %d weights", len(offs), len(w))
	}
	n := len(dst)
	for _, o := range offs {
		if o < 0 || o+n > len(src) {
			return fmt.Errorf("vec.SumTaps: tap offset %d reads past a source of %d for %d outputs", o, len(src), n)
		}
	}
	k := simdLen(n)
	if k > 0 && len(offs) > 0 {
		sumTapsAsm(&dst[0], &src[0], &offs[0], &w[0], len(offs), k, bias)
	} else {
		k = 0
	}
	for i := k; i < n; i++ {
		dst[i] = bias
	}
	for t, o := range offs {
		wv, s := w[t], src[o:]
		for i := k; i < n; i++ {
			dst[i] += wv * s[i]
		}
	}
	return nil
}

// Strided sets dst[j] = src[j*stride]: a strided input row gathered into a
// dense one (a plain copy at stride 1, Stride2's shuffles at stride 2).
func Strided(dst, src []float32, stride int) {
	switch stride {
	case 1:
		copy(dst, src)
	case 2:
		Stride2(dst, src)
	default:
		for j := range dst {
			dst[j] = src[j*stride]
		}
	}
}

// Stride2 sets dst[j] = src[2j]: one column phase of a stride-2 convolution's
// input row.
func Stride2(dst, src []float32) {
	n := len(dst)
	if n == 0 {
		return
	}
	_ = src[2*n-2] // src must reach the last element read
	src = src[:min(len(src), 2*n)]
	// The assembly reads pairs, so it stops where src[2j+1] would run past.
	k := simdLen(n)
	if 2*k > len(src) {
		k -= 8
	}
	if k > 0 {
		stride2Asm(&dst[0], &src[0], k)
	}
	for j := max(k, 0); j < n; j++ {
		dst[j] = src[2*j]
	}
}
