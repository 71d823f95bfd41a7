package calib

import (
	"math"

	"github.com/onnxq/onnxq/kernels/vec"
)

// Distribution summarizes a tensor's values over many samples in fixed memory:
// the observers' exact power-of-two histogram for quantiles and plots, plus
// exact moments and extremes. The diagnostics read it; it chooses no range.
type Distribution struct {
	h          histObserver
	n, zeros   int64
	sum, sumSq float64
	lo, hi     float64
	nonFinite  int64
	outside    int64 // values beyond [clipLo, clipHi]
	clipLo     float64
	clipHi     float64
	clipSet    bool
}

// NewDistribution makes a distribution with at least bins histogram bins over
// the wider side of the data (2048 when 0).
func NewDistribution(bins int) *Distribution {
	if bins <= 0 {
		bins = 2048
	}
	return &Distribution{h: histObserver{kind: "percentile", bins: bins, levels: 256, threads: 1}, lo: math.Inf(1), hi: math.Inf(-1)}
}

// SetClip makes Observe count the values outside [lo, hi] (a quantization
// range), for ClipRate.
func (d *Distribution) SetClip(lo, hi float64) { d.clipLo, d.clipHi, d.clipSet = lo, hi, true }

// Observe adds values.
func (d *Distribution) Observe(x []float32) {
	if len(x) == 0 {
		return
	}
	d.h.Observe(x)
	lo, hi := vec.MinMax(x)
	var s, s2 float64
	var z, bad, out int64
	for _, v := range x {
		f := float64(v)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			bad++
			continue
		}
		s += f
		s2 += f * f
		if v == 0 {
			z++
		}
		if d.clipSet && (f < d.clipLo || f > d.clipHi) {
			out++
		}
	}
	d.n += int64(len(x)) - bad
	d.nonFinite += bad
	d.zeros += z
	d.outside += out
	d.sum += s
	d.sumSq += s2
	d.lo = math.Min(d.lo, float64(lo))
	d.hi = math.Max(d.hi, float64(hi))
}

// Count is the number of finite values seen.
func (d *Distribution) Count() int64 { return d.n }

// Min and Max are the exact extremes of the finite values.
func (d *Distribution) Min() float64 { return d.lo }

// Max is the largest finite value.
func (d *Distribution) Max() float64 { return d.hi }

// Mean of the finite values.
func (d *Distribution) Mean() float64 {
	if d.n == 0 {
		return 0
	}
	return d.sum / float64(d.n)
}

// Variance (population) of the finite values.
func (d *Distribution) Variance() float64 {
	if d.n == 0 {
		return 0
	}
	m := d.Mean()
	return math.Max(0, d.sumSq/float64(d.n)-m*m)
}

// ZeroShare is the share of values exactly zero.
func (d *Distribution) ZeroShare() float64 {
	if d.n == 0 {
		return 0
	}
	return float64(d.zeros) / float64(d.n)
}

// ClipRate is the share of values outside the range given to SetClip.
func (d *Distribution) ClipRate() float64 {
	if d.n == 0 {
		return 0
	}
	return float64(d.outside) / float64(d.n)
}

// Quantile returns the value below which a share q of the values lies,
// interpolated linearly inside the histogram bin and kept within the exact
// extremes (so the error is at most one bin width).
func (d *Distribution) Quantile(q float64) float64 {
	h := &d.h
	if d.n == 0 {
		return 0
	}
	if h.counts == nil {
		return 0 // only zeros so far
	}
	var total float64
	for _, c := range h.counts {
		total += float64(c)
	}
	target := q * total
	width := math.Ldexp(1/float64(h.n), h.k)
	acc := 0.0
	for p, c := range h.counts {
		if c == 0 {
			continue
		}
		fc, lo := float64(c), float64(p-h.n)
		if p == h.n { // [0, width) starts with the exact zeros: a point mass at 0
			z := math.Min(float64(d.zeros), fc)
			if acc+z >= target {
				return 0
			}
			acc, fc = acc+z, fc-z
		}
		if fc > 0 && acc+fc >= target {
			v := (lo + (target-acc)/fc) * width
			return math.Min(math.Max(v, d.lo), d.hi)
		}
		acc += fc
	}
	return d.hi
}

// Histogram returns counts over [lo, hi] in at most maxBins equal bins (the
// observer's bins, merged in whole groups so no count is split).
func (d *Distribution) Histogram(maxBins int) (lo, hi float64, counts []float64) {
	h := &d.h
	if h.counts == nil || maxBins <= 0 {
		return 0, 0, nil
	}
	s, e := 0, len(h.counts)
	for s < e && h.counts[s] == 0 {
		s++
	}
	for e > s && h.counts[e-1] == 0 {
		e--
	}
	group := (e - s + maxBins - 1) / maxBins
	width := math.Ldexp(1/float64(h.n), h.k)
	lo = float64(s-h.n) * width
	for i := s; i < e; i += group {
		var c float64
		for j := i; j < min(i+group, e); j++ {
			c += float64(h.counts[j])
		}
		counts = append(counts, c)
	}
	hi = lo + float64(len(counts)*group)*width
	return lo, hi, counts
}
