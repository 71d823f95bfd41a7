package wround

import (
	"fmt"

	"gonum.org/v1/gonum/mat"
)

// Retarget makes the layer reconstruct the float model's output from the
// rounded model's inputs (asymmetric calibration: AIMET's AdaRound takes
// inputs from the quantized model and targets from the float one; GPTAQ,
// Li et al. 2025, derives the same for GPTQ). With x_q the layer's input
// when the earlier layers are rounded and x_f the float model's, each
// output row w is rounded to codes q minimising E[(q.x_q - w.x_f)^2]. That
// is a quadratic in q with the Hessian H = E[x_q x_q^T] of plain
// reconstruction, centred on
//
//	w~ = w + H^-1 C w,   C = E[x_q (x_f - x_q)^T]  (in.Cross)
//
// so E[(q.x_q - w.x_f)^2] = (q - w~)^T H (q - w~) + const, and every
// algorithm here, run on w~ with the rounded model's inputs, minimises it:
// the layer compensates what the layers before it lost. H is dampened as
// GPTQ dampens it (damp times its mean diagonal; dead inputs, H_kk = 0,
// carry no signal and get no shift). Retarget replaces l.W; it does
// nothing without in.Cross.
func (l *Layer) Retarget(in *Inputs, damp float64) error {
	if in == nil || in.Cross == nil {
		return nil
	}
	K := l.K
	if len(in.H) != K*K || len(in.Cross) != K*K {
		return fmt.Errorf("retarget needs the layer's %dx%d Hessian and cross term", K, K)
	}
	h := make([]float64, K*K)
	copy(h, in.H)
	var mean float64
	for k := range K {
		mean += h[k*K+k]
	}
	mean /= float64(K)
	if mean == 0 {
		return nil // the calibration data never reached the layer
	}
	if !(damp > 0) {
		damp = 1e-8
	}
	for k := range K {
		if h[k*K+k] == 0 {
			h[k*K+k] = 1
		}
		h[k*K+k] += damp * mean
	}
	var ch mat.Cholesky
	if !ch.Factorize(mat.NewSymDense(K, h)) {
		return fmt.Errorf("retarget: the input Hessian is not positive definite with dampening %g (non-finite inputs?)", damp)
	}
	var a mat.Dense // H^-1 C
	if err := ch.SolveTo(&a, mat.NewDense(K, K, in.Cross)); err != nil {
		return fmt.Errorf("retarget: %v", err)
	}
	w := mat.NewDense(l.N, K, nil)
	for i, v := range l.W {
		w.RawMatrix().Data[i] = float64(v)
	}
	var shift mat.Dense // rows w^T A^T = (A w)^T
	shift.Mul(w, a.T())
	nw := make([]float32, len(l.W))
	for n := range l.N {
		for k := range K {
			nw[n*K+k] = float32(w.At(n, k) + shift.At(n, k))
		}
	}
	l.W = nw
	return nil
}
