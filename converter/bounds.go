package converter

import (
	"fmt"
	"math"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/kernels"
	"github.com/onnxq/onnxq/passes"
)

// outputBounds returns the values v can take because of the op that
// produces it: Relu [0, inf), Clip its constant bounds, Sigmoid, HardSigmoid
// and Softmax [0, 1], Tanh [-1, 1]; ok is false for any other producer (or a
// Clip with a computed bound).
func outputBounds(v *graph.Value) (lo, hi float64, ok bool) {
	if v == nil || v.Producer == nil {
		return 0, 0, false
	}
	n := v.Producer
	switch n.OpType {
	case "Relu":
		return 0, math.Inf(1), true
	case "Sigmoid", "HardSigmoid", "Softmax":
		return 0, 1, true
	case "Tanh":
		return -1, 1, true
	case "Clip":
		lo, hi = math.Inf(-1), math.Inf(1)
		if n.HasAttr("min") || n.HasAttr("max") { // opset < 11
			l, err1 := n.AttrFloat("min", float32(math.Inf(-1)))
			h, err2 := n.AttrFloat("max", float32(math.Inf(1)))
			return float64(l), float64(h), err1 == nil && err2 == nil
		}
		for i, b := range []*float64{&lo, &hi} {
			in := n.Input(i + 1)
			if in == nil {
				continue // absent: unbounded on that side
			}
			if in.Const == nil || in.Const.Len() != 1 {
				return 0, 0, false
			}
			f, err := in.Const.AsFloat64()
			if err != nil {
				return 0, 0, false
			}
			*b = f[0]
		}
		return lo, hi, true
	}
	return 0, 0, false
}

// withinOutputBounds narrows a calibrated range r of tensor v to the values
// v's producer can give (outputBounds). A histogram observer's range ends on
// a bin edge, which can lie past such a bound: ReLU6 outputs calibrated to
// [0, 6.0019]. The step is then a hair coarser for no value the tensor can
// hold, and ONNX Runtime (1.30) refuses to load a Clip whose Q range ends
// just past its bound ("two nodes with same node name"): MobileNetV2 with
// the percentile, entropy and MSE observers. Never widens r.
func withinOutputBounds(v *graph.Value, r [2]float32) [2]float32 {
	lo, hi, ok := outputBounds(v)
	if !ok {
		return r
	}
	nr := r
	if float64(nr[0]) < lo {
		nr[0] = float32(lo)
	}
	if float64(nr[1]) > hi {
		nr[1] = float32(hi)
	}
	if nr[0] > nr[1] { // a range outside the bounds: not this rule's to fix
		return r
	}
	return nr
}

// clipWindowWarnings names the Clip outputs whose per-tensor encoding puts
// an end code just past the Clip's constant bound: the bound rounds to the
// end code (round(hi/scale) + zero point is the last code) while that code
// stands for more than the bound. ONNX Runtime 1.30 refuses such a model at
// load, at every optimization level ("two nodes with same node name"; a
// ReLU6 output whose uint8 range ends at 6.00001 to 6.01 fails, at 6 or 6.02
// loads). Calibrated ranges never get there (withinOutputBounds); a pinned
// range or an encoding shared with a Concat's other inputs can.
func clipWindowWarnings(g *graph.Graph, acts map[string]*passes.Encoding) []string {
	var out []string
	for _, n := range g.Nodes {
		if n.OpType != "Clip" || n.Output() == nil {
			continue
		}
		enc := acts[n.Output().Name]
		if enc == nil || len(enc.Scale) != 1 || len(enc.ZeroPoint) != 1 {
			continue
		}
		lo, hi, ok := outputBounds(n.Output())
		qlo, qhi, okq := kernels.QuantRange(enc.DType)
		if !ok || !okq || !(enc.Scale[0] > 0) {
			continue
		}
		s, zp := float64(enc.Scale[0]), float64(enc.ZeroPoint[0])
		top, bottom := (qhi-zp)*s, (qlo-zp)*s
		past := !math.IsInf(hi, 1) && math.Round(hi/s)+zp >= qhi && top > hi+1e-6*math.Abs(hi)
		below := !math.IsInf(lo, -1) && math.Round(lo/s)+zp <= qlo && bottom < lo-1e-6*math.Abs(lo)
		if past || below {
			out = append(out, fmt.Sprintf("Clip %s: the encoding of %q spans [%.6g, %.6g], just past the Clip's [%g, %g]: ONNX Runtime (1.30) refuses to load such a model; pin its range to the Clip's bounds or leave it out of a shared (Concat) encoding", n.Name, n.Output().Name, bottom, top, lo, hi))
		}
	}
	return out
}
