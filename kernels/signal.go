package kernels

import (
	"fmt"
	"math"
	"math/cmplx"
	"slices"

	"github.com/onnxq/onnxq/graph"
)

// The signal-processing ops of audio front-ends (opset 17): DFT (axis an input
// from opset 20), STFT, the Hann, Hamming and Blackman windows and
// MelWeightMatrix. Transforms run in float64 on fftPlan (fft.go) and write the
// input's type, float32 or float64.

func init() {
	Register("", "DFT", 17, newDFT)
	Register("", "DFT", 20, newDFT)
	Register("", "STFT", 17, newSTFT)
	// a0 - a1 cos(2πn/N) + a2 cos(4πn/N), the coefficients of the spec's
	// function bodies (Hamming's are 25/46 and 21/46, not 0.54 and 0.46)
	Register("", "HannWindow", 17, newWindow(0.5, 0.5, 0))
	Register("", "HammingWindow", 17, newWindow(25.0/46, 21.0/46, 0))
	Register("", "BlackmanWindow", 17, newWindow(0.42, 0.5, 0.08))
	Register("", "MelWeightMatrix", 17, newMelWeightMatrix)
}

// fftMinWork is the fewest transformed points per thread: below it, handing
// frames to another core costs more than the FFTs.
const fftMinWork = 1 << 14

// signalMaxLen bounds the lengths read from inputs (dft_length, window size,
// mel matrix sides), so that a corrupt value is an error, not an allocation
// that panics.
const signalMaxLen = 1 << 28

// signalInt reads an integer scalar (or one-element) input.
func signalInt(t *graph.Tensor, what string) (int, error) {
	v, err := ints(t)
	if err != nil {
		return 0, fmt.Errorf("%s: %v", what, err)
	}
	if len(v) != 1 {
		return 0, fmt.Errorf("%s must be a scalar, got shape %v", what, t.Shape)
	}
	return v[0], nil
}

func signalFloat(t *graph.Tensor, what string) error {
	if t.DType != graph.Float && t.DType != graph.Double {
		return fmt.Errorf("%s must be float32 or float64, got %s", what, t.DType.Short())
	}
	return nil
}

// dftGeom lays the input out as outer x axis x inner x parts: one transform per
// (outer, inner) line, strided by inner along the axis.
type dftGeom struct {
	outer, inner   int
	inLen, inC     int // input axis length, 1 (real) or 2 (complex)
	n              int // transform length
	outLen, outC   int
	inverse, irfft bool
}

func newDFT(ni *NodeInfo) (Kernel, error) {
	a := attrsOf(ni.Node)
	inverse := a.Int("inverse", 0) != 0
	onesided := a.Int("onesided", 0) != 0
	axisAttr := a.Int("axis", 1) // opset 17; from 20 the axis is input 2, default -2
	axisInput := ni.Opset >= 20
	plans := &fftPlans{}
	return KernelFunc(func(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
		if err := need(in, 1); err != nil {
			return nil, err
		}
		x := in[0]
		if err := signalFloat(x, "DFT input"); err != nil {
			return nil, err
		}
		r := x.Rank()
		if r < 2 || (x.Shape[r-1] != 1 && x.Shape[r-1] != 2) {
			return nil, fmt.Errorf("DFT input must be [..., 1] (real) or [..., 2] (complex) with rank >= 2, got shape %v", x.Shape)
		}
		axis := axisAttr
		if axisInput {
			axis = -2
			if len(in) > 2 && in[2] != nil {
				v, err := signalInt(in[2], "DFT axis")
				if err != nil {
					return nil, err
				}
				axis = int64(v)
			}
		}
		// the last dim holds the parts of a complex number: axis in [-r, -2] or [0, r-2]
		if axis < -int64(r) || axis == -1 || axis > int64(r-2) {
			return nil, fmt.Errorf("DFT axis %d is out of range for input shape %v (the last dim holds real and imaginary parts)", axis, x.Shape)
		}
		if axis < 0 {
			axis += int64(r)
		}
		ax := int(axis)
		g := dftGeom{
			outer: graph.Numel(x.Shape[:ax]), inner: graph.Numel(x.Shape[ax+1 : r-1]),
			inLen: x.Shape[ax], inC: x.Shape[r-1], inverse: inverse,
		}
		g.n = g.inLen
		switch {
		case onesided && inverse: // IRFFT: one-sided spectrum in, full real signal out
			if g.inC != 2 {
				return nil, fmt.Errorf("DFT with onesided=1 and inverse=1 needs complex input [..., 2], got shape %v", x.Shape)
			}
			g.irfft = true
			g.n = 2 * (g.inLen - 1)
		case onesided && g.inC != 1:
			return nil, fmt.Errorf("DFT with onesided=1 needs real input [..., 1], got shape %v", x.Shape)
		}
		if len(in) > 1 && in[1] != nil {
			v, err := signalInt(in[1], "DFT dft_length")
			if err != nil {
				return nil, err
			}
			if v <= 0 || v > signalMaxLen {
				return nil, fmt.Errorf("DFT dft_length must be in [1, %d], got %d", signalMaxLen, v)
			}
			g.n = v
		}
		if g.n <= 0 {
			return nil, fmt.Errorf("DFT length must be positive, got %d for input shape %v", g.n, x.Shape)
		}
		g.outLen, g.outC = g.n, 2
		if onesided && !inverse {
			g.outLen = g.n/2 + 1
		}
		if g.irfft {
			g.outC = 1
		}
		os := slices.Clone(x.Shape)
		os[ax], os[r-1] = g.outLen, g.outC
		out := ctx.Empty(x.DType, os)
		var pl lineFFT
		if g.inC == 1 && !inverse {
			pl.real = plans.getReal(g.n)
		} else {
			pl.cplx = plans.get(g.n)
		}
		if x.DType == graph.Double {
			runDFT(ctx, &g, pl, graph.Elems[float64](x), graph.Elems[float64](out))
		} else {
			runDFT(ctx, &g, pl, x.Float32s(), out.Float32s())
		}
		return one(out), nil
	}), a.err
}

// lineFFT transforms one line: real input (forward) on the half-length
// real plan, everything else on the complex one.
type lineFFT struct {
	real *rfftPlan
	cplx *fftPlan
}

func (l lineFFT) scratch() int {
	if l.real != nil {
		return l.real.scratch()
	}
	return l.cplx.scratch()
}

// transform leaves the DFT of x[:n] in x[:bins]: the real plan gives bins up
// to n/2, the rest follow by conjugate symmetry.
func (l lineFFT) transform(x, work []complex128, bins int, inverse bool) {
	if l.cplx != nil {
		l.cplx.transform(x, work, inverse)
		return
	}
	l.real.transform(x, work)
	n := l.real.n
	for k := n/2 + 1; k < bins; k++ {
		x[k] = cmplx.Conj(x[n-k])
	}
}

func runDFT[T float32 | float64](ctx *Context, g *dftGeom, p lineFFT, x, y []T) {
	lines, n := g.outer*g.inner, g.n
	parallelFor(threadsFor(ctx, lines*n, fftMinWork), lines, func(lo, hi int) {
		buf := make([]complex128, n+p.scratch()) // one per chunk, reused by its frames
		line, work := buf[:n], buf[n:]
		for l := lo; l < hi; l++ {
			o, i := l/g.inner, l%g.inner
			src := o*g.inLen*g.inner + i // element index of the line's first point
			if g.irfft {
				// bins 0..n/2 from the input (zero past its end); the rest by
				// conjugate symmetry. The real part of the inverse is the signal.
				h := n/2 + 1
				for k := 0; k < h; k++ {
					line[k] = 0
					if k < g.inLen {
						j := (src + k*g.inner) * 2
						line[k] = complex(float64(x[j]), float64(x[j+1]))
					}
				}
				for k := h; k < n; k++ {
					line[k] = cmplx.Conj(line[n-k])
				}
			} else {
				m := min(n, g.inLen) // truncate, or zero-pad below
				for k := 0; k < m; k++ {
					j := (src + k*g.inner) * g.inC
					im := 0.0
					if g.inC == 2 {
						im = float64(x[j+1])
					}
					line[k] = complex(float64(x[j]), im)
				}
				clear(line[m:])
			}
			p.transform(line, work, g.outLen, g.inverse)
			dst := o*g.outLen*g.inner + i
			for k := 0; k < g.outLen; k++ {
				j := (dst + k*g.inner) * g.outC
				y[j] = T(real(line[k]))
				if g.outC == 2 {
					y[j+1] = T(imag(line[k]))
				}
			}
		}
	})
}

func newSTFT(ni *NodeInfo) (Kernel, error) {
	a := attrsOf(ni.Node)
	onesided := a.Int("onesided", 1) != 0
	plans := &fftPlans{}
	return KernelFunc(func(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
		if err := need(in, 2); err != nil {
			return nil, err
		}
		x := in[0]
		if err := signalFloat(x, "STFT signal"); err != nil {
			return nil, err
		}
		if x.Rank() != 3 || (x.Shape[2] != 1 && x.Shape[2] != 2) {
			return nil, fmt.Errorf("STFT signal must be [batch, length, 1] (real) or [batch, length, 2] (complex), got shape %v", x.Shape)
		}
		batch, length, c := x.Shape[0], x.Shape[1], x.Shape[2]
		step, err := signalInt(in[1], "STFT frame_step")
		if err != nil {
			return nil, err
		}
		if step <= 0 {
			return nil, fmt.Errorf("STFT frame_step must be positive, got %d", step)
		}
		// the frame length is frame_length, else the window's, else the signal's
		fl := length
		var win []float64
		if len(in) > 2 && in[2] != nil {
			w := in[2]
			if err := signalFloat(w, "STFT window"); err != nil {
				return nil, err
			}
			if w.Rank() != 1 {
				return nil, fmt.Errorf("STFT window must be 1-D, got shape %v", w.Shape)
			}
			if win, err = asFloat64s(w); err != nil {
				return nil, err
			}
			fl = len(win)
		}
		if len(in) > 3 && in[3] != nil {
			v, err := signalInt(in[3], "STFT frame_length")
			if err != nil {
				return nil, err
			}
			if win != nil && v != len(win) {
				return nil, fmt.Errorf("STFT frame_length %d disagrees with the window's length %d", v, len(win))
			}
			fl = v
		}
		if fl <= 0 || fl > length {
			return nil, fmt.Errorf("STFT frame_length %d must be in [1, %d], the signal's length", fl, length)
		}
		if onesided && c != 1 {
			return nil, fmt.Errorf("STFT with onesided=1 needs a real signal [batch, length, 1], got shape %v", x.Shape)
		}
		frames := 1 + (length-fl)/step
		bins := fl
		if onesided {
			bins = fl/2 + 1
		}
		out := ctx.Empty(x.DType, []int{batch, frames, bins, 2})
		g := stftGeom{batch: batch, length: length, c: c, step: step, frames: frames, bins: bins, win: win}
		var pl lineFFT
		if c == 1 {
			pl.real = plans.getReal(fl)
		} else {
			pl.cplx = plans.get(fl)
		}
		if x.DType == graph.Double {
			runSTFT(ctx, &g, pl, fl, graph.Elems[float64](x), graph.Elems[float64](out))
		} else {
			runSTFT(ctx, &g, pl, fl, x.Float32s(), out.Float32s())
		}
		return one(out), nil
	}), a.err
}

type stftGeom struct {
	batch, length, c, step, frames, bins int
	win                                  []float64 // nil: no window
}

// runSTFT transforms each frame (batch x frames of them) times the window, a
// DFT of the frame length, keeping the first bins.
func runSTFT[T float32 | float64](ctx *Context, g *stftGeom, p lineFFT, n int, x, y []T) {
	lines := g.batch * g.frames
	parallelFor(threadsFor(ctx, lines*n, fftMinWork), lines, func(lo, hi int) {
		buf := make([]complex128, n+p.scratch()) // one per chunk, reused by its frames
		line, work := buf[:n], buf[n:]
		for l := lo; l < hi; l++ {
			b, f := l/g.frames, l%g.frames
			src := x[(b*g.length+f*g.step)*g.c:][:n*g.c]
			switch { // the real cases, by far the common ones, without per-sample branches
			case g.c == 2:
				for k := range line {
					w := 1.0
					if g.win != nil {
						w = g.win[k]
					}
					line[k] = complex(float64(src[2*k])*w, float64(src[2*k+1])*w)
				}
			case g.win != nil:
				for k, w := range g.win {
					line[k] = complex(float64(src[k])*w, 0)
				}
			default:
				for k, v := range src {
					line[k] = complex(float64(v), 0)
				}
			}
			p.transform(line, work, g.bins, false)
			dst := y[l*g.bins*2 : (l+1)*g.bins*2]
			for k := 0; k < g.bins; k++ {
				dst[2*k], dst[2*k+1] = T(real(line[k])), T(imag(line[k]))
			}
		}
	})
}

// signalOutType reports whether dt is a numeric type a window or
// MelWeightMatrix can be written in.
func signalOutType(dt graph.DataType) bool {
	switch dt {
	case graph.Float, graph.Double, graph.Float16, graph.BFloat16, graph.Int8, graph.Uint8, graph.Int16,
		graph.Uint16, graph.Int32, graph.Uint32, graph.Int64, graph.Uint64:
		return true
	}
	return false
}

// newWindow builds a cosine-sum window kernel. periodic (default) divides by
// N = size, a window of size+1 points without its last; symmetric by size-1.
func newWindow(a0, a1, a2 float64) Factory {
	return func(ni *NodeInfo) (Kernel, error) {
		a := attrsOf(ni.Node)
		op := ni.Node.OpType
		periodic := a.Int("periodic", 1) != 0
		dt := graph.DataType(a.Int("output_datatype", int64(graph.Float)))
		if a.err == nil && !signalOutType(dt) {
			return nil, fmt.Errorf("%s output_datatype %s is not a numeric type", op, dt)
		}
		return KernelFunc(func(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
			if err := need(in, 1); err != nil {
				return nil, err
			}
			size, err := signalInt(in[0], op+" size")
			if err != nil {
				return nil, err
			}
			if size <= 0 || size > signalMaxLen {
				return nil, fmt.Errorf("%s size must be in [1, %d], got %d", op, signalMaxLen, size)
			}
			den := float64(size)
			if !periodic {
				den = float64(size - 1)
			}
			w := make([]float64, size)
			for k := range w {
				t := 0.0 // k = 0 is at angle 0, also in a one-point symmetric window (N = 0)
				if k > 0 {
					t = 2 * math.Pi * float64(k) / den
				}
				w[k] = a0 - a1*math.Cos(t) + a2*math.Cos(2*t)
			}
			out := ctx.New(dt, []int{size})
			return one(out), storeFloat64s(out, w)
		}), a.err
	}
}

// newMelWeightMatrix builds the [dft_length/2+1, num_mel_bins] matrix of
// triangular filters the way the spec's reference does: num_mel_bins+2 points
// spaced (mel(upper)-mel(lower))/(num_mel_bins+2) apart from mel(lower), each
// mapped to bin floor((dft_length+1)*hz/sample_rate); filter i rises from
// point i to i+1 and falls to i+2.
func newMelWeightMatrix(ni *NodeInfo) (Kernel, error) {
	a := attrsOf(ni.Node)
	dt := graph.DataType(a.Int("output_datatype", int64(graph.Float)))
	if a.err == nil && !signalOutType(dt) {
		return nil, fmt.Errorf("MelWeightMatrix output_datatype %s is not a numeric type", dt)
	}
	return KernelFunc(func(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
		if err := need(in, 5); err != nil {
			return nil, err
		}
		var v [3]int
		for i, name := range []string{"num_mel_bins", "dft_length", "sample_rate"} {
			n, err := signalInt(in[i], "MelWeightMatrix "+name)
			if err != nil {
				return nil, err
			}
			if n <= 0 || (i < 2 && n > signalMaxLen) {
				return nil, fmt.Errorf("MelWeightMatrix %s must be positive and at most %d, got %d", name, signalMaxLen, n)
			}
			v[i] = n
		}
		nMel, dftLen, rate := v[0], v[1], v[2]
		low, step, err := melStart(in[3], in[4], nMel)
		if err != nil {
			return nil, err
		}
		nSpec := dftLen/2 + 1
		if nSpec*nMel > signalMaxLen {
			return nil, fmt.Errorf("MelWeightMatrix of %d x %d is too large", nSpec, nMel)
		}
		pts := make([]int, nMel+2)
		for k := range pts {
			mel := float64(float64(k)*step) + low
			hz := 700 * (math.Pow(10, mel/2595) - 1)
			b := pyFloorDiv(float64(dftLen+1)*hz, float64(rate))
			limit := float64(nSpec - 1) // the last point only bounds the last filter
			if k == nMel+1 {
				limit++
			}
			if !(b >= 0 && b <= limit) {
				return nil, fmt.Errorf("MelWeightMatrix: %g Hz maps to bin %g, outside the %d bins of dft_length %d at sample_rate %d", hz, b, nSpec, dftLen, rate)
			}
			pts[k] = int(b)
		}
		w := make([]float64, nSpec*nMel)
		for i := 0; i < nMel; i++ {
			l, c, h := pts[i], pts[i+1], pts[i+2]
			if c == l {
				w[c*nMel+i] = 1
			} else {
				for j := l; j <= c; j++ {
					w[j*nMel+i] = float64(j-l) / float64(c-l)
				}
			}
			for j := c; j < h; j++ {
				w[j*nMel+i] = float64(h-j) / float64(h-c)
			}
		}
		out := ctx.New(dt, []int{nSpec, nMel})
		return one(out), storeFloat64s(out, w)
	}), nil
}

// melStart returns mel(lower) and the mel step. The reference computes them
// in the edges' own type, so float32 edges round as float32 here too: a
// point that lands on a bin boundary then falls on the same side.
func melStart(lo, hi *graph.Tensor, nMel int) (low, step float64, err error) {
	for _, t := range []*graph.Tensor{lo, hi} {
		if err := signalFloat(t, "MelWeightMatrix edge"); err != nil {
			return 0, 0, err
		}
		if t.Len() != 1 {
			return 0, 0, fmt.Errorf("MelWeightMatrix edges must be scalars, got shape %v", t.Shape)
		}
	}
	if lo.DType == graph.Float && hi.DType == graph.Float {
		mel := func(f float32) float32 { return 2595 * float32(math.Log10(float64(1+f/700))) }
		l, h := mel(lo.Float32s()[0]), mel(hi.Float32s()[0])
		return float64(l), float64((h - l) / float32(nMel+2)), nil
	}
	lv, _ := asFloat64s(lo)
	hv, _ := asFloat64s(hi)
	mel := func(f float64) float64 { return 2595 * math.Log10(1+f/700) }
	l, h := mel(lv[0]), mel(hv[0])
	return l, (h - l) / float64(nMel+2), nil
}

// pyFloorDiv is Python's (and numpy's) float a // b, which the reference uses
// for the bin of each point: it can differ from floor(a/b) when a/b rounds up
// to an integer.
func pyFloorDiv(a, b float64) float64 {
	mod := math.Mod(a, b)
	div := (a - mod) / b
	if mod != 0 && (b < 0) != (mod < 0) {
		div--
	}
	if div == 0 {
		return math.Copysign(0, a/b)
	}
	f := math.Floor(div)
	if div-f > 0.5 {
		f++
	}
	return f
}
