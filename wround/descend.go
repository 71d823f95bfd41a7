package wround

import (
	"runtime"
	"sync"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
)

// descentPasses bounds the sweeps over a row: each sweep that changes a
// code lowers the row's error, so the search ends anyway; the bound keeps
// its time predictable (the rows measured settle in 3-8 sweeps).
const descentPasses = 64

// descend lowers the layer's output error sum_n d_n^T H d_n (d_n = the
// dequantized row n minus W's, H = mean x x^T over the input rows) by
// moving single codes one grid step up or down, within [QMin, QMax], while
// a move lowers it: a greedy local search on the exact objective that
// AdaRound relaxes (coordinate descent on the integer codes). Each row is
// its own problem (the rows share H, not codes); a move of code k by +-s
// changes the error by 2 s (H d)_k + s^2 H_kk, and (H d) is updated in O(K)
// after it. AdaRound's soft rounding ends where its annealing and its
// mini-batches left it; on the layers measured (docs/rounding.md) this
// search, started from there, removes another 20-60% of the layer's output
// error, because a move must pay off on every calibration row at once. The
// grid (Scale, Zero) is not changed. It returns the number of moves made.
func (l *Layer) descend(q []int32, h []float64) int {
	k := l.K
	// hd = D H, all rows at once.
	d := make([]float64, l.N*k)
	w := l.Dequantized(q)
	for i := range d {
		d[i] = float64(w[i]) - float64(l.W[i])
	}
	hd := make([]float64, l.N*k)
	blas64.Gemm(blas.NoTrans, blas.NoTrans, 1,
		blas64.General{Rows: l.N, Cols: k, Stride: k, Data: d},
		blas64.General{Rows: k, Cols: k, Stride: k, Data: h},
		0, blas64.General{Rows: l.N, Cols: k, Stride: k, Data: hd})
	threads := runtime.GOMAXPROCS(0)
	moves := make([]int, l.N)
	var wg sync.WaitGroup
	per := (l.N + threads - 1) / threads
	for n0 := 0; n0 < l.N; n0 += per {
		wg.Add(1)
		go func(n0, n1 int) {
			defer wg.Done()
			for n := n0; n < n1; n++ {
				moves[n] = l.descendRow(n, q[n*k:(n+1)*k], hd[n*k:(n+1)*k], h)
			}
		}(n0, min(l.N, n0+per))
	}
	wg.Wait()
	total := 0
	for _, m := range moves {
		total += m
	}
	return total
}

// descendRow is descend on row n: q its codes, hd = H d_n.
func (l *Layer) descendRow(n int, q []int32, hd, h []float64) int {
	k := l.K
	moves := 0
	for range descentPasses {
		moved := false
		for i := range k {
			hii := h[i*k+i]
			if hii <= 0 {
				continue // an input that is always zero: its weight does not matter
			}
			s := float64(l.Scale[l.Param(n, i)])
			for _, dir := range [2]int32{-1, 1} {
				c := q[i] + dir
				if c < l.QMin || c > l.QMax {
					continue
				}
				step := float64(dir) * s
				// Strictly lower by a margin above rounding noise, so that
				// the search cannot cycle on ties.
				if 2*step*hd[i]+step*step*hii >= -1e-9*s*s*hii {
					continue
				}
				q[i] = c
				col := h[i*k : (i+1)*k] // H is symmetric: column i is row i
				for j, v := range col {
					hd[j] += v * step
				}
				moves++
				moved = true
				break
			}
		}
		if !moved {
			break
		}
	}
	return moves
}

// hessianOf is the layer's H = mean x x^T: the collected one when the
// engine gave it, else from the sampled rows; nil without either.
func hessianOf(l *Layer, in *Inputs) []float64 {
	switch {
	case in == nil:
		return nil
	case len(in.H) == l.K*l.K:
		return in.H
	case in.M > 0 && len(in.X) >= in.M*l.K:
		k := l.K
		h := make([]float64, k*k)
		x := make([]float64, in.M*k)
		for i, v := range in.X[:in.M*k] {
			x[i] = float64(v)
		}
		a := blas64.General{Rows: in.M, Cols: k, Stride: k, Data: x}
		blas64.Gemm(blas.Trans, blas.NoTrans, 1/float64(in.M), a, a, 0, blas64.General{Rows: k, Cols: k, Stride: k, Data: h})
		return h
	}
	return nil
}
