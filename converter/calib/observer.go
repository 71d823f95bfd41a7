// Package calib turns the activations seen during calibration into ranges:
// streaming observers (min/max, percentile, entropy, MSE) whose memory does not
// depend on the number of samples.
package calib

import (
	"fmt"
	"math"
)

// Observer accumulates one tensor's values and produces its range. Histogram
// observers need two passes over the data: the first finds the range that fixes
// their bin edges, so the result depends on neither batch size nor sample order.
type Observer interface {
	Passes() int
	Observe(pass int, x []float32)
	// Range is the calibrated [lo, hi]; an error when nothing was observed.
	Range() (lo, hi float32, err error)
}

// Config selects and tunes an observer.
type Config struct {
	Kind       string  // "minmax" (default), "percentile", "entropy", "mse"
	Percentile float64 // for percentile, e.g. 99.99 (default 99.99)
	Bins       int     // histogram bins (default 2048)
	// Momentum > 0 makes minmax a moving average of per-sample min/max.
	Momentum float64
	// Levels is the number of quantization levels the range is for (entropy and
	// mse search against it; default 256).
	Levels int
}

// New makes an observer.
func New(c Config) (Observer, error) {
	if c.Bins == 0 {
		c.Bins = 2048
	}
	if c.Levels == 0 {
		c.Levels = 256
	}
	if c.Bins < 16 || c.Bins > 1<<16 {
		return nil, fmt.Errorf("histogram bins %d out of range (16 to 65536)", c.Bins)
	}
	switch c.Kind {
	case "", "minmax":
		if c.Momentum < 0 || c.Momentum >= 1 {
			return nil, fmt.Errorf("moving-average momentum %g must be in [0, 1)", c.Momentum)
		}
		return &minMax{momentum: c.Momentum, lo: math.Inf(1), hi: math.Inf(-1)}, nil
	case "percentile":
		p := c.Percentile
		if p == 0 {
			p = 99.99
		}
		if p <= 50 || p > 100 {
			return nil, fmt.Errorf("percentile %g must be in (50, 100]", p)
		}
		return &histObserver{kind: "percentile", pct: p, bins: c.Bins, levels: c.Levels}, nil
	case "entropy", "mse":
		return &histObserver{kind: c.Kind, bins: c.Bins, levels: c.Levels}, nil
	}
	return nil, fmt.Errorf("unknown observer %q (minmax, percentile, entropy, mse)", c.Kind)
}

// minMax tracks the extremes, or their moving average.
type minMax struct {
	momentum float64
	lo, hi   float64
	seen     bool
}

func (m *minMax) Passes() int { return 1 }

func (m *minMax) Observe(_ int, x []float32) {
	if len(x) == 0 {
		return
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, v := range x {
		f := float64(v)
		if f < lo {
			lo = f
		}
		if f > hi {
			hi = f
		}
	}
	switch {
	case !m.seen || m.momentum == 0:
		m.lo, m.hi = math.Min(m.lo, lo), math.Max(m.hi, hi)
	default:
		m.lo = m.lo*(1-m.momentum) + lo*m.momentum
		m.hi = m.hi*(1-m.momentum) + hi*m.momentum
	}
	m.seen = true
}

func (m *minMax) Range() (float32, float32, error) {
	if !m.seen {
		return 0, 0, fmt.Errorf("no values observed")
	}
	return float32(m.lo), float32(m.hi), nil
}

// histObserver: pass 0 finds min/max, pass 1 fills a histogram over it.
type histObserver struct {
	kind         string
	pct          float64
	bins, levels int
	lo, hi       float64
	seen         bool
	hist         []float64
	edgesFixed   bool
}

func (h *histObserver) Passes() int { return 2 }

func (h *histObserver) Observe(pass int, x []float32) {
	if pass == 0 {
		for _, v := range x {
			f := float64(v)
			if math.IsNaN(f) {
				continue
			}
			if !h.seen {
				h.lo, h.hi, h.seen = f, f, true
			}
			h.lo, h.hi = math.Min(h.lo, f), math.Max(h.hi, f)
		}
		return
	}
	if !h.edgesFixed {
		h.hist = make([]float64, h.bins)
		h.edgesFixed = true
	}
	width := (h.hi - h.lo) / float64(h.bins)
	if width == 0 {
		h.hist[0] += float64(len(x))
		return
	}
	for _, v := range x {
		f := float64(v)
		if math.IsNaN(f) {
			continue
		}
		i := int((f - h.lo) / width)
		h.hist[max(0, min(h.bins-1, i))]++
	}
}

func (h *histObserver) Range() (float32, float32, error) {
	if !h.seen || !h.edgesFixed {
		return 0, 0, fmt.Errorf("no values observed")
	}
	if h.hi == h.lo {
		return float32(h.lo), float32(h.hi), nil
	}
	switch h.kind {
	case "percentile":
		lo, hi := h.percentiles()
		return float32(lo), float32(hi), nil
	case "entropy":
		return h.entropy()
	}
	return h.mse()
}

func (h *histObserver) edge(i float64) float64 {
	return h.lo + (h.hi-h.lo)*i/float64(h.bins)
}

// percentiles returns the (100-p)th and pth percentiles, interpolating within bins.
func (h *histObserver) percentiles() (float64, float64) {
	total := 0.0
	for _, c := range h.hist {
		total += c
	}
	at := func(q float64) float64 {
		target := q / 100 * total
		acc := 0.0
		for i, c := range h.hist {
			if acc+c >= target && c > 0 {
				return h.edge(float64(i) + (target-acc)/c)
			}
			acc += c
		}
		return h.hi
	}
	return at(100 - h.pct), at(h.pct)
}

// entropy is TensorRT's calibration: over a histogram of |x|, choose the
// threshold whose clipped distribution P and its Levels/2-level quantization Q
// have the smallest KL divergence. The range is symmetric, or [0, t] for data
// that is never negative.
func (h *histObserver) entropy() (float32, float32, error) {
	// Fold the signed histogram into one of |x| over [0, amax].
	amax := math.Max(math.Abs(h.lo), math.Abs(h.hi))
	abs := make([]float64, h.bins)
	for i, c := range h.hist {
		if c == 0 {
			continue
		}
		center := math.Abs(h.edge(float64(i) + 0.5))
		j := int(center / amax * float64(h.bins))
		abs[max(0, min(h.bins-1, j))] += c
	}
	target := h.levels / 2
	if h.lo >= 0 {
		target = h.levels // non-negative data uses every level on one side
	}
	target = min(target, h.bins)
	// Coarse to fine: every 16th threshold, then each one around the best.
	bestKL, best := math.Inf(1), h.bins
	try := func(i int) {
		if i < target || i > h.bins {
			return
		}
		if kl := klDivergence(abs, i, target); kl < bestKL || (kl == bestKL && i > best) {
			bestKL, best = kl, i
		}
	}
	for i := target; i <= h.bins; i += 16 {
		try(i)
	}
	try(h.bins)
	coarse := best
	for i := coarse - 15; i <= coarse+15; i++ {
		try(i)
	}
	t := float32(amax * float64(best) / float64(h.bins))
	if h.lo >= 0 {
		return 0, t, nil
	}
	return -t, t, nil
}

// klDivergence of P = hist[:n] with the tail folded into its last bin, and Q = P
// merged into `levels` groups and spread back over each group's nonzero bins.
func klDivergence(hist []float64, n, levels int) float64 {
	p := make([]float64, n)
	copy(p, hist[:n])
	for _, c := range hist[n:] {
		p[n-1] += c
	}
	q := make([]float64, n)
	for g := 0; g < levels; g++ {
		s, e := g*n/levels, (g+1)*n/levels
		sum, nz := 0.0, 0
		for j := s; j < e; j++ {
			sum += hist[j]
			if hist[j] > 0 {
				nz++
			}
		}
		if nz == 0 {
			continue
		}
		for j := s; j < e; j++ {
			if hist[j] > 0 {
				q[j] = sum / float64(nz)
			}
		}
	}
	sp, sq := 0.0, 0.0
	for j := range p {
		sp += p[j]
		sq += q[j]
	}
	if sp == 0 || sq == 0 {
		return math.Inf(1)
	}
	kl := 0.0
	for j := range p {
		if p[j] == 0 {
			continue
		}
		pj, qj := p[j]/sp, q[j]/sq
		if qj == 0 {
			return math.Inf(1)
		}
		kl += pj * math.Log(pj/qj)
	}
	return kl
}

// mse searches ranges [a*lo', a*hi'] (lo' = min(lo, 0), hi' = max(hi, 0)) for the
// one with the least expected squared quantization error over the histogram:
// clipped values cost their distance to the edge, others step^2/12.
func (h *histObserver) mse() (float32, float32, error) {
	lo, hi := math.Min(h.lo, 0), math.Max(h.hi, 0)
	bestErr, bestA := math.Inf(1), 1.0
	for k := 100; k >= 10; k-- {
		a := float64(k) / 100
		l, u := lo*a, hi*a
		step := (u - l) / float64(h.levels-1)
		var e float64
		for i, c := range h.hist {
			if c == 0 {
				continue
			}
			x := h.edge(float64(i) + 0.5)
			switch {
			case x < l:
				e += c * (x - l) * (x - l)
			case x > u:
				e += c * (x - u) * (x - u)
			default:
				e += c * step * step / 12
			}
		}
		if e < bestErr {
			bestErr, bestA = e, a
		}
	}
	return float32(lo * bestA), float32(hi * bestA), nil
}
