package wround

import (
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
)

// testLayer is an n x k layer of normal weights on a per-channel (group =
// k) or per-group grid fitted to each group's max |w| (symmetric, signed
// bits-bit codes), as the converter's default weight encodings are.
func testLayer(r *rand.Rand, n, k, group, bits int) *Layer {
	qmax := int32(1)<<(bits-1) - 1
	l := &Layer{N: n, K: k, QMin: -qmax - 1, QMax: qmax, Group: group, Symmetric: true}
	l.W = make([]float32, n*k)
	for i := range l.W {
		l.W[i] = float32(r.NormFloat64())
	}
	for row := range n {
		for g0 := 0; g0 < k; g0 += group {
			var amax float32
			for c := g0; c < min(k, g0+group); c++ {
				amax = max(amax, abs32(l.W[row*k+c]))
			}
			l.Scale = append(l.Scale, amax/float32(qmax))
			l.Zero = append(l.Zero, 0)
		}
	}
	return l
}

// correlatedRows are m input rows of k features driven by k/4 independent
// normals through a random mixing matrix, plus a little independent noise:
// strongly correlated features, as neighbouring pixels of im2col patches or
// the channels of an embedding are. Correlation is what lets rounding errors
// cancel, so nearest rounding is far from the best choice.
func correlatedRows(r *rand.Rand, m, k int) []float32 {
	f := max(1, k/4)
	mix := make([]float64, f*k)
	for i := range mix {
		mix[i] = r.NormFloat64() / math.Sqrt(float64(f))
	}
	x := make([]float32, m*k)
	z := make([]float64, f)
	for row := range m {
		for i := range z {
			z[i] = r.NormFloat64()
		}
		for j := range k {
			s := 0.1 * r.NormFloat64()
			for i := range f {
				s += z[i] * mix[i*k+j]
			}
			x[row*k+j] = float32(s)
		}
	}
	return x
}

func adaroundOptions(iters int) Options {
	o := DefaultOptions()
	o.AdaRoundIters = iters
	o.Seed = 7
	return o
}

func TestAdaRoundBeatsNearest(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	const n, k, m = 24, 48, 1024
	l := testLayer(r, n, k, k, 4)
	// Half the rows to learn from, half held out: the rounding must carry
	// over to rows it has not seen.
	all := correlatedRows(r, 2*m, k)
	x, held := all[:m*k], all[m*k:]
	scales := slices.Clone(l.Scale)
	// The relaxation alone (AIMET's AdaRound), then with the code search
	// that follows it by default.
	o := adaroundOptions(2000)
	o.AdaRoundNoDescent = true
	res, err := Run("adaround", l, &Inputs{X: x, M: m}, o)
	if err != nil {
		t.Fatal(err)
	}
	// At 2000 steps a larger learning rate converges further (0.18 x
	// nearest's error, measured).
	o.AdaRoundLR = 0.01
	fast, err := Run("adaround", l, &Inputs{X: x, M: m}, o)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := Run("adaround", l, &Inputs{X: x, M: m}, adaroundOptions(2000))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(l.Scale, scales) {
		t.Fatal("adaround changed the layer's scales")
	}
	rtn := l.RTN()
	for i, c := range res.Codes {
		if c < l.QMin || c > l.QMax {
			t.Fatalf("code %d outside [%d, %d]", c, l.QMin, l.QMax)
		}
		// Up or down: never more than one step from nearest rounding.
		if c-rtn[i] > 1 || rtn[i]-c > 1 {
			t.Fatalf("weight %d: code %d, nearest %d", i, c, rtn[i])
		}
	}
	for _, set := range []struct {
		name string
		x    []float32
		want float64
	}{{"calibration", x, 0.5}, {"held-out", held, 0.55}} {
		ada, near := l.OutputMSE(res.Codes, set.x, m), l.OutputMSE(rtn, set.x, m)
		fastErr := l.OutputMSE(fast.Codes, set.x, m)
		descErr := l.OutputMSE(desc.Codes, set.x, m)
		t.Logf("%s rows: output MSE adaround %.4g (lr 0.01: %.4g; lr 0.001 and the code search: %.4g), nearest %.4g (ratios %.3f, %.3f, %.3f)",
			set.name, ada, fastErr, descErr, near, ada/near, fastErr/near, descErr/near)
		// Measured: 0.39 on both at AIMET's learning rate, 0.18-0.19 at 0.01,
		// 0.13 on both with the search.
		if !(ada < set.want*near) || !(fastErr < 0.3*near) || !(descErr < 0.2*near) {
			t.Fatalf("%s rows: adaround's output MSE %.4g (lr 0.01: %.4g, with the search %.4g) is not below %.2f (0.3, 0.2) x nearest's %.4g", set.name, ada, fastErr, descErr, set.want, near)
		}
		if set.name == "calibration" && !(descErr <= ada) {
			t.Fatalf("the code search raised the calibration rows' output MSE: %.4g, before it %.4g", descErr, ada)
		}
	}
}

func TestAdaRoundDeterministic(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	const n, k, m = 16, 40, 300
	l := testLayer(r, n, k, 12, 3) // per group, the last group short
	x := correlatedRows(r, m, k)
	o := adaroundOptions(300)
	o.AdaRoundBatch = 64
	o.AdaRoundLR = 0.01 // far enough from nearest in 300 steps for row order to matter
	a, err := Run("adaround", l, &Inputs{X: x, M: m}, o)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Run("adaround", l, &Inputs{X: x, M: m}, o)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(a.Codes, b.Codes) {
		t.Fatal("two runs with one seed chose different codes")
	}
	o.Seed++
	c, err := Run("adaround", l, &Inputs{X: x, M: m}, o)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Equal(a.Codes, c.Codes) {
		t.Fatal("another seed (another row order) chose exactly the same codes: is the seed used?")
	}
}

// Weights past the grid's ends (a clipped range) have no choice to make in
// AdaRound's relaxation.
func TestAdaRoundClippedWeights(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 9))
	const n, k, m = 4, 32, 256
	l := testLayer(r, n, k, k, 4)
	for i := range l.Scale {
		l.Scale[i] *= 0.5 // about half the range: many weights clip
	}
	l.Pinned = true // the user's clipped range: kept as it is
	scales, zeros := slices.Clone(l.Scale), slices.Clone(l.Zero)
	x := correlatedRows(r, m, k)
	// The relaxation's own rule (the code search after it may move a
	// clipped code inwards when that lowers the output error).
	o := adaroundOptions(200)
	o.AdaRoundNoDescent = true
	res, err := Run("adaround", l, &Inputs{X: x, M: m}, o)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(l.Scale, scales) || !slices.Equal(l.Zero, zeros) {
		t.Fatal("adaround changed a pinned grid")
	}
	clipped := 0
	for i, w := range l.W {
		p := l.Param(i/k, i%k)
		t0 := float64(w/l.Scale[p]) + float64(l.Zero[p])
		switch {
		case t0 >= float64(l.QMax):
			clipped++
			if res.Codes[i] != l.QMax {
				t.Fatalf("weight %v above the grid: code %d, want %d", w, res.Codes[i], l.QMax)
			}
		case t0 < float64(l.QMin):
			clipped++
			if res.Codes[i] != l.QMin {
				t.Fatalf("weight %v below the grid: code %d, want %d", w, res.Codes[i], l.QMin)
			}
		}
	}
	if clipped == 0 {
		t.Fatal("no weight clipped: the test does not test")
	}
}

func TestAdaRoundBadInput(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	l := testLayer(r, 2, 8, 8, 4)
	for _, c := range []struct {
		name string
		in   *Inputs
		o    func(*Options)
	}{
		{"no rows", &Inputs{}, func(*Options) {}},
		{"short rows", &Inputs{X: make([]float32, 7), M: 1}, func(*Options) {}},
		{"negative iterations", &Inputs{X: make([]float32, 8), M: 1}, func(o *Options) { o.AdaRoundIters = -1 }},
		{"zero batch", &Inputs{X: make([]float32, 8), M: 1}, func(o *Options) { o.AdaRoundBatch = 0 }},
		{"zero learning rate", &Inputs{X: make([]float32, 8), M: 1}, func(o *Options) { o.AdaRoundLR = 0 }},
		{"beta below one", &Inputs{X: make([]float32, 8), M: 1}, func(o *Options) { o.AdaRoundBeta = [2]float64{20, 0.5} }},
		{"NaN input", &Inputs{X: []float32{0, 0, float32(math.NaN()), 0, 0, 0, 0, 0}, M: 1}, func(*Options) {}},
	} {
		o := adaroundOptions(10)
		c.o(&o)
		if _, err := Run("adaround", l, c.in, o); err == nil {
			t.Errorf("%s: no error", c.name)
		} else {
			t.Logf("%s: %v", c.name, err)
		}
	}
}

// Over one pass every batch is used once, so the gradients weighted by their
// batch sizes add up to 2 D X^T X over all rows, whatever the shuffle: both
// ways of computing them (Gram matrices, or rows) must give that.
func TestAdaRoundBatchGradients(t *testing.T) {
	r := rand.New(rand.NewPCG(10, 11))
	const n, k, m, b = 5, 12, 50, 16 // 4 batches, the last of 2 rows
	x := correlatedRows(r, m, k)
	d := make([]float32, n*k)
	for i := range d {
		d[i] = float32(r.NormFloat64())
	}
	want := make([]float64, n*k)
	for row := range m {
		xr := x[row*k : (row+1)*k]
		for i := range n {
			var e float64
			for c := range k {
				e += float64(d[i*k+c]) * float64(xr[c])
			}
			for c := range k {
				want[i*k+c] += 2 * e * float64(xr[c])
			}
		}
	}
	for _, gram := range []bool{true, false} {
		bs := newBatches(&Inputs{X: x, M: m}, k, b, 3, gram)
		if len(bs.size) != 4 || bs.size[3] != 2 {
			t.Fatalf("batch sizes %v, want 16, 16, 16, 2", bs.size)
		}
		for pass := range 2 {
			got := make([]float64, n*k)
			g := make([]float32, n*k)
			for range len(bs.size) {
				bs.next(d, g, n)
				rows := bs.size[bs.order[bs.pos-1]]
				for i, v := range g {
					got[i] += float64(v) * float64(rows) // g is 2/rows D Xb^T Xb
				}
			}
			for i := range got {
				if math.Abs(got[i]-want[i]) > 1e-4*(1+math.Abs(want[i])) {
					t.Fatalf("gram=%v pass %d: gradient[%d] %v, want %v", gram, pass, i, got[i], want[i])
				}
			}
		}
	}
}

func TestExpLogF(t *testing.T) {
	for x := -87.0; x < 88; x += 0.01731 {
		got, want := float64(expf(float32(x))), math.Exp(float64(float32(x)))
		if math.Abs(got-want) > 5e-7*want {
			t.Fatalf("expf(%v) = %v, want %v", x, got, want)
		}
	}
	for _, x := range []float32{1e-40, 1e-30, 1e-7, 0.01, 0.5, 0.70710677, 0.7071068, 1, 1.5, 2, 3.3, 1e10} {
		got, want := float64(logf(x)), math.Log(float64(x))
		if math.Abs(got-want) > 2e-7*max(1, math.Abs(want)) {
			t.Fatalf("logf(%v) = %v, want %v", x, got, want)
		}
	}
	if expf(100) != float32(math.Inf(1)) || expf(-100) != 0 {
		t.Fatal("expf does not saturate")
	}
}

// The work is split over goroutines (the elementwise steps, the GEMMs) on
// boundaries that do not change any sum's order: the codes do not depend on
// the thread count. Both paths (Gram and rows) are large enough to split.
func TestAdaRoundThreadsSameCodes(t *testing.T) {
	for _, c := range []struct{ n, k, batch int }{{128, 160, 256}, {256, 160, 64}} {
		r := rand.New(rand.NewPCG(12, 13))
		l := testLayer(r, c.n, c.k, 32, 4)
		const m = 512
		x := correlatedRows(r, m, c.k)
		o := adaroundOptions(60)
		o.AdaRoundLR, o.AdaRoundBatch = 0.01, c.batch
		var codes [2][]int32
		for i, procs := range []int{1, 2} {
			prev := runtime.GOMAXPROCS(procs)
			res, err := Run("adaround", l, &Inputs{X: x, M: m}, o)
			runtime.GOMAXPROCS(prev)
			if err != nil {
				t.Fatal(err)
			}
			codes[i] = res.Codes
		}
		if !slices.Equal(codes[0], codes[1]) {
			t.Fatalf("%dx%d batch %d: one thread and two chose different codes", c.n, c.k, c.batch)
		}
	}
}
