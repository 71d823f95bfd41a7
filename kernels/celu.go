package kernels

import (
	"fmt"
	"math"

	"github.com/onnxq/onnxq/kernels/vec"
)

// celu returns Celu(x) = max(0, x) + min(0, alpha*(e^(x/alpha) - 1)). For
// alpha > 0 that is x where x > 0 and alpha*Elu_1(x/alpha) elsewhere, so it
// runs on vec.Elu in blocks that stay in L1; positive x is copied so that it
// comes out exact. A negative alpha (rare; the exponential's argument is then
// positive where the result is) takes the scalar float64 formula.
func celu(alpha float32) (sliceFn, error) {
	if alpha == 0 || math.IsNaN(float64(alpha)) {
		return nil, fmt.Errorf("Celu alpha must be nonzero, got %g", alpha)
	}
	if alpha < 0 {
		a := float64(alpha)
		return pointwise(func(x float32) float32 {
			v := float64(x)
			return float32(math.Max(0, v) + math.Min(0, a*math.Expm1(v/a)))
		}), nil
	}
	return func(dst, src []float32) {
		var buf [256]float32
		for lo := 0; lo < len(src); lo += len(buf) {
			hi := min(lo+len(buf), len(src))
			t := buf[:hi-lo]
			vec.DivScalar(t, src[lo:hi], alpha)
			vec.Elu(t, t, 1)
			vec.MulScalar(t, t, alpha)
			for i, x := range src[lo:hi] {
				if x > 0 {
					t[i] = x
				}
			}
			copy(dst[lo:hi], t)
		}
	}, nil
}
