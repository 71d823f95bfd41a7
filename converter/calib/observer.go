// Package calib turns the activations seen during calibration into ranges:
// streaming observers (min/max, percentile, entropy, MSE) whose memory does not
// depend on the number of samples.
package calib

import (
	"fmt"
	"math"
	"math/bits"
	"runtime"
	"sync"

	"github.com/onnxq/onnxq/kernels/vec"
)

// Observer accumulates one tensor's values and produces its range; the result
// depends on neither batch size nor sample order.
type Observer interface {
	Observe(x []float32)
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
	// Threads caps the goroutines a histogram observer counts on (0: all cores).
	Threads int
}

// Histogram tells the observers that count every value into a histogram
// (percentile, entropy, mse) from min/max, which only compares.
func (c Config) Histogram() bool { return c.Kind != "" && c.Kind != "minmax" }

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
		return &histObserver{kind: "percentile", pct: p, bins: c.Bins, levels: c.Levels, threads: c.Threads}, nil
	case "entropy", "mse":
		return &histObserver{kind: c.Kind, bins: c.Bins, levels: c.Levels, threads: c.Threads}, nil
	}
	return nil, fmt.Errorf("unknown observer %q (minmax, percentile, entropy, mse)", c.Kind)
}

// minMax tracks the extremes, or their moving average.
type minMax struct {
	momentum float64
	lo, hi   float64
	seen     bool
}

func (m *minMax) Observe(x []float32) {
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

// histObserver counts values on a grid fixed by construction rather than by a
// first pass over the data: 2n bins of equal width cover [-2^k, 2^k), bin i
// holding [i, i+1) x 2^k/n (i from -n). When a value reaches 2^k the grid
// doubles its width by adding neighbouring pairs, which is exact: binning at
// width 2w gives the same counts as binning at width w and adding pairs,
// because both are a floor of x times a power of two. So the histogram is the
// one binning all the data at the final k would give, whatever the order or
// batching, and calibration needs one pass over the samples. n is the power
// of two at or above 2 x Bins, so the data's wider side spans at least Bins
// bins, and the scale n/2^k is a power of two too: the float32 product x x
// scale is exact and the bin the floor of it.
type histObserver struct {
	kind         string
	pct          float64
	bins, levels int
	threads      int
	// Set by Range for the search: the used bins and the edges they span.
	lo, hi float64
	hist   []float64
	sc     *rangeScratch
	want   int // the configured bins (bins is then the used ones)

	n      int      // bins per side
	k      int      // the grid covers [-2^k, 2^k); valid once counts != nil
	minK   int      // the finest grid
	counts []uint64 // 2n bins, counts[n+i] is signed bin i
	zeros  uint64   // exact zeros seen before any other value fixed k
}

func (h *histObserver) Observe(x []float32) {
	if len(x) == 0 {
		return
	}
	if h.counts == nil { // the first values with a scale fix the grid
		lo, hi := finiteMinMax(x)
		if lo > hi {
			return // nothing finite
		}
		amax := math.Max(-float64(lo), float64(hi))
		if amax == 0 { // all zeros: no scale to fix yet
			h.zeros += uint64(countZeros(x))
			return
		}
		_, e := math.Frexp(amax) // amax < 2^e
		h.fit(e)
	}
	a := getLanes(len(h.counts))
	defer lanePool.Put(a)
	first, last, b := h.countOn(x, a)
	if first < -h.n || last >= h.n {
		// Values beyond the grid (or infinities): widen it and count again.
		a.clear()
		b.discard()
		lo, hi := finiteMinMax(x)
		if lo > hi {
			return
		}
		_, e := math.Frexp(math.Max(-float64(lo), float64(hi)))
		h.fit(e)
		first, last, b = h.countOn(x, a)
		first, last = max(first, -h.n), min(last, h.n-1) // infinities stay out
	}
	if first > last {
		a.clear() // only NaN: the spare bins
		b.discard()
		return
	}
	if first == 0 {
		first = -1 // a tiny negative whose scaled value rounded to -0 is in bin -1
	}
	a.drain(h.counts[h.n+first:h.n+last+1], h.n+first)
	if b != nil {
		b.drain(h.counts[h.n+first:h.n+last+1], h.n+first)
		lanePool.Put(b)
	}
}

// countOn counts x on the current grid into lanes a; the second half of a
// large tensor goes into lanes b of its own, counted on another goroutine
// (counting is most of a histogram observer's cost), which it returns (nil
// when x was counted in one piece). first and last are the least and
// greatest signed bin seen, which may lie outside the grid (those values
// went to the spare bins); first > last when only NaN.
func (h *histObserver) countOn(x []float32, a *lanes) (first, last int, b *lanes) {
	scale := float32(math.Ldexp(float64(h.n), -h.k))
	lim := float32(h.n)
	var lo, hi float32
	if len(x) >= parallelCount && h.threads != 1 && runtime.GOMAXPROCS(0) > 1 {
		b = getLanes(len(h.counts))
		half := len(x) / 2
		var wg sync.WaitGroup
		var lo2, hi2 float32
		var failure any
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { failure = recover() }() // raised again below, where callers can recover it
			lo2, hi2 = b.count(x[half:], scale, h.n, lim)
		}()
		lo, hi = a.count(x[:half], scale, h.n, lim)
		wg.Wait()
		if failure != nil {
			panic(failure)
		}
		lo, hi = min(lo, lo2), max(hi, hi2)
	} else {
		lo, hi = a.count(x, scale, h.n, lim)
	}
	if lo > hi {
		return 1, 0, b
	}
	// Floors of float32 values: exact integers, or infinities (clamped).
	return int(math.Max(float64(lo), -2*float64(h.n))), int(math.Min(float64(hi), 2*float64(h.n))), b
}

// fit makes the grid reach 2^e: allocated at that scale on first use (with
// the zeros seen before), coarsened by whole doublings after.
func (h *histObserver) fit(e int) {
	if h.counts == nil {
		h.n = 1 << bits.Len(uint(2*h.bins-1))
		// The smallest grid keeps the scale a normal float32 (below 2^120).
		h.minK = bits.Len(uint(h.n)) - 121
		h.k = max(e, h.minK)
		h.counts = make([]uint64, 2*h.n)
		h.counts[h.n] = h.zeros
		return
	}
	e = max(e, h.minK)
	if e <= h.k {
		return
	}
	d := uint(e - h.k)
	old := h.counts
	h.counts = make([]uint64, len(old))
	for p, c := range old {
		if c != 0 {
			h.counts[h.n+((p-h.n)>>d)] += c // arithmetic shift: floor division
		}
	}
	h.k = e
}

// parallelCount is the tensor size from which Observe counts on two
// goroutines. Only large tensors: the converter counts smaller ones on a
// worker beside the running model, where a second goroutine would take the
// model's core (PaddleOCR rec entropy/minmax 1.05-1.08 with 1<<14 here, 1.04
// with this; 183 tensors of 120 K values back to back: 17.6 -> 14.3 ms).
const parallelCount = 1 << 20

// lanes are four uint32 histograms counted round-robin: runs of equal values
// (the zeros after a ReLU) then increment four counters in turn instead of
// waiting on one, which is what limits a single-histogram loop (two lanes
// count ReLU-like data 1.4x slower, eight no faster). Each lane has
// one bin more than the grid, where values outside it land (NaN, infinities).
type lanes struct {
	c      []uint32 // nLanes lanes of stride bins
	stride int
	idx    []int32 // the assembly loop's bin indices, a block at a time
}

const nLanes = 4 // count_amd64.s relies on it

var lanePool sync.Pool

func getLanes(bins int) *lanes {
	if l, ok := lanePool.Get().(*lanes); ok && l.stride == bins+1 {
		return l
	}
	return &lanes{c: make([]uint32, nLanes*(bins+1)), stride: bins + 1, idx: make([]int32, 512)}
}

// countParams is what the assembly loop reads (layout fixed: see count_amd64.s).
type countParams struct {
	scale, lo, hi, _ float32
	bias, trash      [8]int32 // for the eight values of a step
}

// count bins x into the lanes on a grid of n bins per side, scale (a power of
// two) bins per unit; values whose bin is outside [-lim, lim) go to the spare
// bin. It returns the least and greatest floor(x x scale), NaN ignored.
func (l *lanes) count(x []float32, scale float32, n int, lim float32) (lo, hi float32) {
	p := countParams{scale: scale, lo: -lim, hi: lim}
	for j := range p.bias {
		p.bias[j] = int32(j%nLanes*l.stride + n)
		p.trash[j] = int32(j%nLanes*l.stride + l.stride - 1)
	}
	lo, hi = float32(math.Inf(1)), float32(math.Inf(-1))
	k := 0
	if haveCountAVX2 {
		k = len(x) &^ 7
		lo, hi = countAVX2(x[:k], &p, l.c, l.idx)
	}
	for i, v := range x[k:] {
		f := float32(math.Floor(float64(v * p.scale)))
		if f == f { // Go's min and max would return a NaN
			lo, hi = min(lo, f), max(hi, f)
		}
		l.c[bin(v, f, &p, i%8)]++
	}
	return lo, hi
}

// bin is the assembly loop's index for value v in lane j, f = floor(v x scale).
func bin(v, f float32, p *countParams, j int) int32 {
	if !(f >= p.lo && f < p.hi) { // also NaN
		return p.trash[j]
	}
	i := int32(f) + p.bias[j]
	if v < 0 && f == 0 { // v x scale rounded to -0
		i--
	}
	return i
}

// drain adds lane bins [from, from+len(counts)) to counts and clears them, and
// the spare bins.
func (l *lanes) drain(counts []uint64, from int) {
	s := l.stride
	k := 0
	if haveCountAVX2 {
		k = len(counts) &^ 7
		drainAVX2(counts[:k], l.c[from:], s)
	}
	for b := k; b < len(counts); b++ {
		for j := from + b; j < len(l.c); j += s {
			counts[b] += uint64(l.c[j])
			l.c[j] = 0
		}
	}
	for j := s - 1; j < len(l.c); j += s {
		l.c[j] = 0
	}
}

func (l *lanes) clear() { clear(l.c) }

// discard clears lanes counted in vain and returns them to the pool; nil is
// fine (no second half was counted).
func (l *lanes) discard() {
	if l != nil {
		l.clear()
		lanePool.Put(l)
	}
}

// finiteMinMax is min/max over the finite values (lo > hi when there are none).
func finiteMinMax(x []float32) (lo, hi float32) {
	lo, hi = float32(math.Inf(1)), float32(math.Inf(-1))
	for _, v := range x {
		if f := float64(v); !math.IsInf(f, 0) && f == f {
			lo, hi = min(lo, v), max(hi, v)
		}
	}
	return lo, hi
}

func countZeros(x []float32) int {
	z := 0
	for _, v := range x {
		if v == 0 {
			z++
		}
	}
	return z
}

func (h *histObserver) Range() (float32, float32, error) {
	if h.counts == nil {
		if h.zeros > 0 {
			return 0, 0, nil // only zeros: the converter widens an empty range
		}
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
	c := *h
	c.sc = rangeScratchPool.Get().(*rangeScratch)
	defer rangeScratchPool.Put(c.sc)
	c.sc.hist = grow(c.sc.hist, e-s)
	c.hist = c.sc.hist
	for i, n := range h.counts[s:e] {
		c.hist[i] = float64(n)
	}
	c.want = h.bins
	c.bins = e - s
	width := math.Ldexp(1/float64(h.n), h.k)
	c.lo = float64(s-h.n) * width
	c.hi = float64(e-h.n) * width
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
// threshold t whose clipped distribution P (the bins up to t, the mass
// beyond folded into the last) and its quantization Q (P merged into as many
// groups as the tensor has steps over [0, t], spread back over the nonzero
// bins) have the smallest KL divergence. The range is [-t, t] cut to the
// data's own extent, or [0, t] for data that is never negative.
//
// Where the search departed from TensorRT's, or the divergence alone is
// blind, the result was destructive (uint8 PaddleOCR rec: no line decoded as
// the float model does; CIFAR ResNet and SqueezeNet builders 14 and 37 points
// of top-1 agreement under min/max, 29 and 61 with 8192 bins), so:
//   - Exact zeros (half of a ReLU's output) cost nothing, zero being a level,
//     but as a spike in the first bin they dominated the divergence: Q spreads
//     a group's mass evenly, which costs the spike about P0 log(group width),
//     so the search narrowed the groups, i.e. the threshold, as far as it
//     could (a half-normal's range clipped to 1.3-2.2 sigma), landing just
//     under multiples of the level count (where the first group is one bin
//     narrower), and lower still with more bins. TensorRT's calibrators give
//     the first bin its neighbour's count; so does this (only ever lowering it).
//   - Q has the steps the tensor really gets: an asymmetric uint8 tensor on
//     [-2.25, t] has about 255 steps over [0, t], not the 128 of a symmetric
//     int8 one, which made every wide threshold look twice as coarse. Where the
//     steps are finer than the bins (below 128 or 256 bins, a 16-bit type)
//     there is no quantization loss to measure, and no threshold is tried.
//   - The divergence weighs mass, not distance: a spike inside the range (a
//     HardSwish's negative lobe folded onto |x|) costs it more than clipping
//     nine tenths of a tail's extent, and clipping a softmax's few large
//     probabilities moves little mass. So its range stands only if its
//     expected squared error is no more than the min/max range's (the
//     clipping pays for itself in the rounding error it saves); otherwise
//     the least squared error among the thresholds at or above its own
//     decides. (Raising the threshold just until the errors are equal kept
//     clipping where it hurt: CIFAR-style ResNet 95.2% against min/max's
//     96.5% top-1 agreement, 96.8% this way.) Clipping counts clipWeight
//     times in that error: see there.
func (h *histObserver) entropy() (float32, float32, error) {
	// Fold the signed histogram into one of |x| with the same bin width, so no
	// |x| bin falls between source bins (finer bins would alternate empty).
	amax := math.Max(math.Abs(h.lo), math.Abs(h.hi))
	width := (h.hi - h.lo) / float64(h.bins)
	nabs := int(math.Ceil(amax/width - 1e-9))
	h.sc.abs = grow(h.sc.abs, nabs)
	abs := h.sc.abs
	for i, c := range h.hist {
		if c == 0 {
			continue
		}
		center := math.Abs(h.edge(float64(i) + 0.5))
		j := int(center / width)
		abs[max(0, min(nabs-1, j))] += c
	}
	// TensorRT searches a histogram of 2048 bins over [0, amax]; the grid
	// gives up to twice the configured bins, so halve the resolution (exactly:
	// pairs of bins of the zero-aligned grid) until it is at most the
	// configured bins.
	for nabs > h.want {
		for j := 0; j < nabs; j += 2 {
			abs[j/2] = abs[j]
			if j+1 < nabs {
				abs[j/2] += abs[j+1]
			}
		}
		nabs = (nabs + 1) / 2
		abs = abs[:nabs]
		width *= 2
	}
	if nabs > 1 {
		abs[0] = math.Min(abs[0], abs[1]) // the zero spike (see above)
	}
	rangeAt := func(i int) (float64, float64) {
		t := math.Min(amax, width*float64(i))
		if h.lo >= 0 {
			return 0, t
		}
		// TensorRT's range is symmetric because its int8 is. onnxq's
		// activations are usually asymmetric: clip each side at the threshold,
		// but no further than the data goes, or a mostly positive tensor (a
		// HardSwish output, [-0.4, 100]) would spend half its levels on
		// negatives it never has.
		return math.Max(h.lo, -t), math.Min(h.hi, t)
	}
	// steps(i) is the number of quantization steps over [0, t], t = i bins.
	steps := func(i int) int {
		lo, hi := rangeAt(i)
		return int(math.Round(float64(h.levels-1) * width * float64(i) / (hi - lo)))
	}
	first := 1
	for first <= nabs && steps(first) > first {
		first++
	}
	// Coarse to fine: every 16th threshold, then each one around the best.
	bestKL, best := math.Inf(1), nabs
	pre := h.sc.prefixesOf(abs)
	try := func(i int) {
		if i < first || i > nabs {
			return
		}
		if kl := klDivergence(abs, i, steps(i), pre); kl < bestKL || (kl == bestKL && i > best) {
			bestKL, best = kl, i
		}
	}
	for i := first; i <= nabs; i += 16 {
		try(i)
	}
	try(nabs)
	coarse := best
	for i := coarse - 15; i <= coarse+15; i++ {
		try(i)
	}
	se := h.sc.squaredErrorOf(h)
	full := se.at(math.Min(h.lo, 0), math.Max(h.hi, 0), h.levels)
	if lo, hi := rangeAt(best); se.at(lo, hi, h.levels) > full {
		least := math.Inf(1)
		for i := best; i <= nabs; i++ {
			lo, hi := rangeAt(i)
			if e := se.at(lo, hi, h.levels); e < least {
				least, best = e, i
			}
		}
	}
	lo, hi := rangeAt(best)
	return float32(lo), float32(hi), nil
}

// klDivergence of P = hist[:n] with the tail folded into its last bin, and Q =
// hist[:n] merged into `levels` groups and spread back over each group's nonzero
// bins (TensorRT's construction), both smoothed: every empty bin gets eps,
// taken evenly from the nonempty ones, which keeps the divergence finite
// where P keeps outlier mass Q lacks (in counts, so single-count bins stay
// positive). It is computed in one walk over the bins from prefix sums of the
// integer counts: the smoothed bins still sum to the unsmoothed total, and
// every bin empty in both P and Q adds the same eps/ΣP x log(ΣQ/ΣP).
func klDivergence(hist []float64, n, levels int, pre *prefixes) float64 {
	const eps = 1e-4
	sumP, sumQ := pre.sum[len(hist)], pre.sum[n]
	last := hist[n-1] + sumP - sumQ // P's last bin, with the tail
	zerosQ := n - pre.nonzero[n]
	zerosP := zerosQ
	if hist[n-1] == 0 && last > 0 {
		zerosP--
	}
	if zerosP == n || zerosQ == n {
		return math.Inf(1)
	}
	takeP := eps * float64(zerosP) / float64(n-zerosP)
	takeQ := eps * float64(zerosQ) / float64(n-zerosQ)
	// The smallest nonzero count must stay above what smoothing takes.
	if m := pre.minNonzero[n-1]; m <= takeP || (last > 0 && last <= takeP) {
		return math.Inf(1)
	}
	kl := 0.0
	logSumP := math.Log(sumP)
	if emptyBoth := n - 1 - pre.nonzero[n-1]; emptyBoth > 0 { // before the last bin
		kl += float64(emptyBoth) * eps / sumP * math.Log(sumQ/sumP)
	}
	lastQ := eps / sumQ
	for g := 0; g < levels; g++ {
		s, e := g*n/levels, (g+1)*n/levels
		nz := pre.nonzero[e] - pre.nonzero[s]
		if nz == 0 {
			continue
		}
		qv := ((pre.sum[e]-pre.sum[s])/float64(nz) - takeQ) / sumQ
		if qv <= 0 {
			return math.Inf(1)
		}
		logQ := math.Log(qv) + logSumP
		for j := s; j < min(e, n-1); j++ {
			c := hist[j]
			if c == 0 {
				continue
			}
			// log(c - takeP) from the bin's log: takeP is usually tiny next
			// to a count, and four terms of log(1-u) are exact to 1e-13 there.
			lg := pre.log[j]
			if u := takeP * pre.inv[j]; u > 1e-3 {
				lg = math.Log(c - takeP)
			} else if u > 0 {
				lg -= u * (1 + u*(0.5+u*(1.0/3+u*0.25)))
			}
			kl += (c - takeP) / sumP * (lg - logQ)
		}
		if e == n && hist[n-1] > 0 {
			lastQ = qv
		}
	}
	lastP := eps / sumP
	if last > 0 {
		lastP = (last - takeP) / sumP
	}
	return kl + lastP*math.Log(lastP/lastQ)
}

// rangeScratch is the working memory of Range, pooled: the searches of a few
// hundred tensors would otherwise leave tens of MiB of garbage at once, and
// the collector lets the heap grow to twice its live size before it cleans.
type rangeScratch struct {
	hist, abs []float64
	pre       prefixes
	se        squaredError
}

// squaredError gives, in constant time per range, the expected squared error
// of quantizing the signed histogram to [a, b] with some number of levels:
// clipped values cost their squared distance to the nearer end (times
// clipWeight), the others
// step^2/12, except exact zeros (zero is a level), taken as the zero bin's
// excess over its neighbours. Values sit at their bin's centre. The sums run
// from each end of the histogram in bins from that end, so a clipped tail's
// sum does not cancel against the rest of the data.
type squaredError struct {
	lo, width    float64
	bins         int
	zeros, total float64
	// low[k][j]: sum over the j lowest bins of count x u^k, u = bins from lo;
	// high likewise over the j highest bins, in bins from hi.
	low, high [3][]float64
}

func (sc *rangeScratch) squaredErrorOf(h *histObserver) *squaredError {
	s := &sc.se
	s.lo, s.width, s.bins = h.lo, (h.hi-h.lo)/float64(h.bins), h.bins
	for k := range 3 {
		s.low[k], s.high[k] = grow(s.low[k], h.bins+1), grow(s.high[k], h.bins+1)
	}
	for j := range h.bins {
		u, c := float64(j)+0.5, h.hist[j]
		s.low[0][j+1] = s.low[0][j] + c
		s.low[1][j+1] = s.low[1][j] + c*u
		s.low[2][j+1] = s.low[2][j] + c*u*u
		c = h.hist[h.bins-1-j]
		s.high[0][j+1] = s.high[0][j] + c
		s.high[1][j+1] = s.high[1][j] + c*u
		s.high[2][j+1] = s.high[2][j] + c*u*u
	}
	s.total = s.low[0][h.bins]
	s.zeros = 0
	if z := int(math.Round(-h.lo / s.width)); z >= 0 && z < h.bins {
		nb := 0.0
		if z > 0 {
			nb = h.hist[z-1]
		}
		if z+1 < h.bins {
			nb = math.Max(nb, h.hist[z+1])
		}
		s.zeros = math.Max(0, h.hist[z]-nb)
	}
	return s
}

// at is the expected squared error (a sum over all values) of the range
// [a, b], a <= 0 <= b, with `levels` levels.
func (s *squaredError) at(a, b float64, levels int) float64 {
	side := func(sums *[3][]float64, d float64) (float64, float64) {
		j := max(0, min(s.bins, int(math.Ceil(d-0.5)))) // bins whose centre is beyond the end
		n0, n1, n2 := sums[0][j], sums[1][j], sums[2][j]
		return n0, s.width * s.width * math.Max(0, n2-2*d*n1+d*d*n0)
	}
	n0, below := side(&s.low, (a-s.lo)/s.width)
	m0, above := side(&s.high, (s.lo+s.width*float64(s.bins)-b)/s.width)
	step := (b - a) / float64(levels-1)
	inside := math.Max(0, s.total-n0-m0-s.zeros)
	return clipWeight*(below+above) + inside*step*step/12
}

// clipWeight counts a clipped value's squared error twice against rounding
// noise of the same size. Rounding errors are independent and add in
// quadrature through the sums of the next layers; clipping always pulls the
// largest values of the same channels the same way, a bias that adds up
// coherently and compounds over the quantized tensors in series. Counted
// once, the entropy ranges each cost PaddleOCR rec a little, and all ~180
// together took one calibration set from min/max's 62% to 27% of held-out
// lines decoded as the float model does (ORT on a VNNI CPU).
const clipWeight = 2

var rangeScratchPool = sync.Pool{New: func() any { return new(rangeScratch) }}

// grow returns s with n zeroed elements, reallocated only when too small.
func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	s = s[:n]
	clear(s)
	return s
}

// prefixes of a histogram of counts: sum[i] and nonzero[i] over hist[:i],
// minNonzero[i] the smallest nonzero count in hist[:i] (+Inf if none); and
// per bin the log and inverse of its count (when nonzero), which every
// threshold's divergence needs.
type prefixes struct {
	sum, minNonzero, log, inv []float64
	nonzero                   []int
}

func (sc *rangeScratch) prefixesOf(hist []float64) *prefixes {
	p := &sc.pre
	p.sum, p.minNonzero, p.nonzero = grow(p.sum, len(hist)+1), grow(p.minNonzero, len(hist)+1), grow(p.nonzero, len(hist)+1)
	p.log, p.inv = grow(p.log, len(hist)), grow(p.inv, len(hist))
	p.minNonzero[0] = math.Inf(1)
	for i, c := range hist {
		p.sum[i+1] = p.sum[i] + c
		p.nonzero[i+1] = p.nonzero[i]
		p.minNonzero[i+1] = p.minNonzero[i]
		if c > 0 {
			p.nonzero[i+1]++
			p.minNonzero[i+1] = min(p.minNonzero[i], c)
			p.log[i], p.inv[i] = math.Log(c), 1/c
		}
	}
	return p
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
