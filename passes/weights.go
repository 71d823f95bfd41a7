package passes

import (
	"fmt"
	"math"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/kernels"
)

// WeightEncoding computes a weight's encoding from its values: per tensor
// (axis < 0), per channel along axis, or per block of blockSize values along
// axis. Symmetric encodings center each range on zero.
func WeightEncoding(t *graph.Tensor, axis, blockSize int, dt graph.DataType, symmetric bool) (*Encoding, error) {
	w, err := t.AsFloat32()
	if err != nil {
		return nil, err
	}
	enc := &Encoding{DType: dt, Axis: axis}
	n := 1
	switch {
	case axis >= t.Rank():
		return nil, fmt.Errorf("axis %d is outside the weight's rank %d", axis, t.Rank())
	case axis >= 0 && blockSize > 0:
		enc.BlockSize = blockSize
		enc.ScaleShape = append([]int(nil), t.Shape...)
		enc.ScaleShape[axis] = (t.Shape[axis] + blockSize - 1) / blockSize
		n = graph.Numel(enc.ScaleShape)
	case axis >= 0:
		n = t.Shape[axis]
	default:
		enc.Axis = 0
	}
	lo, hi := make([]float32, n), make([]float32, n)
	for k := range lo {
		lo[k], hi[k] = float32(math.Inf(1)), float32(math.Inf(-1))
	}
	if n == 1 { // one channel or one block is per tensor
		enc.Axis, enc.BlockSize, enc.ScaleShape = 0, 0, nil
	}
	enc.Scale = make([]float32, n) // ScaleIndex reads the count
	at := enc.ScaleIndex(t.Shape)
	for i, v := range w {
		k := at(i)
		lo[k], hi[k] = min(lo[k], v), max(hi[k], v)
	}
	for k := range lo {
		if lo[k] > hi[k] { // no values (an empty tensor)
			lo[k], hi[k] = 0, 0
		}
	}
	return enc, enc.fill(lo, hi, symmetric)
}

// RangeEncoding turns given ranges (one, or one per channel along axis) into
// an encoding, as for a calibrated range.
func RangeEncoding(lo, hi []float32, axis int, dt graph.DataType, symmetric bool) (*Encoding, error) {
	if len(lo) != len(hi) || len(lo) == 0 {
		return nil, fmt.Errorf("%d minimums for %d maximums", len(lo), len(hi))
	}
	enc := &Encoding{DType: dt}
	if len(lo) > 1 {
		enc.Axis = axis
	}
	return enc, enc.fill(lo, hi, symmetric)
}

func (e *Encoding) fill(lo, hi []float32, symmetric bool) error {
	e.Scale, e.ZeroPoint = make([]float32, len(lo)), make([]int64, len(lo))
	for k := range lo {
		if lo[k] > hi[k] {
			return fmt.Errorf("min %v is above max %v", lo[k], hi[k])
		}
		one, err := ComputeEncoding(lo[k], hi[k], e.DType, symmetric)
		if err != nil {
			return err
		}
		e.Scale[k], e.ZeroPoint[k] = one.Scale[0], one.ZeroPoint[0]
	}
	return nil
}

// FakeQuantize returns x (of shape) quantized and dequantized with the encoding,
// as a QuantizeLinear/DequantizeLinear pair computes it.
func (e *Encoding) FakeQuantize(x []float32, shape []int) ([]float32, error) {
	lo, hi, ok := kernels.QuantRange(e.DType)
	if !ok {
		return nil, fmt.Errorf("%s is not a quantized type", e.DType.Short())
	}
	at := e.ScaleIndex(shape)
	out := make([]float32, len(x))
	for i, v := range x {
		k := at(i)
		q := kernels.QuantizeValue(v, e.Scale[k], int32(e.ZeroPoint[k]), lo, hi)
		out[i] = float32(q-int32(e.ZeroPoint[k])) * e.Scale[k]
	}
	return out, nil
}

// BiasLimit is the largest |int32 bias| FitBias allows: half the int32 range,
// leaving the other half of the accumulator to the sum of products.
const BiasLimit = 1 << 30

// FitBias raises weight scales where an int32 bias with scale input scale x
// weight scale would not fit in BiasLimit: a channel whose weights are tiny
// next to its bias (a near-dead channel) would otherwise saturate its bias and
// shift its output by the difference. It returns the channels raised; their
// weights lose resolution, which costs little because the bias dominates them.
func FitBias(b *graph.Tensor, in, w *Encoding) (int, error) {
	bv, err := b.AsFloat32()
	if err != nil {
		return 0, err
	}
	if len(in.Scale) != 1 || w.BlockSize > 0 {
		return 0, nil
	}
	raised := 0
	for i, v := range bv {
		k := 0
		if w.PerChannel() {
			if i >= len(w.Scale) {
				break
			}
			k = i
		}
		need := float32(math.Abs(float64(v)) / (float64(in.Scale[0]) * BiasLimit))
		if need > w.Scale[k] {
			w.Scale[k] = need
			raised++
		}
	}
	return raised, nil
}
