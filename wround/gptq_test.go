package wround

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// correlated draws m input rows of width k whose channels mix a few shared
// factors (as real activations do), with per-channel magnitudes that differ:
// the case where spreading errors over correlated columns pays.
func correlated(r *rand.Rand, m, k int) []float32 {
	const f = 4
	mix := make([]float64, f*k)
	for i := range mix {
		mix[i] = r.NormFloat64()
	}
	gain := make([]float64, k)
	for i := range gain {
		gain[i] = math.Exp(r.NormFloat64())
	}
	x := make([]float32, m*k)
	for row := range m {
		var z [f]float64
		for i := range z {
			z[i] = r.NormFloat64()
		}
		for c := range k {
			v := 0.3 * r.NormFloat64()
			for i := range z {
				v += z[i] * mix[i*k+c]
			}
			x[row*k+c] = float32(v * gain[c])
		}
	}
	return x
}

// hessian is mean x x^T over the rows.
func hessian(x []float32, m, k int) []float64 {
	h := make([]float64, k*k)
	for row := range m {
		xr := x[row*k : (row+1)*k]
		for i, a := range xr {
			for j, b := range xr {
				h[i*k+j] += float64(a) * float64(b)
			}
		}
	}
	for i := range h {
		h[i] /= float64(m)
	}
	return h
}

// randomLayer is an N x K layer with min/max scales per group (group == k:
// per channel), symmetric or not, on [qmin, qmax].
func randomLayer(r *rand.Rand, n, k, group int, qmin, qmax int32, sym bool) *Layer {
	l := &Layer{N: n, K: k, QMin: qmin, QMax: qmax, Group: group, Symmetric: sym}
	l.W = make([]float32, n*k)
	for i := range l.W {
		l.W[i] = float32(r.NormFloat64() * 0.1)
	}
	fitMinMax(l)
	return l
}

func fitMinMax(l *Layer) {
	if l.PerTensor {
		lo, hi := math.Inf(1), math.Inf(-1)
		for _, v := range l.W {
			lo, hi = math.Min(lo, float64(v)), math.Max(hi, float64(v))
		}
		l.Scale, l.Zero = []float32{0}, []int32{0}
		l.FitRange(0, lo, hi)
		return
	}
	l.Scale, l.Zero = make([]float32, l.N*l.Groups()), make([]int32, l.N*l.Groups())
	for n := range l.N {
		for g := range l.Groups() {
			k0, k1 := l.span(g)
			lo, hi := math.Inf(1), math.Inf(-1)
			for _, v := range l.W[n*l.K+k0 : n*l.K+k1] {
				lo, hi = math.Min(lo, float64(v)), math.Max(hi, float64(v))
			}
			l.FitRange(l.Param(n, k0), lo, hi)
		}
	}
}

func cloneLayer(l *Layer) *Layer {
	c := *l
	c.W, c.Scale, c.Zero = slices.Clone(l.W), slices.Clone(l.Scale), slices.Clone(l.Zero)
	return &c
}

func TestGPTQBeatsRTN(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	const m, k, n = 2048, 96, 24
	x := correlated(r, m, k)
	in := &Inputs{H: hessian(x, m, k)}
	for _, tc := range []struct {
		name       string
		group      int
		qmin, qmax int32
		sym, act   bool
	}{
		{"int4 per-channel symmetric", k, -8, 7, true, false},
		{"int4 group 32 asymmetric", 32, -8, 7, false, false},
		{"uint4 group 32 act-order", 32, 0, 15, false, true},
		{"int3 per-channel act-order", k, -4, 3, true, true},
		{"int8 group 40 (last group short)", 40, -128, 127, true, false},
	} {
		l := randomLayer(r, n, k, tc.group, tc.qmin, tc.qmax, tc.sym)
		rtn := l.OutputMSE(l.RTN(), x, m)
		o := DefaultOptions()
		o.ActOrder = tc.act
		o.GPTQBlock = 16
		res, err := Run("gptq", l, in, o)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		for _, q := range res.Codes {
			if q < tc.qmin || q > tc.qmax {
				t.Fatalf("%s: code %d outside [%d, %d]", tc.name, q, tc.qmin, tc.qmax)
			}
		}
		got := l.OutputMSE(res.Codes, x, m)
		t.Logf("%s: output MSE RTN %.4g, GPTQ %.4g (%.2fx)", tc.name, rtn, got, rtn/got)
		if !(got < 0.8*rtn) {
			t.Errorf("%s: GPTQ output MSE %.4g is not 20%% below RTN's %.4g", tc.name, got, rtn)
		}
	}
}

func TestGPTQDeadInputs(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	const m, k, n = 512, 40, 8
	x := correlated(r, m, k)
	dead := []int{0, 7, 8, 39}
	for row := range m {
		for _, c := range dead {
			x[row*k+c] = 0
		}
	}
	// Two identical channels make H singular beyond the dead ones.
	for row := range m {
		x[row*k+20] = x[row*k+21]
	}
	in := &Inputs{H: hessian(x, m, k)}
	l := randomLayer(r, n, k, 8, -8, 7, false)
	rtn := l.OutputMSE(l.RTN(), x, m)
	o := DefaultOptions()
	o.ActOrder = true
	res, err := Run("gptq", l, in, o)
	if err != nil {
		t.Fatal(err)
	}
	got := l.OutputMSE(res.Codes, x, m)
	if !(got < rtn) || math.IsNaN(got) {
		t.Fatalf("GPTQ with dead inputs: output MSE %v, RTN %v", got, rtn)
	}
	// Dead columns quantize as zero weights: their code is the zero point.
	for nn := range n {
		for _, c := range dead {
			if q, z := res.Codes[nn*k+c], l.Zero[l.Param(nn, c)]; q != z {
				t.Fatalf("dead column %d row %d: code %d, zero point %d", c, nn, q, z)
			}
		}
	}
	// An all-zero Hessian (no data reached the layer) still gives codes.
	if _, err := Run("gptq", cloneLayer(l), &Inputs{H: make([]float64, k*k)}, o); err != nil {
		t.Fatalf("all-dead Hessian: %v", err)
	}
	if _, err := Run("gptq", cloneLayer(l), &Inputs{}, o); err == nil {
		t.Fatal("no Hessian: no error")
	}
}

// TestGPTQMatchesReference runs the algorithm as the paper writes it (no
// blocking, the inverse by Gauss-Jordan, the Cholesky by hand) and checks the
// optimised implementation picks the same codes.
func TestGPTQMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	const m, k, n = 1024, 72, 16
	x := correlated(r, m, k)
	h := hessian(x, m, k)
	for row := range m {
		x[row*k+5] = 0 // one dead input
	}
	h = hessian(x, m, k)
	for _, act := range []bool{false, true} {
		for _, group := range []int{k, 16} {
			l := randomLayer(r, n, k, group, 0, 15, false)
			ref := cloneLayer(l)
			o := DefaultOptions()
			o.ActOrder, o.GPTQBlock = act, 20
			res, err := Run("gptq", l, &Inputs{H: h}, o)
			if err != nil {
				t.Fatal(err)
			}
			want := referenceGPTQ(ref, h, 0.01, act)
			diff := 0
			for i := range want {
				if want[i] != res.Codes[i] {
					diff++
				}
			}
			if diff > len(want)/500 {
				t.Errorf("act-order %v group %d: %d of %d codes differ from the reference", act, group, diff, len(want))
			}
			for i := range l.Scale {
				if math.Abs(float64(l.Scale[i]-ref.Scale[i])) > 1e-6*float64(ref.Scale[i]) || l.Zero[i] != ref.Zero[i] {
					t.Fatalf("act-order %v group %d: group %d scale/zero %v/%d, reference %v/%d", act, group, i, l.Scale[i], l.Zero[i], ref.Scale[i], ref.Zero[i])
				}
			}
		}
	}
}

func referenceGPTQ(l *Layer, h0 []float64, damp float64, act bool) []int32 {
	K, N := l.K, l.N
	h := slices.Clone(h0)
	w := make([][]float64, N)
	for nn := range N {
		w[nn] = make([]float64, K)
		for c := range K {
			w[nn][c] = float64(l.W[nn*K+c])
		}
	}
	var mean float64
	for c := range K {
		if h[c*K+c] == 0 {
			h[c*K+c] = 1
			for nn := range N {
				w[nn][c] = 0
			}
		}
		mean += h[c*K+c]
	}
	for c := range K {
		h[c*K+c] += damp * mean / float64(K)
	}
	order := make([]int, K)
	for i := range order {
		order[i] = i
	}
	if act {
		slices.SortStableFunc(order, func(a, b int) int { return -cmpFloat(h[a*K+a], h[b*K+b]) })
	}
	hp := make([]float64, K*K)
	for i, a := range order {
		for j, b := range order {
			hp[i*K+j] = h[a*K+b]
		}
	}
	u := choleskyUpper(gaussJordanInverse(hp, K), K)
	codes := make([]int32, N*K)
	done := map[int]bool{}
	for i, c := range order {
		if g := c / l.Group; l.Group < K && !done[g] {
			done[g] = true
			k0, k1 := l.span(g)
			for nn := range N {
				lo, hi := math.Inf(1), math.Inf(-1)
				for cc := k0; cc < k1; cc++ {
					v := float64(float32(w[nn][cc]))
					lo, hi = math.Min(lo, v), math.Max(hi, v)
				}
				l.FitRange(l.Param(nn, k0), lo, hi)
			}
		}
		for nn := range N {
			q := l.Quantize(nn, c, float32(w[nn][c]))
			codes[nn*K+c] = q
			e := (w[nn][c] - float64(l.Dequantize(nn, c, q))) / u[i*K+i]
			for j := i + 1; j < K; j++ {
				w[nn][order[j]] -= e * u[i*K+j]
			}
		}
	}
	return codes
}

func gaussJordanInverse(a []float64, n int) []float64 {
	m := slices.Clone(a)
	inv := make([]float64, n*n)
	for i := range n {
		inv[i*n+i] = 1
	}
	for c := range n {
		p := c
		for r := c + 1; r < n; r++ {
			if math.Abs(m[r*n+c]) > math.Abs(m[p*n+c]) {
				p = r
			}
		}
		for j := range n {
			m[c*n+j], m[p*n+j] = m[p*n+j], m[c*n+j]
			inv[c*n+j], inv[p*n+j] = inv[p*n+j], inv[c*n+j]
		}
		d := m[c*n+c]
		for j := range n {
			m[c*n+j] /= d
			inv[c*n+j] /= d
		}
		for r := range n {
			if r == c {
				continue
			}
			f := m[r*n+c]
			for j := range n {
				m[r*n+j] -= f * m[c*n+j]
				inv[r*n+j] -= f * inv[c*n+j]
			}
		}
	}
	return inv
}

// choleskyUpper is U with U^T U = a.
func choleskyUpper(a []float64, n int) []float64 {
	u := make([]float64, n*n)
	for i := range n {
		s := a[i*n+i]
		for p := range i {
			s -= u[p*n+i] * u[p*n+i]
		}
		u[i*n+i] = math.Sqrt(s)
		for j := i + 1; j < n; j++ {
			s := a[i*n+j]
			for p := range i {
				s -= u[p*n+i] * u[p*n+j]
			}
			u[i*n+j] = s / u[i*n+i]
		}
	}
	return u
}
