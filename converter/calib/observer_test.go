package calib

import (
	"math"
	"math/rand/v2"
	"testing"
)

// feed runs an observer over batches of data in its passes.
func feed(t *testing.T, o Observer, batches [][]float32) (float32, float32) {
	t.Helper()
	for p := 0; p < o.Passes(); p++ {
		for _, b := range batches {
			o.Observe(p, b)
		}
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

// TestEntropyAndMSEClip: entropy clips a Gaussian far inside two rare outliers;
// MSE clips a heavy-tailed (Laplace) distribution well inside its largest values.
// (MSE keeps outliers that cost more clipped than the coarser step costs: on the
// Gaussian with +-40 outliers its range stays wide, which is right for MSE.)
func TestEntropyAndMSEClip(t *testing.T) {
	x := gaussian(200000, 3)
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

// TestHistogramObserversIgnoreBatchingAndOrder: bin edges come from the first
// pass, so splitting or reordering the data does not change the range.
func TestHistogramObserversIgnoreBatchingAndOrder(t *testing.T) {
	x := gaussian(30000, 4)
	var split [][]float32
	for i := 0; i < len(x); i += 1000 {
		split = append(split, x[i:i+1000])
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
				for p := 0; p < o.Passes(); p++ {
					for s := 0; s < 100; s++ {
						o.Observe(p, x[:4096])
					}
				}
				o.Range()
			}
		})
	}
}

// TestFirstPassOnASubset: bins fixed from a subset still count values beyond it.
func TestFirstPassOnASubset(t *testing.T) {
	o, _ := New(Config{Kind: "percentile", Percentile: 100, Bins: 64})
	o.Observe(0, []float32{0, 1})                  // subset range [0, 1]
	o.Observe(1, []float32{0.5, 1, 2.5, -0.25, 0}) // full pass reaches beyond
	lo, hi, err := o.Range()
	if err != nil || lo > -0.2 || hi < 2.5 {
		t.Errorf("range [%v, %v] %v, want about [-0.25, 2.5]", lo, hi, err)
	}
}

// BenchmarkHistogramCount is the second-pass counting alone, on Gaussian data
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
			o.Observe(0, x)
			b.SetBytes(int64(4 * len(x)))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				o.Observe(1, x)
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
		obs[i].Observe(0, data[(i%4)*size:(i%4+1)*size])
	}
	b.SetBytes(4 * tensors * size)
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		for i, o := range obs {
			o.Observe(1, data[(i%4)*size:(i%4+1)*size])
		}
	}
}
