package calib

import (
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
)

// feed runs an observer over batches of data.
func feed(t *testing.T, o Observer, batches [][]float32) (float32, float32) {
	t.Helper()
	for _, b := range batches {
		o.Observe(b)
	}
	lo, hi, err := o.Range()
	if err != nil {
		t.Fatal(err)
	}
	return lo, hi
}

func gaussian(n int, seed uint64) []float32 {
	r := rand.New(rand.NewPCG(seed, 1))
	out := make([]float32, n)
	for i := range out {
		out[i] = float32(r.NormFloat64())
	}
	return out
}

func TestMinMax(t *testing.T) {
	o, _ := New(Config{})
	lo, hi := feed(t, o, [][]float32{{1, -2, 3}, {0.5, 7}})
	if lo != -2 || hi != 7 {
		t.Errorf("minmax %v %v", lo, hi)
	}
	o, _ = New(Config{Momentum: 0.5})
	lo, hi = feed(t, o, [][]float32{{0, 4}, {0, 8}})
	if lo != 0 || hi != 6 {
		t.Errorf("moving average %v %v, want 0 6", lo, hi)
	}
	if _, _, err := (&minMax{lo: math.Inf(1)}).Range(); err == nil {
		t.Error("range without data")
	}
}

func TestPercentile(t *testing.T) {
	// 100000 uniform values in [0, 1) plus outliers at 1000: the 99.9th
	// percentile ignores the 10 outliers.
	r := rand.New(rand.NewPCG(2, 2))
	x := make([]float32, 100000)
	for i := range x {
		x[i] = float32(r.Float64())
	}
	for i := 0; i < 10; i++ {
		x[i] = 1000
	}
	o, _ := New(Config{Kind: "percentile", Percentile: 99.9, Bins: 65536})
	lo, hi := feed(t, o, [][]float32{x})
	if math.Abs(float64(hi)-0.999) > 0.02 || lo > 0.01 {
		t.Errorf("percentile range %v %v, want about [0.001, 0.999]", lo, hi)
	}
}

// TestEntropyAndMSEClip: entropy clips a Gaussian far inside two rare outliers
// (in a million values: clipping them costs less squared error than the
// coarser step would over all the others);
// MSE clips a heavy-tailed (Laplace) distribution well inside its largest values.
// (MSE keeps outliers that cost more clipped than the coarser step costs: on the
// Gaussian with +-40 outliers its range stays wide, which is right for MSE.)
func TestEntropyAndMSEClip(t *testing.T) {
	x := gaussian(1<<20, 3)
	x[0], x[1] = 40, -40
	o, _ := New(Config{Kind: "entropy"})
	lo, hi := feed(t, o, [][]float32{x})
	t.Logf("entropy on a Gaussian with outliers at +-40: [%.2f, %.2f]", lo, hi)
	if hi < 2 || hi > 20 || lo > -2 || lo < -20 {
		t.Errorf("entropy range [%v, %v] not inside the outliers", lo, hi)
	}
	r := rand.New(rand.NewPCG(6, 6))
	lap := make([]float32, 200000)
	amax := 0.0
	for i := range lap {
		v := r.ExpFloat64()
		if r.IntN(2) == 0 {
			v = -v
		}
		lap[i] = float32(v)
		amax = math.Max(amax, math.Abs(v))
	}
	o, _ = New(Config{Kind: "mse"})
	lo, hi = feed(t, o, [][]float32{lap})
	t.Logf("mse on Laplace(1), max |x| %.2f: [%.2f, %.2f]", amax, lo, hi)
	if float64(hi) > 0.9*amax || hi < 3 {
		t.Errorf("mse range [%v, %v] does not clip the tail (max %v)", lo, hi, amax)
	}
	// Non-negative data (after ReLU) gets [0, t].
	for i := range x {
		x[i] = float32(math.Abs(float64(x[i])))
	}
	o, _ = New(Config{Kind: "entropy"})
	if lo, _ := feed(t, o, [][]float32{x}); lo != 0 {
		t.Errorf("entropy on non-negative data: lo %v", lo)
	}
	// Mostly positive data with a small negative tail (a HardSwish output):
	// the low side stops at the data, not at -threshold.
	for i := range x {
		x[i] = 3*x[i] - 0.375*float32(i%2)
	}
	o, _ = New(Config{Kind: "entropy"})
	lo, hi = feed(t, o, [][]float32{x})
	t.Logf("entropy on [-0.375, 120] data: [%.3f, %.2f]", lo, hi)
	if lo < -0.4 || lo > -0.3 || hi < 3 {
		t.Errorf("entropy range [%v, %v], want the low side at the data's -0.375", lo, hi)
	}
}

// TestHistogramObserversIgnoreBatchingAndOrder: the grid only coarsens by
// exact pair merges, so splitting or reordering the data does not change the
// range, even when the batches grow in magnitude and force several merges.
func TestHistogramObserversIgnoreBatchingAndOrder(t *testing.T) {
	x := gaussian(30000, 4)
	var split [][]float32
	for i := 0; i < len(x); i += 1000 {
		b := x[i : i+1000]
		for j := range b {
			b[j] *= float32(1 + i/3000) // later batches up to 10x wider
		}
		split = append(split, b)
	}
	rev := make([][]float32, len(split))
	for i := range split {
		rev[len(split)-1-i] = split[i]
	}
	for _, kind := range []string{"percentile", "entropy", "mse"} {
		a, _ := New(Config{Kind: kind})
		b, _ := New(Config{Kind: kind})
		c, _ := New(Config{Kind: kind})
		l1, h1 := feed(t, a, [][]float32{x})
		l2, h2 := feed(t, b, split)
		l3, h3 := feed(t, c, rev)
		if l1 != l2 || h1 != h2 || l1 != l3 || h1 != h3 {
			t.Errorf("%s: [%v %v] whole, [%v %v] batched, [%v %v] reversed", kind, l1, h1, l2, h2, l3, h3)
		}
		ca, cb, cc := a.(*histObserver), b.(*histObserver), c.(*histObserver)
		if ca.k != cb.k || ca.k != cc.k || !slices.Equal(ca.counts, cb.counts) || !slices.Equal(ca.counts, cc.counts) {
			t.Errorf("%s: histograms differ (k %d %d %d)", kind, ca.k, cb.k, cc.k)
		}
	}
}

// TestHistogramIsDirectBinning: counted in batches that coarsen the grid, in
// assembly or Go, the histogram equals binning every value once at the final
// scale, floor(x n / 2^k) — including tiny negatives (bin -1, not 0), exact
// zeros seen before any scale, and NaN and infinities (not counted).
func TestHistogramIsDirectBinning(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 8))
	var batches [][]float32
	batches = append(batches, make([]float32, 37)) // zeros first: no scale yet
	for b := 0; b < 40; b++ {
		x := make([]float32, 1+r.IntN(40000))
		if b == 7 {
			x = make([]float32, parallelCount+5) // counted in two halves
		}
		mag := math.Ldexp(1, r.IntN(12)-6)
		if b == 5 {
			mag = 1e5 // the scale drops below 1 from here on
		}
		for i := range x {
			switch r.IntN(20) {
			case 0:
				x[i] = 0
			case 1:
				x[i] = -float32(math.Ldexp(1, -149+r.IntN(3))) // rounds to -0 when scaled
			case 2:
				x[i] = float32(math.Ldexp(1, -30)) * float32(r.NormFloat64())
			default:
				x[i] = float32(r.NormFloat64() * mag)
			}
		}
		if b%10 == 3 {
			x[0], x[len(x)-1] = float32(math.NaN()), float32(math.Inf(1))
		}
		batches = append(batches, x)
	}
	for _, asm := range []bool{true, false} {
		if asm && !haveCountAVX2 {
			continue
		}
		saved := haveCountAVX2
		haveCountAVX2 = asm
		o, _ := New(Config{Kind: "entropy", Bins: 1000})
		h := o.(*histObserver)
		for _, b := range batches {
			h.Observe(b)
		}
		haveCountAVX2 = saved
		if h.n != 2048 {
			t.Fatalf("n = %d, want the power of two above 2 x 1000", h.n)
		}
		want := make([]uint64, 2*h.n)
		scale := math.Ldexp(float64(h.n), -h.k)
		for _, b := range batches {
			for _, v := range b {
				f := float64(v)
				if math.IsNaN(f) || math.IsInf(f, 0) {
					continue
				}
				want[h.n+int(math.Floor(f*scale))]++
			}
		}
		if !slices.Equal(h.counts, want) {
			for i := range want {
				if h.counts[i] != want[i] {
					t.Errorf("asm %v: bin %d counts %d, direct binning %d", asm, i-h.n, h.counts[i], want[i])
					break
				}
			}
		}
	}
}

// TestEntropyLevels: with 65536 levels (a 16-bit activation) the step is too
// fine for clipping to pay, so entropy keeps the outliers 8 bits would cut.
func TestEntropyLevels(t *testing.T) {
	x := gaussian(200000, 3)
	x[0], x[1] = 40, -40
	o, _ := New(Config{Kind: "entropy", Levels: 65536})
	lo, hi := feed(t, o, [][]float32{x})
	if lo > -39.9 || hi < 39.9 {
		t.Errorf("16-bit entropy range [%v, %v], want the whole [-40, 40]", lo, hi)
	}
}

func TestBadConfig(t *testing.T) {
	for _, c := range []Config{{Kind: "kl"}, {Kind: "percentile", Percentile: 40}, {Bins: 3}, {Momentum: 1}} {
		if _, err := New(c); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
}

func BenchmarkObservers(b *testing.B) {
	x := gaussian(1<<16, 5)
	for _, kind := range []string{"minmax", "entropy"} {
		b.Run(kind, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				o, _ := New(Config{Kind: kind})
				for s := 0; s < 100; s++ {
					o.Observe(x[:4096])
				}
				o.Range()
			}
		})
	}
}

// BenchmarkHistogramCount is the counting alone, on Gaussian data
// and on ReLU-like data (half zeros), per element.
func BenchmarkHistogramCount(b *testing.B) {
	g := gaussian(1<<20, 5)
	relu := make([]float32, len(g))
	for i, v := range g {
		relu[i] = max(v, 0)
	}
	for name, x := range map[string][]float32{"gaussian": g, "relu": relu} {
		b.Run(name, func(b *testing.B) {
			o, _ := New(Config{Kind: "entropy"})
			o.Observe(x)
			b.SetBytes(int64(4 * len(x)))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				o.Observe(x)
			}
		})
	}
}

// BenchmarkHistogramMany counts like a calibration run does: 183 tensors of
// 122880 values, each with its own observer, one after another.
func BenchmarkHistogramMany(b *testing.B) {
	const tensors, size = 183, 122880
	data := gaussian(size*4, 9)
	obs := make([]Observer, tensors)
	for i := range obs {
		obs[i], _ = New(Config{Kind: "entropy"})
		obs[i].Observe(data[(i%4)*size : (i%4+1)*size])
	}
	b.SetBytes(4 * tensors * size)
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		for i, o := range obs {
			o.Observe(data[(i%4)*size : (i%4+1)*size])
		}
	}
}

// klReference is the direct construction klDivergence computes faster: P = hist[:n] with the tail folded into its last bin, and Q =
// hist[:n] merged into `levels` groups and spread back over each group's nonzero
// bins (TensorRT's construction), both smoothed. p and q are scratch space of
// at least n values.
func klReference(hist []float64, n, levels int, p, q []float64) float64 {
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

// TestKLDivergenceMatchesConstruction: the prefix-sum walk gives the direct
// construction's divergence on sparse, dense and tail-heavy histograms.
func TestKLDivergenceMatchesConstruction(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	for trial := 0; trial < 200; trial++ {
		size := 64 + r.IntN(2000)
		hist := make([]float64, size)
		sparsity := r.Float64()
		for i := range hist {
			if r.Float64() > sparsity {
				hist[i] = float64(1 + r.IntN(1+int(1e4*math.Exp(-float64(i)/float64(size)*8))))
			}
		}
		hist[r.IntN(size)] += 3
		pre := new(rangeScratch).prefixesOf(hist)
		p, q := make([]float64, size), make([]float64, size)
		for _, levels := range []int{8, 128, 256} {
			for n := levels; n <= size; n += 1 + r.IntN(97) {
				want := klReference(hist, n, levels, p, q)
				got := klDivergence(hist, n, levels, pre)
				if math.IsInf(want, 1) != math.IsInf(got, 1) || (!math.IsInf(want, 1) && math.Abs(got-want) > 1e-9*math.Max(1, math.Abs(want))) {
					t.Fatalf("trial %d, n %d, levels %d: %v, construction %v", trial, n, levels, got, want)
				}
			}
		}
	}
}

// TestEntropySearchResolution: the |x| histogram entropy searches has at
// most Bins bins, as TensorRT's 2048, so the smallest threshold it can pick
// for non-negative data at 256 levels is an eighth of the range, not less
// however many bins the grid holds.
func TestEntropySearchResolution(t *testing.T) {
	x := gaussian(400000, 11)
	for i, v := range x {
		x[i] = 0 // mostly zeros (a ReLU), a few small values and one outlier
		if i%20 == 0 {
			x[i] = float32(math.Abs(float64(v)))
		}
	}
	x[1] = 100
	amax := slices.Max(x)
	o, _ := New(Config{Kind: "entropy"})
	lo, hi := feed(t, o, [][]float32{x})
	t.Logf("entropy on sparse ReLU-like data, max %.1f: [%v, %v]", amax, lo, hi)
	if lo != 0 || hi < amax/8*0.999 || hi >= amax {
		t.Errorf("range [%v, %v]: want a clipped top no lower than %v", lo, hi, amax/8)
	}
}

// TestLanesLeftClean: the pooled counting lanes come back empty, also after a
// tiny negative that lands in bin -1 of a coarse grid (found by fuzzing: the
// next observer counted it too).
func TestLanesLeftClean(t *testing.T) {
	tiny := -math.Float32frombits(1) // the smallest subnormal, negated
	for i := 0; i < 4; i++ {
		a, _ := New(Config{Kind: "entropy"})
		a.Observe([]float32{1e5, tiny, 0, 0, 0, 0, 0, 0, 1})
		b, _ := New(Config{Kind: "entropy"})
		b.Observe([]float32{-1e-3, 2, 2}) // its drain covers bin -1
		total := uint64(0)
		for _, c := range b.(*histObserver).counts {
			total += c
		}
		if total != 3 {
			t.Fatalf("second observer counted %d values, want 3", total)
		}
	}
}

// TestEntropyThresholdBand: on a ReLU output (half exact zeros, half
// |N(0,1)|) and on a Gaussian with a few outliers, the entropy threshold lies
// between the 99th percentile of |x| and its max, clips at most 0.1% of the
// values, does not jump as the data's scale slides across the histogram
// grid's octave (the bins a threshold falls on move), and does not drop with
// 8192 bins. The search before (the zero spike in the divergence) picked 1.3
// to 2.2 on the ReLU data at 2048 bins, under the 99th percentile, clipping
// 1.3% to 9.6% of the values, in a sawtooth over the octave.
func TestEntropyThresholdBand(t *testing.T) {
	r := rand.New(rand.NewPCG(12, 12))
	relu := make([]float32, 1<<20)
	for i := range relu {
		relu[i] = float32(max(0, r.NormFloat64()))
	}
	outliers := gaussian(1<<20, 13)
	for i := range 5 {
		outliers[i*1000] = float32(8 + 4*i)
	}
	for name, x := range map[string][]float32{"relu": relu, "gaussian+outliers": outliers} {
		abs := make([]float64, len(x))
		for i, v := range x {
			abs[i] = math.Abs(float64(v))
		}
		slices.Sort(abs)
		p99, amax := abs[len(abs)*99/100], abs[len(abs)-1]
		median := map[int]float64{}
		for _, bins := range []int{2048, 8192} {
			var ts []float64
			for k := range 12 {
				scale := math.Pow(2, float64(k)/12)
				y := make([]float32, len(x))
				for i, v := range x {
					y[i] = v * float32(scale)
				}
				o, _ := New(Config{Kind: "entropy", Bins: bins})
				lo, hi := feed(t, o, [][]float32{y})
				th := math.Max(-float64(lo), float64(hi)) / scale
				clipped := len(abs) - sort.SearchFloat64s(abs, th*(1+1e-6))
				if th < p99 || th > amax*1.001 || clipped > len(abs)/1000 {
					t.Errorf("%s, %d bins, scale %.3f: threshold %.3f (p99 %.3f, max %.3f) clips %d values", name, bins, scale, th, p99, amax, clipped)
				}
				ts = append(ts, th)
			}
			slices.Sort(ts)
			t.Logf("%s, %d bins: threshold %.3f to %.3f over the octave (p99 %.3f, max %.3f)", name, bins, ts[0], ts[len(ts)-1], p99, amax)
			if ts[len(ts)-1] > 1.25*ts[0] {
				t.Errorf("%s, %d bins: threshold jumps from %.3f to %.3f as the scale moves", name, bins, ts[0], ts[len(ts)-1])
			}
			median[bins] = ts[len(ts)/2]
		}
		if median[8192] < 0.95*median[2048] {
			t.Errorf("%s: 8192 bins clip more (median threshold %.3f) than 2048 (%.3f)", name, median[8192], median[2048])
		}
	}
}

// TestEntropyKeepsLargeProbabilities: a softmax output (one probability of
// 0.5-1 per 500, the rest about 1e-3) carries its information in the few
// large values. The divergence alone clips them to 0.13 (they are 0.2% of the
// mass), which ties every argmax; clipping must not cost more squared error
// than it saves, so the range keeps them.
func TestEntropyKeepsLargeProbabilities(t *testing.T) {
	r := rand.New(rand.NewPCG(14, 14))
	x := make([]float32, 1<<20)
	for i := range x {
		if i%500 == 0 {
			x[i] = float32(0.5 + 0.5*r.Float64())
		} else {
			x[i] = float32(r.ExpFloat64() * 1e-3)
		}
	}
	o, _ := New(Config{Kind: "entropy"})
	lo, hi := feed(t, o, [][]float32{x})
	t.Logf("entropy on softmax-like data, max %.3f: [%v, %v]", slices.Max(x), lo, hi)
	if lo != 0 || hi < 0.9 {
		t.Errorf("range [%v, %v] clips the large probabilities", lo, hi)
	}
}

// TestSquaredErrorMatchesDirectSum: the prefix-sum squared error of a range
// equals summing every bin's error directly (clipped ones clipWeight times).
func TestSquaredErrorMatchesDirectSum(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 15))
	for trial := range 50 {
		h := &histObserver{bins: 16 + r.IntN(3000), lo: -r.Float64() * 10}
		h.hi = h.lo + 1 + 20*r.Float64()
		h.hist = make([]float64, h.bins)
		for i := range h.hist {
			if r.IntN(3) > 0 {
				h.hist[i] = float64(r.IntN(1000))
			}
		}
		w := (h.hi - h.lo) / float64(h.bins)
		zb := int(math.Round(-h.lo / w))
		if zb >= 0 && zb < h.bins {
			h.hist[zb] += 5000 // exact zeros
		}
		se := new(rangeScratch).squaredErrorOf(h)
		for range 20 {
			a := math.Min(0, h.lo+r.Float64()*(0-h.lo)*1.2)
			b := math.Max(0, h.hi-r.Float64()*h.hi*1.2)
			levels := []int{16, 256, 65536}[r.IntN(3)]
			step := (b - a) / float64(levels-1)
			want := 0.0
			for i, c := range h.hist {
				x := h.lo + (float64(i)+0.5)*w
				switch {
				case x < a:
					want += clipWeight * c * (x - a) * (x - a)
				case x > b:
					want += clipWeight * c * (x - b) * (x - b)
				default:
					want += c * step * step / 12
				}
			}
			want -= se.zeros * step * step / 12
			if got := se.at(a, b, levels); math.Abs(got-want) > 1e-6*math.Max(1, want) {
				t.Fatalf("trial %d, [%g, %g], %d levels: %g, direct sum %g", trial, a, b, levels, got, want)
			}
		}
	}
}
