// Package calib turns the activations seen during calibration into ranges:
// streaming observers (min/max, percentile, entropy, MSE) whose memory does not
// depend on the number of samples.
package calib

import (
	"fmt"
	"math"
	"runtime"
	"sync"

	"github.com/onnxq/onnxq/kernels/vec"
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
	l32, h32 := vec.MinMax(x)
	lo, hi := float64(l32), float64(h32)
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

// histObserver: pass 0 finds min/max (over any subset of the data), which fixes a
// grid of bins of equal width; pass 1 counts every value on that grid, which
// reaches maxExtend ranges beyond each side of the pass-0 range (values farther
// out count in the outermost bins). The grid depends only on pass 0, the counts
// on no order, and memory is (2*maxExtend+1)*bins counters per tensor.
type histObserver struct {
	kind         string
	pct          float64
	bins, levels int
	lo, hi       float64 // pass-0 range; for Range, the extent of the used bins
	seen         bool
	hist         []float64
	edgesFixed   bool
	// grid: counts[k] covers [base + k*width, base + (k+1)*width).
	base, width float64
	counts      []uint32
}

const maxExtend = 4

func (h *histObserver) Passes() int { return 2 }

func (h *histObserver) Observe(pass int, x []float32) {
	if pass == 0 {
		lo, hi := h.lo, h.hi
		if !h.seen && len(x) > 0 {
			lo, hi = math.Inf(1), math.Inf(-1)
		}
		l32, h32 := vec.MinMax(x)
		lo, hi = math.Min(lo, float64(l32)), math.Max(hi, float64(h32))
		if !math.IsInf(lo, 0) && !math.IsInf(hi, 0) && !math.IsNaN(lo) {
			h.lo, h.hi, h.seen = lo, hi, true
		}
		return
	}
	if !h.edgesFixed {
		if !h.seen {
			return // nothing seen in pass 0: Range reports it
		}
		h.width = (h.hi - h.lo) / float64(h.bins)
		if h.width == 0 {
			h.width = math.Max(1, math.Abs(h.lo)) * 1e-6
		}
		h.base = h.lo - float64(maxExtend*h.bins)*h.width
		h.counts = make([]uint32, (2*maxExtend+1)*h.bins)
		h.edgesFixed = true
	}
	// Counting is most of a histogram observer's cost, and the executor waits
	// while it runs: a large tensor is counted in two halves at once, the
	// second into a scratch histogram added in afterwards (counts are sums, so
	// the result is the same).
	if len(x) >= parallelCount && runtime.GOMAXPROCS(0) > 1 {
		half := len(x) / 2
		scratch := scratchFor(len(h.counts))
		var wg sync.WaitGroup
		var lo, hi int
		wg.Add(1)
		go func() {
			defer wg.Done()
			lo, hi = h.count(scratch, x[half:])
		}()
		h.count(h.counts, x[:half])
		wg.Wait()
		for i := lo; i <= hi; i++ { // only the bins the second half touched
			h.counts[i] += scratch[i]
			scratch[i] = 0
		}
		scratchPool.Put(&scratch)
		return
	}
	h.count(h.counts, x)
}

// parallelCount is the tensor size from which Observe counts on two goroutines.
const parallelCount = 1 << 14

var scratchPool sync.Pool

func scratchFor(n int) []uint32 {
	if p, ok := scratchPool.Get().(*[]uint32); ok && len(*p) == n {
		return *p
	}
	return make([]uint32, n)
}

// count adds x to counts on the fixed grid; values beyond it go to the edge
// bins, NaNs nowhere. It returns the span of bins it touched (lo > hi: none).
func (h *histObserver) count(counts []uint32, x []float32) (lo, hi int) {
	lo, hi = len(counts), -1
	last := float64(len(counts) - 1)
	inv := 1 / h.width
	base := h.base
	for _, v := range x {
		f := (float64(v) - base) * inv
		if !(f >= 0) { // below the grid, or NaN (skipped)
			if f != f {
				continue
			}
			f = 0
		}
		if f > last {
			f = last
		}
		j := int(f)
		counts[j]++
		lo, hi = min(lo, j), max(hi, j)
	}
	return lo, hi
}

func (h *histObserver) Range() (float32, float32, error) {
	if !h.seen || !h.edgesFixed {
		return 0, 0, fmt.Errorf("no values observed")
	}
	// Trim to the used bins and compute on that histogram.
	s, e := 0, len(h.counts)
	for s < e && h.counts[s] == 0 {
		s++
	}
	for e > s && h.counts[e-1] == 0 {
		e--
	}
	if s == e {
		return 0, 0, fmt.Errorf("no values observed")
	}
	c := *h
	c.hist = make([]float64, e-s)
	for i, n := range h.counts[s:e] {
		c.hist[i] = float64(n)
	}
	c.bins = e - s
	c.lo = h.base + float64(s)*h.width
	c.hi = h.base + float64(e)*h.width
	if c.bins == 1 {
		return float32(c.lo), float32(c.hi), nil
	}
	switch c.kind {
	case "percentile":
		lo, hi := c.percentiles()
		return float32(lo), float32(hi), nil
	case "entropy":
		return c.entropy()
	}
	return c.mse()
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
// have the smallest KL divergence. The range is [-t, t] cut to the data's own
// extent, or [0, t] for data that is never negative.
func (h *histObserver) entropy() (float32, float32, error) {
	// Fold the signed histogram into one of |x| with the same bin width, so no
	// |x| bin falls between source bins (finer bins would alternate empty).
	amax := math.Max(math.Abs(h.lo), math.Abs(h.hi))
	width := (h.hi - h.lo) / float64(h.bins)
	nabs := int(math.Ceil(amax/width - 1e-9))
	abs := make([]float64, nabs)
	for i, c := range h.hist {
		if c == 0 {
			continue
		}
		center := math.Abs(h.edge(float64(i) + 0.5))
		j := int(center / width)
		abs[max(0, min(nabs-1, j))] += c
	}
	target := h.levels / 2
	if h.lo >= 0 {
		target = h.levels // non-negative data uses every level on one side
	}
	target = min(target, nabs)
	// Coarse to fine: every 16th threshold, then each one around the best.
	bestKL, best := math.Inf(1), nabs
	p, q := make([]float64, nabs), make([]float64, nabs) // reused by every try
	try := func(i int) {
		if i < target || i > nabs {
			return
		}
		if kl := klDivergence(abs, i, target, p, q); kl < bestKL || (kl == bestKL && i > best) {
			bestKL, best = kl, i
		}
	}
	for i := target; i <= nabs; i += 16 {
		try(i)
	}
	try(nabs)
	coarse := best
	for i := coarse - 15; i <= coarse+15; i++ {
		try(i)
	}
	t := math.Min(amax, width*float64(best))
	if h.lo >= 0 {
		return 0, float32(t), nil
	}
	// TensorRT's range is symmetric because its int8 is. onnxq's activations
	// are usually asymmetric: clip each side at the threshold, but no further
	// than the data goes, or a mostly positive tensor (a HardSwish output,
	// [-0.4, 100]) would spend half its levels on negatives it never has.
	return float32(math.Max(h.lo, -t)), float32(math.Min(h.hi, t)), nil
}

// klDivergence of P = hist[:n] with the tail folded into its last bin, and Q =
// hist[:n] merged into `levels` groups and spread back over each group's nonzero
// bins (TensorRT's construction), both smoothed. p and q are scratch space of
// at least n values.
func klDivergence(hist []float64, n, levels int, p, q []float64) float64 {
	p, q = p[:n], q[:n]
	copy(p, hist[:n])
	for _, c := range hist[n:] {
		p[n-1] += c
	}
	clear(q)
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
	if !smooth(p) || !smooth(q) {
		return math.Inf(1)
	}
	kl := 0.0
	for j := range p {
		if p[j] > 0 {
			kl += p[j] * math.Log(p[j]/q[j])
		}
	}
	return kl
}

// smooth gives the empty bins of a histogram (in counts) a small count taken
// evenly from the others, then normalizes, so the KL divergence stays finite
// where the clipped distribution keeps outlier mass the quantized one lacks.
// Working in counts (not probabilities) keeps single-count bins positive. It
// works in place; false when d is empty or a bin would go to zero or below.
func smooth(d []float64) bool {
	const eps = 1e-4
	zeros := 0
	for _, v := range d {
		if v == 0 {
			zeros++
		}
	}
	nonzero := len(d) - zeros
	if nonzero == 0 {
		return false
	}
	take := eps * float64(zeros) / float64(nonzero)
	sum := 0.0
	for i, v := range d {
		if v == 0 {
			d[i] = eps
		} else {
			d[i] = v - take
			if d[i] <= 0 {
				return false
			}
		}
		sum += d[i]
	}
	for i := range d {
		d[i] /= sum
	}
	return true
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
