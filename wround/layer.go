// Package wround chooses the integer codes of one layer's weights from data:
// the algorithms behind --weight-rounding (GPTQ, AWQ, AdaRound, HQQ) and
// --weight-range mse. It knows nothing of graphs: the converter's engine
// turns a MatMul, Gemm or Conv weight into a Layer, collects the layer's
// input rows (MatMul/Gemm activation rows, Conv im2col patches in the
// weight's K order) on the calibration set, calls one algorithm, and writes
// the chosen codes back as the weight's quantized values.
package wround

import (
	"fmt"
	"math"
)

// Layer is one weight seen as a matrix W[n*K+k]: n over output channels, k
// over the reduction (for Conv, input channel x kernel position in the
// weight's own memory order, which is the order of im2col's rows). Codes are
// integers in [QMin, QMax]; each row has Groups() groups of Group
// consecutive k (the last may be shorter), each with its own scale and
// integer zero point (Group == K: per channel). PerTensor layers have one
// scale and zero point in total.
type Layer struct {
	W          []float32
	N, K       int
	QMin, QMax int32
	Group      int
	PerTensor  bool
	Scale      []float32 // N*Groups() entries, or 1 when PerTensor
	Zero       []int32   // same layout as Scale
	// Pinned: Scale and Zero come from the user (overrides); algorithms
	// choose codes only and must not change them.
	Pinned bool
	// Symmetric: ranges an algorithm refits stay centred on zero, as the
	// layer's encoding was computed.
	Symmetric bool
	// Taps is the number of consecutive k that read one input channel:
	// kh*kw for a Conv (k = channel*Taps + kernel position), 0 or 1 for
	// MatMul and Gemm. AWQ's input scales are per channel, so they are
	// shared by a channel's taps.
	Taps int
}

// Check reports a layer whose fields do not fit together.
func (l *Layer) Check() error {
	switch {
	case l.N <= 0 || l.K <= 0 || len(l.W) != l.N*l.K:
		return fmt.Errorf("layer %dx%d with %d weights", l.N, l.K, len(l.W))
	case l.QMin >= l.QMax:
		return fmt.Errorf("code range [%d, %d] is empty", l.QMin, l.QMax)
	case !l.PerTensor && (l.Group <= 0 || l.Group > l.K):
		return fmt.Errorf("group size %d for K=%d", l.Group, l.K)
	case l.Taps < 0 || l.Taps > 1 && l.K%l.Taps != 0:
		return fmt.Errorf("%d taps per input channel for K=%d", l.Taps, l.K)
	}
	want := 1
	if !l.PerTensor {
		want = l.N * l.Groups()
	}
	if len(l.Scale) != want || len(l.Zero) != want {
		return fmt.Errorf("%d scales and %d zero points, want %d", len(l.Scale), len(l.Zero), want)
	}
	for _, s := range l.Scale {
		if !(s > 0) || math.IsInf(float64(s), 0) {
			return fmt.Errorf("scale %v is not positive and finite", s)
		}
	}
	return nil
}

// Groups is the number of scale groups in one row.
func (l *Layer) Groups() int {
	if l.PerTensor {
		return 1
	}
	return (l.K + l.Group - 1) / l.Group
}

// Param is the index into Scale/Zero of element (n, k).
func (l *Layer) Param(n, k int) int {
	if l.PerTensor {
		return 0
	}
	return n*l.Groups() + k/l.Group
}

// Quantize rounds v to the nearest code of element (n, k)'s grid, ties to
// even, clamped: QuantizeLinear's arithmetic.
func (l *Layer) Quantize(n, k int, v float32) int32 {
	p := l.Param(n, k)
	return Nearest(v, l.Scale[p], l.Zero[p], l.QMin, l.QMax)
}

// Dequantize is the value code q stands for at element (n, k).
func (l *Layer) Dequantize(n, k int, q int32) float32 {
	p := l.Param(n, k)
	return float32(q-l.Zero[p]) * l.Scale[p]
}

// Nearest is QuantizeLinear on one value: round half to even of v/scale,
// plus the zero point, saturated to [qmin, qmax].
func Nearest(v, scale float32, zero, qmin, qmax int32) int32 {
	r := math.RoundToEven(float64(v/scale)) + float64(zero)
	return int32(max(float64(qmin), min(float64(qmax), r)))
}

// RTN is round-to-nearest: the codes every algorithm here is measured
// against.
func (l *Layer) RTN() []int32 {
	q := make([]int32, len(l.W))
	for n := range l.N {
		for k := range l.K {
			q[n*l.K+k] = l.Quantize(n, k, l.W[n*l.K+k])
		}
	}
	return q
}

// Dequantized is W as the codes q represent it.
func (l *Layer) Dequantized(q []int32) []float32 {
	w := make([]float32, len(q))
	for n := range l.N {
		for k := range l.K {
			w[n*l.K+k] = l.Dequantize(n, k, q[n*l.K+k])
		}
	}
	return w
}

// OutputMSE is the mean squared error of the layer's output X W'^T against
// X W^T over the input rows x (m rows of K): what the algorithms minimise,
// and what the converter reports before and after.
func (l *Layer) OutputMSE(q []int32, x []float32, m int) float64 {
	if m == 0 {
		return 0
	}
	wq := l.Dequantized(q)
	var sum float64
	d := make([]float64, l.K)
	for n := range l.N {
		for k := range l.K {
			d[k] = float64(wq[n*l.K+k]) - float64(l.W[n*l.K+k])
		}
		for r := range m {
			row := x[r*l.K : (r+1)*l.K]
			var e float64
			for k, v := range row {
				e += float64(v) * d[k]
			}
			sum += e * e
		}
	}
	return sum / float64(m*l.N)
}
