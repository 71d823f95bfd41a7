package wround

import "math"

// FitRange sets parameter p's scale and zero point from the range [lo, hi]
// as the converter computes a weight encoding (passes.ComputeEncoding): the
// range widened to include zero, symmetric around zero when the layer is,
// over the layer's code range.
func (l *Layer) FitRange(p int, lo, hi float64) {
	lo, hi = math.Min(lo, 0), math.Max(hi, 0)
	qmin, qmax := float64(l.QMin), float64(l.QMax)
	var scale float64
	var zero int32
	switch {
	case l.Symmetric && l.QMin < 0:
		scale = math.Max(-lo, hi) / qmax
	case l.Symmetric:
		scale = 2 * math.Max(-lo, hi) / (qmax - qmin)
		zero = (l.QMax + l.QMin + 1) / 2
	default:
		scale = (hi - lo) / (qmax - qmin)
		if scale > 0 {
			zero = int32(math.Max(qmin, math.Min(qmax, math.RoundToEven(qmin-lo/scale))))
		} else if l.QMin > 0 {
			zero = l.QMin
		}
	}
	if scale == 0 || float32(scale) == 0 || math.IsInf(float64(float32(scale)), 0) {
		scale = 1 // all-zero data: any scale represents it exactly
	}
	l.Scale[p], l.Zero[p] = float32(scale), zero
}

// span is the range of k a group covers in a row: [k0, k1).
func (l *Layer) span(g int) (k0, k1 int) {
	if l.PerTensor {
		return 0, l.K
	}
	return g * l.Group, min((g+1)*l.Group, l.K)
}
