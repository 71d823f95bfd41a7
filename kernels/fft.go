package kernels

import (
	"math"
	"math/bits"
	"math/cmplx"
	"sync"
)

// fftPlan computes the DFT of one length n in float64. Powers of two use an
// iterative radix-2 FFT. Other lengths (400 samples = 25 ms at 16 kHz is the
// common audio frame) use Bluestein's chirp-z algorithm, which rewrites the
// DFT as a convolution done by a power-of-two FFT of length m >= 2n-1: three
// length-m FFTs cost O(m log m), against n^2 multiply-adds for a direct DFT
// with precomputed twiddles (160k for 400 points: measured 10x slower than
// Bluestein's 3 FFTs of 1024), and the error stays at the FFT's O(eps log n)
// rather than the direct sum's O(eps n). All twiddles and the chirp filter
// are built once per plan; a transform allocates nothing.
type fftPlan struct {
	n   int
	rev []int32 // bit-reversal permutation (radix-2)
	// tw[h+k] = exp(-2πik/2h) for each stage's half-size h and k < h, so
	// that a stage reads its twiddles contiguously (radix-2)
	tw []complex128

	// Bluestein, n not a power of two
	chirp []complex128 // exp(-iπk²/n), k < n
	filt  []complex128 // FFT of the conjugate chirp (circular), scaled by 1/m
	sub   *fftPlan     // radix-2 plan of length m
}

func newFFTPlan(n int) *fftPlan {
	p := &fftPlan{n: n}
	if n&(n-1) == 0 {
		lg := bits.Len(uint(n)) - 1
		p.rev = make([]int32, n)
		for i := range p.rev {
			p.rev[i] = int32(bits.Reverse64(uint64(i)) >> (64 - lg))
		}
		p.tw = make([]complex128, n)
		for h := 1; h < n; h <<= 1 {
			for k := 0; k < h; k++ {
				s, c := math.Sincos(-math.Pi * float64(k) / float64(h))
				p.tw[h+k] = complex(c, s)
			}
		}
		return p
	}
	m := 1 << bits.Len(uint(2*n-2))
	p.sub = newFFTPlan(m)
	p.chirp = make([]complex128, n)
	for k := range p.chirp {
		// k² mod 2n keeps the angle small, so large k lose no precision
		k2 := (k * k) % (2 * n)
		s, c := math.Sincos(-math.Pi * float64(k2) / float64(n))
		p.chirp[k] = complex(c, s)
	}
	p.filt = make([]complex128, m)
	p.filt[0] = cmplx.Conj(p.chirp[0])
	for k := 1; k < n; k++ {
		p.filt[k] = cmplx.Conj(p.chirp[k])
		p.filt[m-k] = p.filt[k]
	}
	p.sub.radix2(p.filt)
	inv := complex(1/float64(m), 0)
	for k := range p.filt {
		p.filt[k] *= inv
	}
	return p
}

// scratch is the length of the work buffer transform needs.
func (p *fftPlan) scratch() int {
	if p.sub == nil {
		return 0
	}
	return p.sub.n
}

// transform replaces x[:n] by its DFT, or by the inverse DFT (conjugate
// twiddles, scaled by 1/n) when inverse is set. work has p.scratch() elements.
func (p *fftPlan) transform(x, work []complex128, inverse bool) {
	x = x[:p.n]
	if inverse {
		for i, v := range x {
			x[i] = cmplx.Conj(v)
		}
	}
	if p.sub == nil {
		p.radix2(x)
	} else {
		p.bluestein(x, work)
	}
	if inverse {
		s := 1 / float64(p.n)
		for i, v := range x {
			x[i] = complex(real(v)*s, -imag(v)*s)
		}
	}
}

func (p *fftPlan) radix2(x []complex128) {
	n := p.n
	x = x[:n]
	for i, j := range p.rev {
		if i < int(j) {
			x[i], x[j] = x[j], x[i]
		}
	}
	if n == 2 {
		x[0], x[1] = x[0]+x[1], x[0]-x[1]
	}
	// the first two stages at once: their twiddles are 1 and -i
	for s := 0; s+4 <= n; s += 4 {
		q := x[s : s+4 : s+4]
		a0, a1, a2, a3 := q[0]+q[1], q[0]-q[1], q[2]+q[3], q[2]-q[3]
		a3 = complex(imag(a3), -real(a3))
		q[0], q[1], q[2], q[3] = a0+a2, a1+a3, a0-a2, a1-a3
	}
	for h := 4; h < n; h <<= 1 {
		w := p.tw[h : 2*h : 2*h]
		for s := 0; s < n; s += 2 * h {
			a, b := x[s:s+h:s+h], x[s+h:s+2*h:s+2*h]
			a, b = a[:len(w)], b[:len(w)] // no bounds checks in the loop
			for k := range w {
				t := b[k] * w[k]
				a[k], b[k] = a[k]+t, a[k]-t
			}
		}
	}
}

// bluestein: X[k] = c[k] Σ_j (x[j] c[j]) conj(c[k-j]) with c[k] = exp(-iπk²/n),
// the convolution done as IFFT(FFT(a)·filt), the IFFT as conj(FFT(conj(.))).
func (p *fftPlan) bluestein(x, work []complex128) {
	m := p.sub.n
	a := work[:m]
	for j, v := range x {
		a[j] = v * p.chirp[j]
	}
	clear(a[p.n:])
	p.sub.radix2(a)
	for k := range a {
		a[k] = cmplx.Conj(a[k] * p.filt[k])
	}
	p.sub.radix2(a)
	for k := range x {
		x[k] = cmplx.Conj(a[k]) * p.chirp[k]
	}
}

// rfftPlan is the forward DFT of real input. For even n it packs the
// samples in pairs as n/2 complex points, z[j] = x[2j] + i x[2j+1], does one
// FFT of n/2 and splits the even and odd halves back out: half the work of
// the complex transform, for the real audio frames of STFT and DFT.
type rfftPlan struct {
	n    int
	half *fftPlan     // n/2 points, for even n
	full *fftPlan     // odd n: the complex transform
	tw   []complex128 // exp(-2πik/n), k <= n/2
}

func newRFFTPlan(n int) *rfftPlan {
	if n%2 == 1 {
		return &rfftPlan{n: n, full: newFFTPlan(n)}
	}
	p := &rfftPlan{n: n, half: newFFTPlan(n / 2), tw: make([]complex128, n/2+1)}
	for k := range p.tw {
		s, c := math.Sincos(-2 * math.Pi * float64(k) / float64(n))
		p.tw[k] = complex(c, s)
	}
	return p
}

func (p *rfftPlan) scratch() int {
	if p.full != nil {
		return p.full.scratch()
	}
	return p.half.scratch()
}

// transform takes n real samples in the real parts of x[:n] and leaves bins
// 0..n/2 of their DFT in x[:n/2+1]; x[n/2+1:n] is left undefined.
func (p *rfftPlan) transform(x, work []complex128) {
	if p.full != nil {
		p.full.transform(x, work, false)
		return
	}
	h := p.n / 2
	for j := 0; j < h; j++ { // in place: 2j+1 >= j
		x[j] = complex(real(x[2*j]), real(x[2*j+1]))
	}
	p.half.transform(x, work, false)
	// X[k] = E[k] + W^k O[k], with E[k] = (Z[k] + conj(Z[h-k]))/2 and
	// O[k] = -i (Z[k] - conj(Z[h-k]))/2; k and h-k are done together.
	z0 := x[0]
	x[0], x[h] = complex(real(z0)+imag(z0), 0), complex(real(z0)-imag(z0), 0)
	for k := 1; k <= h/2; k++ {
		a, b := x[k], x[h-k]
		x[k] = split(a, b, p.tw[k])
		x[h-k] = split(b, a, p.tw[h-k])
	}
}

// split is bin k of the real transform from Z[k] = a and Z[h-k] = b.
func split(a, b, w complex128) complex128 {
	e := (a + cmplx.Conj(b)) * 0.5
	d := (a - cmplx.Conj(b)) * 0.5
	return e + w*complex(imag(d), -real(d)) // w·(-i)·d
}

// fftPlans caches a kernel's plans by length, so twiddles are built once per
// length per kernel, whatever the number of runs and frames.
type fftPlans struct {
	mu           sync.Mutex
	complexPlans map[int]*fftPlan
	realPlans    map[int]*rfftPlan
}

func (c *fftPlans) get(n int) *fftPlan {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p := c.complexPlans[n]; p != nil {
		return p
	}
	if c.complexPlans == nil {
		c.complexPlans = map[int]*fftPlan{}
	}
	p := newFFTPlan(n)
	c.complexPlans[n] = p
	return p
}

func (c *fftPlans) getReal(n int) *rfftPlan {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p := c.realPlans[n]; p != nil {
		return p
	}
	if c.realPlans == nil {
		c.realPlans = map[int]*rfftPlan{}
	}
	p := newRFFTPlan(n)
	c.realPlans[n] = p
	return p
}
