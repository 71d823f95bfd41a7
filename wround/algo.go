package wround

import "fmt"

// Algorithms lists the --weight-rounding / weight_rounding names, plus
// "mse" (--weight-range mse: the clipping search, codes by nearest rounding).
var Algorithms = []string{"nearest", "gptq", "awq", "adaround", "hqq", "mse"}

// Options are every algorithm's knobs; each reads its own.
type Options struct {
	Seed uint64 // for every random choice (row sampling, initialisation)

	GPTQDamp  float64 // dampening as a fraction of the mean Hessian diagonal (0.01)
	GPTQBlock int     // columns per lazy-update block (128)
	ActOrder  bool    // process columns by descending Hessian diagonal

	AdaRoundIters int        // optimisation steps per layer (10000)
	AdaRoundBeta  [2]float64 // annealing of the regulariser's beta, start and end (20, 2)
	AdaRoundLR    float64    // Adam's learning rate (1e-3)
	AdaRoundBatch int        // rows per step
	// AdaRoundNoDescent skips the greedy code search (descend) that
	// follows AdaRound's hard rounding: AdaRound as AIMET runs it.
	AdaRoundNoDescent bool

	AWQGrid int  // alpha grid points in [0, 1] (20)
	AWQClip bool // also search each group's clipping

	HQQIters int // half-quadratic iterations (20)
}

// DefaultOptions are the papers' and the reference tools' defaults.
func DefaultOptions() Options {
	return Options{
		GPTQDamp: 0.01, GPTQBlock: 128,
		AdaRoundIters: 10000, AdaRoundBeta: [2]float64{20, 2}, AdaRoundLR: 1e-3, AdaRoundBatch: 256,
		AWQGrid: 20, AWQClip: true,
		HQQIters: 20,
	}
}

// Needs says what an algorithm reads from the calibration data, so the
// engine collects only that.
type Needs struct {
	Hessian bool // Inputs.H
	Rows    int  // Inputs.X: at most this many sampled input rows (0: none)
	AbsMean bool // Inputs.AbsMean
}

// Inputs are one layer's statistics over the calibration set.
type Inputs struct {
	H       []float64 // K x K, the mean of x x^T over all input rows
	X       []float32 // M x K sampled input rows
	M       int
	AbsMean []float64 // K: the mean |x_k| over all input rows
	// Cross (K x K, row-major) is the mean of x (x_f - x)^T, where x_f is
	// the float model's input for the same row and x the rounded
	// prefix's: set when the layer should reconstruct the float output
	// (see Layer.Retarget), nil otherwise.
	Cross []float64
}

// Result is an algorithm's answer for one layer.
type Result struct {
	Codes []int32 // N x K codes on the layer's grid (Scale/Zero as left in the Layer)
	// InputScale (AWQ): the factor s_k each weight column was multiplied by
	// before quantizing; the layer's input must be divided by it (folded
	// into the producer) for the float model to stay the same.
	InputScale []float32
}

// NeedsOf is what algorithm name reads.
func NeedsOf(name string, o Options) (Needs, error) {
	switch name {
	case "nearest", "hqq":
		return Needs{}, nil
	case "gptq":
		return Needs{Hessian: true}, nil
	case "awq":
		return Needs{AbsMean: true, Rows: 4096}, nil
	case "adaround":
		return Needs{Rows: max(4096, o.AdaRoundBatch)}, nil
	case "mse":
		return Needs{Hessian: true}, nil
	}
	return Needs{}, fmt.Errorf("weight rounding %q is not one of %v", name, Algorithms)
}

// Run computes one layer's codes with algorithm name. It may change l.Scale
// and l.Zero (HQQ, MSE, AWQ's clipping, GPTQ's group scales) unless l.Pinned.
func Run(name string, l *Layer, in *Inputs, o Options) (*Result, error) {
	if err := l.Check(); err != nil {
		return nil, err
	}
	switch name {
	case "nearest":
		return &Result{Codes: l.RTN()}, nil
	case "gptq":
		return gptq(l, in, o)
	case "awq":
		return awq(l, in, o)
	case "adaround":
		return adaround(l, in, o)
	case "hqq":
		return hqq(l, o)
	case "mse":
		return mseClip(l, in, o)
	}
	return nil, fmt.Errorf("weight rounding %q is not one of %v", name, Algorithms)
}
