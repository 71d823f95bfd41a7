package wround

import (
	"math"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
)

// Clip ratios the search tries: the group's min/max range shrunk by
// 0.50, 0.51, ..., 1.00.
const (
	clipLow   = 0.5
	clipSteps = 50
)

// mseClip is the per-group clipping search behind --weight-range mse (also
// called SeqMSE when done layer by layer on calibration inputs): for every
// group (per channel, per block or the whole tensor) it tries ranges shrunk
// from the group's min/max and keeps the one whose nearest rounding gives the
// least output error d^T H d, H = mean x x^T over the layer's input rows
// (the Hessian, or the sampled rows X when that is what there is), or the
// least weight error when there is no data. Groups are scored apart: the cross terms between
// groups of one row are left out, as the usual implementations do. The
// layer's symmetry is kept: a symmetric range shrinks around zero, an
// asymmetric one at both ends. Pinned layers keep their grid.
func mseClip(l *Layer, in *Inputs, o Options) (*Result, error) {
	if l.Pinned {
		return &Result{Codes: l.RTN()}, nil
	}
	var h []float64
	switch {
	case in != nil && len(in.H) == l.K*l.K:
		h = in.H
	case in != nil && in.M > 0 && len(in.X) == in.M*l.K:
		h = make([]float64, l.K*l.K)
		for r := range in.M {
			row := in.X[r*l.K : (r+1)*l.K]
			for i, a := range row {
				if a == 0 {
					continue
				}
				hr := h[i*l.K : (i+1)*l.K]
				for j, b := range row {
					hr[j] += float64(a) * float64(b)
				}
			}
		}
	}
	switch {
	case h != nil && l.PerTensor:
		l.clipTensor(h)
		return &Result{Codes: l.RTN()}, nil
	case h != nil:
		l.clipRows(h)
		return &Result{Codes: l.RTN()}, nil
	}
	rows, groups := l.N, l.Groups()
	if l.PerTensor {
		rows, groups = 1, 1
	}
	d := make([]float64, l.K)
	for n := range rows {
		for g := range groups {
			k0, k1 := l.span(g)
			p := l.Param(n, k0)
			lo, hi := math.Inf(1), math.Inf(-1)
			l.eachOf(n, k0, k1, func(_, _ int, v float32) {
				lo, hi = math.Min(lo, float64(v)), math.Max(hi, float64(v))
			})
			bestS, bestZ, best := l.Scale[p], l.Zero[p], math.Inf(1)
			for step := clipSteps; step >= 0; step-- {
				l.FitRange(p, lo*clipRatio(step), hi*clipRatio(step))
				e := l.groupError(n, k0, k1, h, d)
				if e < best {
					bestS, bestZ, best = l.Scale[p], l.Zero[p], e
				}
			}
			l.Scale[p], l.Zero[p] = bestS, bestZ
		}
	}
	return &Result{Codes: l.RTN()}, nil
}

func clipRatio(step int) float64 { return clipLow + (1-clipLow)*float64(step)/clipSteps }

// clipRows is the search of a per-channel or per-group layer with a
// Hessian: for a chunk of rows at a time, every candidate range's rounding
// error d of one group is a row of D, and d^T H d for all of them comes from
// one product D H (the same sums as groupError's, in another order; the
// candidates are O(K^2) each, so this product is most of --weight-range
// mse's time on wide layers).
func (l *Layer) clipRows(h []float64) {
	const cands = clipSteps + 1
	for g := range l.Groups() {
		k0, k1 := l.span(g)
		span := k1 - k0
		chunk := max(1, min(l.N, (1<<22)/(cands*span)))
		dm := make([]float64, chunk*cands*span)
		tm := make([]float64, chunk*cands*span)
		scales := make([]float32, chunk*cands)
		zeros := make([]int32, chunk*cands)
		hg := blas64.General{Rows: span, Cols: span, Stride: l.K, Data: h[k0*l.K+k0:]}
		for n0 := 0; n0 < l.N; n0 += chunk {
			n1 := min(l.N, n0+chunk)
			for n := n0; n < n1; n++ {
				p := l.Param(n, k0)
				row := l.W[n*l.K+k0 : n*l.K+k1]
				lo, hi := math.Inf(1), math.Inf(-1)
				for _, v := range row {
					lo, hi = math.Min(lo, float64(v)), math.Max(hi, float64(v))
				}
				for c := range cands {
					step := clipSteps - c
					l.FitRange(p, lo*clipRatio(step), hi*clipRatio(step))
					i := (n-n0)*cands + c
					scales[i], zeros[i] = l.Scale[p], l.Zero[p]
					d := dm[i*span : (i+1)*span]
					for k, v := range row {
						q := Nearest(v, l.Scale[p], l.Zero[p], l.QMin, l.QMax)
						d[k] = float64(float32(q-l.Zero[p])*l.Scale[p]) - float64(v)
					}
				}
			}
			rows := (n1 - n0) * cands
			blas64.Gemm(blas.NoTrans, blas.NoTrans, 1,
				blas64.General{Rows: rows, Cols: span, Stride: span, Data: dm[:rows*span]}, hg,
				0, blas64.General{Rows: rows, Cols: span, Stride: span, Data: tm[:rows*span]})
			for n := n0; n < n1; n++ {
				best, at := math.Inf(1), 0
				for c := range cands {
					i := (n-n0)*cands + c
					var e float64
					for k, dv := range dm[i*span : (i+1)*span] {
						e += dv * tm[i*span+k]
					}
					if e < best {
						best, at = e, i
					}
				}
				p := l.Param(n, k0)
				l.Scale[p], l.Zero[p] = scales[at], zeros[at]
			}
		}
	}
}

// clipTensor is the search of a per-tensor layer with a Hessian: each
// candidate's error sum_n d_n^T H d_n is one product D H over all rows (as
// clipRows does per row; groupError's loops took 13 s on a CIFAR ResNet-20
// per-tensor, this takes well under one).
func (l *Layer) clipTensor(h []float64) {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, v := range l.W {
		lo, hi = math.Min(lo, float64(v)), math.Max(hi, float64(v))
	}
	nk := l.N * l.K
	d := make([]float64, nk)
	dh := make([]float64, nk)
	hg := blas64.General{Rows: l.K, Cols: l.K, Stride: l.K, Data: h}
	bestS, bestZ, best := l.Scale[0], l.Zero[0], math.Inf(1)
	for step := clipSteps; step >= 0; step-- {
		l.FitRange(0, lo*clipRatio(step), hi*clipRatio(step))
		s, z := l.Scale[0], l.Zero[0]
		for i, v := range l.W {
			q := Nearest(v, s, z, l.QMin, l.QMax)
			d[i] = float64(float32(q-z)*s) - float64(v)
		}
		blas64.Gemm(blas.NoTrans, blas.NoTrans, 1, blas64.General{Rows: l.N, Cols: l.K, Stride: l.K, Data: d}, hg,
			0, blas64.General{Rows: l.N, Cols: l.K, Stride: l.K, Data: dh})
		var e float64
		for i, v := range d {
			e += v * dh[i]
		}
		if e < best {
			bestS, bestZ, best = s, z, e
		}
	}
	l.Scale[0], l.Zero[0] = bestS, bestZ
}

// eachOf calls f on the elements (row, k, w) of row n's columns [k0, k1), or
// of every row for a per-tensor layer.
func (l *Layer) eachOf(n, k0, k1 int, f func(row, k int, v float32)) {
	r0, r1 := n, n+1
	if l.PerTensor {
		r0, r1 = 0, l.N
	}
	for r := r0; r < r1; r++ {
		for k := k0; k < k1; k++ {
			f(r, k, l.W[r*l.K+k])
		}
	}
}

// groupError is the error nearest rounding leaves in row n's columns
// [k0, k1) (every row per tensor): sum d^T H d over the rows, or sum d^2
// without H. d is scratch of length K.
func (l *Layer) groupError(n, k0, k1 int, h, d []float64) float64 {
	r0, r1 := n, n+1
	if l.PerTensor {
		r0, r1 = 0, l.N
	}
	var total float64
	for r := r0; r < r1; r++ {
		for k := k0; k < k1; k++ {
			v := l.W[r*l.K+k]
			d[k] = float64(l.Dequantize(r, k, l.Quantize(r, k, v))) - float64(v)
		}
		if h == nil {
			for k := k0; k < k1; k++ {
				total += d[k] * d[k]
			}
			continue
		}
		for i := k0; i < k1; i++ {
			if d[i] == 0 {
				continue
			}
			var s float64
			hr := h[i*l.K : (i+1)*l.K]
			for j := k0; j < k1; j++ {
				s += hr[j] * d[j]
			}
			total += d[i] * s
		}
	}
	return total
}
