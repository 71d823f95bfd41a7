package wround

import (
	"fmt"
	"math"
	"slices"

	"gonum.org/v1/gonum/mat"
)

// gptq is GPTQ (Frantar et al., 2022): columns are quantized one at a time
// and each one's error is spread over the columns not yet quantized, weighted
// by the inverse Hessian of the layer's output error, so the output moves
// less than nearest rounding would move it.
//
// What this implementation chooses, as the paper's reference code does:
//   - dead inputs (H_kk == 0: never non-zero on the calibration set) get
//     H_kk = 1 and their weights are treated as 0: they never reach the output;
//   - H is dampened by GPTQDamp times its mean diagonal before the Cholesky
//     factorisation; should that still fail, the dampening grows tenfold up to
//     three times before giving up;
//   - updates are lazy in blocks of GPTQBlock columns (the same arithmetic as
//     column by column, in a cache-friendly order);
//   - with ActOrder, columns go by descending H_kk; a column keeps its original
//     group, and when the layer is not Pinned and has groups smaller than a
//     row, a group's scale and zero point are refit (min/max of the group's
//     current, error-updated weights) when the first of its columns comes up;
//   - per-channel and per-tensor layers keep the scales they came with.
func gptq(l *Layer, in *Inputs, o Options) (*Result, error) {
	if in == nil || len(in.H) != l.K*l.K {
		return nil, fmt.Errorf("gptq needs the layer's %dx%d input Hessian", l.K, l.K)
	}
	K, N := l.K, l.N
	h := slices.Clone(in.H)
	w := make([]float64, N*K)
	for i, v := range l.W {
		w[i] = float64(v)
	}
	var mean float64
	for k := range K {
		if h[k*K+k] == 0 {
			h[k*K+k] = 1
			for n := range N {
				w[n*K+k] = 0
			}
		}
		mean += h[k*K+k]
	}
	mean /= float64(K)

	perm := make([]int, K) // processing position -> original column
	for k := range perm {
		perm[k] = k
	}
	if o.ActOrder {
		slices.SortStableFunc(perm, func(a, b int) int { return -cmpFloat(h[a*K+a], h[b*K+b]) })
	}
	// Work in processing order: W's columns and H's rows and columns permuted.
	hp := make([]float64, K*K)
	for i, a := range perm {
		for j, b := range perm {
			hp[i*K+j] = h[a*K+b]
		}
	}
	wp := make([]float64, N*K)
	for n := range N {
		for i, a := range perm {
			wp[n*K+i] = w[n*K+a]
		}
	}
	u, err := invCholUpper(hp, K, o.GPTQDamp*mean)
	if err != nil {
		return nil, err
	}

	refit := !l.Pinned && !l.PerTensor && l.Group < K
	fitted := make([]bool, l.Groups())
	codes := make([]int32, N*K)
	block := o.GPTQBlock
	if block <= 0 {
		block = 128
	}
	errs := make([]float64, N*block)
	for i1 := 0; i1 < K; i1 += block {
		i2 := min(i1+block, K)
		for i := i1; i < i2; i++ {
			col := perm[i]
			if g := col / max(l.Group, 1); refit && !fitted[g] {
				fitted[g] = true
				// Columns past the block still lack this block's updates so
				// far: the group sees them applied.
				l.refitGroup(g, perm, func(n, j int) float64 {
					v := wp[n*K+j]
					if j >= i2 {
						for b := range i - i1 {
							v -= errs[n*block+b] * u[(i1+b)*K+j]
						}
					}
					return v
				})
			}
			d := u[i*K+i]
			for n := range N {
				v := wp[n*K+i]
				q := l.Quantize(n, col, float32(v))
				codes[n*K+col] = q
				e := (v - float64(l.Dequantize(n, col, q))) / d
				errs[n*block+i-i1] = e
				row := wp[n*K : (n+1)*K]
				ur := u[i*K : (i+1)*K]
				for j := i + 1; j < i2; j++ {
					row[j] -= e * ur[j]
				}
			}
		}
		// The block's errors reach the columns after it in one pass.
		for n := range N {
			row := wp[n*K : (n+1)*K]
			for b := range i2 - i1 {
				e := errs[n*block+b]
				if e == 0 {
					continue
				}
				ur := u[(i1+b)*K : (i1+b+1)*K]
				for j := i2; j < K; j++ {
					row[j] -= e * ur[j]
				}
			}
		}
	}
	return &Result{Codes: codes}, nil
}

// refitGroup sets group g's scale and zero point in every row from the
// current weights of its columns (value(n, position) in processing order,
// perm mapping positions to original columns).
func (l *Layer) refitGroup(g int, perm []int, value func(n, i int) float64) {
	k0, k1 := l.span(g)
	pos := make([]int, 0, k1-k0)
	for i, c := range perm {
		if c >= k0 && c < k1 {
			pos = append(pos, i)
		}
	}
	for n := range l.N {
		lo, hi := math.Inf(1), math.Inf(-1)
		for _, i := range pos {
			v := float64(float32(value(n, i)))
			lo, hi = math.Min(lo, v), math.Max(hi, v)
		}
		l.FitRange(l.Param(n, k0), lo, hi)
	}
}

// invCholUpper returns U, upper triangular with U^T U = (H + damp I)^-1,
// row-major K x K. A failed factorisation retries with more dampening.
func invCholUpper(h []float64, K int, damp float64) ([]float64, error) {
	if !(damp > 0) {
		damp = 1e-8
	}
	for try := range 4 {
		hd := slices.Clone(h)
		for k := range K {
			hd[k*K+k] += damp
		}
		var c mat.Cholesky
		if c.Factorize(mat.NewSymDense(K, hd)) {
			var inv mat.SymDense
			if err := c.InverseTo(&inv); err == nil {
				var ci mat.Cholesky
				if ci.Factorize(&inv) {
					var ut mat.TriDense
					ci.UTo(&ut)
					u := make([]float64, K*K)
					for i := range K {
						for j := i; j < K; j++ {
							u[i*K+j] = ut.At(i, j)
						}
					}
					return u, nil
				}
			}
		}
		if try < 3 {
			damp *= 10
		}
	}
	return nil, fmt.Errorf("gptq: the input Hessian is not positive definite even with dampening %g (non-finite inputs?)", damp)
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
