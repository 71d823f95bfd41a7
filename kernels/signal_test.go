package kernels

import (
	"math"
	"math/cmplx"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/graph/onnxpb"
)

// runSignalOp compiles op at opset with its factory and runs it on threads.
func runSignalOp(op string, opset int64, threads int, attrs []*onnxpb.AttributeProto, in ...*graph.Tensor) (*graph.Tensor, error) {
	f, err := lookup("", op, opset)
	if err != nil {
		return nil, err
	}
	k, err := f(&NodeInfo{Node: &graph.Node{OpType: op, Attrs: attrs}, Opset: opset, Consts: in})
	if err != nil {
		return nil, err
	}
	outs, err := k.Run(&Context{Threads: threads}, in)
	if err != nil {
		return nil, err
	}
	return outs[0], nil
}

func mustSignalOp(t *testing.T, op string, opset int64, attrs []*onnxpb.AttributeProto, in ...*graph.Tensor) *graph.Tensor {
	t.Helper()
	y, err := runSignalOp(op, opset, 1, attrs, in...)
	if err != nil {
		t.Fatalf("%s: %v", op, err)
	}
	return y
}

func sigI64(v int64) *graph.Tensor { return graph.Int64Tensor([]int{}, []int64{v}) }

func sigF64(shape []int, v []float64) *graph.Tensor {
	t, err := graph.TensorOf(graph.Double, shape, v)
	if err != nil {
		panic(err)
	}
	return t
}

// sigDirectDFT is the spec's sum in float64, with the angle reduced exactly
// (j*k mod n) so that it is accurate for every length.
func sigDirectDFT(x []complex128, inverse bool) []complex128 {
	n := len(x)
	sign := -1.0
	if inverse {
		sign = 1
	}
	tw := make([]complex128, n) // exp(±2πi m/n): the angle of j*k is that of j*k mod n
	for m := range tw {
		a := sign * 2 * math.Pi * float64(m) / float64(n)
		tw[m] = complex(math.Cos(a), math.Sin(a))
	}
	out := make([]complex128, n)
	for k := range out {
		var s complex128
		for j, v := range x {
			s += v * tw[j*k%n]
		}
		if inverse {
			s /= complex(float64(n), 0)
		}
		out[k] = s
	}
	return out
}

func sigRandComplex(r *rand.Rand, n int) []complex128 {
	x := make([]complex128, n)
	for i := range x {
		x[i] = complex(r.Float64()*2-1, r.Float64()*2-1)
	}
	return x
}

func sigFFTLengths() []int {
	var ns []int
	for n := 1; n <= 64; n++ {
		ns = append(ns, n)
	}
	return append(ns, 400, 512, 1000)
}

// TestFFTPlanMatchesDirectDFT checks both paths (radix-2 and Bluestein)
// against the direct sum: for inputs in [-1, 1]² the largest error of any bin
// must stay below 1e-14·n (observed: 3e-16·n; the direct sum itself is
// only good to ~n·eps).
func TestFFTPlanMatchesDirectDFT(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	worst := 0.0
	for _, n := range sigFFTLengths() {
		p := newFFTPlan(n)
		for _, inverse := range []bool{false, true} {
			x := sigRandComplex(r, n)
			want := sigDirectDFT(x, inverse)
			got := append([]complex128(nil), x...)
			p.transform(got, make([]complex128, p.scratch()), inverse)
			e := 0.0
			for k := range want {
				e = math.Max(e, cmplx.Abs(got[k]-want[k]))
			}
			if e > 1e-14*float64(n) {
				t.Fatalf("n=%d inverse=%v: max error %.3g", n, inverse, e)
			}
			worst = math.Max(worst, e/float64(n))
		}
	}
	t.Logf("worst max error / n: %.3g", worst)
	if newFFTPlan(400).sub == nil || newFFTPlan(512).sub != nil {
		t.Error("400 should use Bluestein and 512 radix-2")
	}
}

// TestRFFTPlanMatchesDirectDFT: the real-input plan (half-length complex
// FFT for even n) gives bins 0..n/2 of the direct DFT, to the same bound.
func TestRFFTPlanMatchesDirectDFT(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	for _, n := range sigFFTLengths() {
		p := newRFFTPlan(n)
		x := make([]complex128, n)
		for i := range x {
			x[i] = complex(r.Float64()*2-1, 0)
		}
		want := sigDirectDFT(x, false)
		p.transform(x, make([]complex128, p.scratch()))
		for k := 0; k <= n/2; k++ {
			if e := cmplx.Abs(x[k] - want[k]); e > 1e-14*float64(n) {
				t.Fatalf("n=%d: bin %d = %v, want %v", n, k, x[k], want[k])
			}
		}
	}
}

func TestFFTPlanInverseRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, n := range sigFFTLengths() {
		p := newFFTPlan(n)
		x := sigRandComplex(r, n)
		y := append([]complex128(nil), x...)
		work := make([]complex128, p.scratch())
		p.transform(y, work, false)
		p.transform(y, work, true)
		for i := range x {
			if cmplx.Abs(y[i]-x[i]) > 1e-13 {
				t.Fatalf("n=%d: inverse(forward(x))[%d] = %v, want %v", n, i, y[i], x[i])
			}
		}
	}
}

// sigDFTRef is the expected DFT kernel output for x of shape [outer, L, inner, c]
// along axis 1, computed line by line with sigDirectDFT over n points
// (truncated or zero-padded), keeping outLen bins, as float64 [outer, outLen, inner, 2].
func sigDFTRef(x []float64, outer, L, inner, c, n, outLen int, inverse bool) []float64 {
	out := make([]float64, outer*outLen*inner*2)
	for o := 0; o < outer; o++ {
		for i := 0; i < inner; i++ {
			line := make([]complex128, n)
			for j := 0; j < min(n, L); j++ {
				idx := ((o*L+j)*inner + i) * c
				line[j] = complex(x[idx], 0)
				if c == 2 {
					line[j] = complex(x[idx], x[idx+1])
				}
			}
			y := sigDirectDFT(line, inverse)
			for k := 0; k < outLen; k++ {
				idx := ((o*outLen+k)*inner + i) * 2
				out[idx], out[idx+1] = real(y[k]), imag(y[k])
			}
		}
	}
	return out
}

func sigRand(r *rand.Rand, n int) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = r.Float64()*2 - 1
	}
	return v
}

func sigF32s(v []float64) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x)
	}
	return out
}

func sigClose(t *testing.T, what string, got *graph.Tensor, shape []int, want []float64, tol float64) {
	t.Helper()
	if !sigEqual(got.Shape, shape) {
		t.Fatalf("%s: shape %v, want %v", what, got.Shape, shape)
	}
	g, err := asFloat64s(got)
	if err != nil {
		t.Fatal(err)
	}
	for i := range want {
		if math.Abs(g[i]-want[i]) > tol {
			t.Fatalf("%s: [%d] = %.9g, want %.9g", what, i, g[i], want[i])
		}
	}
}

func sigEqual(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestDFTAxesAndLengths runs DFT on a [2, L, 3, c] tensor along axis 1 (lines
// strided by 3) for real and complex input, forward and inverse, with
// dft_length absent, smaller (truncate) and larger (zero-pad), in float64
// (exact to 1e-12) and float32 (1e-4), at opset 17 (axis attribute) and 20
// (axis input).
func TestDFTAxesAndLengths(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	const outer, inner = 2, 3
	for _, L := range []int{8, 10} {
		for _, c := range []int{1, 2} {
			x := sigRand(r, outer*L*inner*c)
			for _, n := range []int{0, L - 3, L + 5} {
				for _, inverse := range []bool{false, true} {
					nn := n
					var dl *graph.Tensor
					if n == 0 {
						nn = L
					} else {
						dl = sigI64(int64(n))
					}
					want := sigDFTRef(x, outer, L, inner, c, nn, nn, inverse)
					shape := []int{outer, nn, inner, 2}
					inv := graph.AttrIntOf("inverse", sigB2i(inverse))
					y := mustSignalOp(t, "DFT", 17, []*onnxpb.AttributeProto{inv, graph.AttrIntOf("axis", 1)},
						sigF64([]int{outer, L, inner, c}, x), dl)
					if y.DType != graph.Double {
						t.Fatalf("float64 input gave %s", y.DType.Short())
					}
					sigClose(t, "DFT-17 float64", y, shape, want, 1e-12)
					y = mustSignalOp(t, "DFT", 20, []*onnxpb.AttributeProto{inv},
						graph.Float32Tensor([]int{outer, L, inner, c}, sigF32s(x)), dl, sigI64(-3))
					sigClose(t, "DFT-20 float32", y, shape, want, 1e-4)
				}
			}
		}
	}
}

func sigB2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// TestDFTDefaultAxis: opset 17 defaults to axis 1, opset 20 to axis -2.
func TestDFTDefaultAxis(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	x := sigRand(r, 4*6)
	in := sigF64([]int{4, 6, 1}, x)
	y := mustSignalOp(t, "DFT", 20, nil, in)
	sigClose(t, "DFT-20 default axis", y, []int{4, 6, 2}, sigDFTRef(x, 4, 6, 1, 1, 6, 6, false), 1e-12)
	// opset 17: axis 1 of [1, 4, 6, 1] is the 4
	y = mustSignalOp(t, "DFT", 17, nil, sigF64([]int{1, 4, 6, 1}, x))
	sigClose(t, "DFT-17 default axis", y, []int{1, 4, 6, 2}, sigDFTRef(x, 1, 4, 6, 1, 4, 4, false), 1e-12)
}

// TestDFTOnesided: the one-sided spectrum of real input is the first n/2+1
// bins of the full one, for even and odd n.
func TestDFTOnesided(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for _, n := range []int{7, 8, 400, 512} {
		x := sigRand(r, 3*n)
		in := sigF64([]int{3, n, 1}, x)
		full := mustSignalOp(t, "DFT", 20, nil, in)
		half := mustSignalOp(t, "DFT", 20, []*onnxpb.AttributeProto{graph.AttrIntOf("onesided", 1)}, in)
		bins := n/2 + 1
		if !sigEqual(half.Shape, []int{3, bins, 2}) {
			t.Fatalf("n=%d: onesided shape %v", n, half.Shape)
		}
		f, h := graph.Elems[float64](full), graph.Elems[float64](half)
		for b := 0; b < 3; b++ {
			for k := 0; k < bins*2; k++ {
				if f[b*n*2+k] != h[b*bins*2+k] {
					t.Fatalf("n=%d: onesided[%d][%d] = %g, full = %g", n, b, k, h[b*bins*2+k], f[b*n*2+k])
				}
			}
		}
		sigClose(t, "onesided vs direct", half, []int{3, bins, 2}, sigDFTRef(x, 3, n, 1, 1, n, bins, false), 1e-11)
	}
}

// TestDFTInverse: the inverse of a constant spectrum is a unit impulse (the
// 1/n scaling), and inverse(forward(x)) gives x back.
func TestDFTInverse(t *testing.T) {
	for _, n := range []int{5, 16} {
		spec := make([]float64, 2*n)
		for k := 0; k < n; k++ {
			spec[2*k] = 3
		}
		y := mustSignalOp(t, "DFT", 20, []*onnxpb.AttributeProto{graph.AttrIntOf("inverse", 1)}, sigF64([]int{n, 2}, spec))
		want := make([]float64, 2*n)
		want[0] = 3
		sigClose(t, "inverse of constant", y, []int{n, 2}, want, 1e-14)

		r := rand.New(rand.NewPCG(11, uint64(n)))
		x := sigRand(r, 2*n)
		fw := mustSignalOp(t, "DFT", 20, nil, sigF64([]int{n, 2}, x))
		back := mustSignalOp(t, "DFT", 20, []*onnxpb.AttributeProto{graph.AttrIntOf("inverse", 1)}, fw)
		sigClose(t, "inverse(forward)", back, []int{n, 2}, x, 1e-13)
	}
}

// TestDFTIRFFT: onesided=1 with inverse=1 turns a one-sided spectrum back
// into the full real signal [..., n, 1], n = 2(bins-1) by default or dft_length.
func TestDFTIRFFT(t *testing.T) {
	r := rand.New(rand.NewPCG(12, 13))
	irfft := []*onnxpb.AttributeProto{graph.AttrIntOf("onesided", 1), graph.AttrIntOf("inverse", 1)}
	for _, n := range []int{8, 9, 400} {
		x := sigRand(r, 2*n)
		spec := mustSignalOp(t, "DFT", 20, []*onnxpb.AttributeProto{graph.AttrIntOf("onesided", 1)}, sigF64([]int{2, n, 1}, x))
		var dl *graph.Tensor
		if n%2 == 1 { // odd lengths are not the default 2(bins-1)
			dl = sigI64(int64(n))
		}
		back := mustSignalOp(t, "DFT", 20, irfft, spec, dl)
		sigClose(t, "irfft(rfft(x))", back, []int{2, n, 1}, x, 1e-12)
	}
}

// sigHann400in512 is a 400-point periodic Hann window centred in 512 points, as
// torch.stft(n_fft=512, win_length=400) exports it.
func sigHann400in512() []float64 {
	w := make([]float64, 512)
	for k := 0; k < 400; k++ {
		w[56+k] = 0.5 - 0.5*math.Cos(2*math.Pi*float64(k)/400)
	}
	return w
}

// TestSTFTMatchesFrameDFT compares STFT with a direct DFT of every windowed
// frame, for a power-of-two and a Bluestein frame, onesided and not, with and
// without a window, float32 and float64, and on 1 and 2 threads.
func TestSTFTMatchesFrameDFT(t *testing.T) {
	r := rand.New(rand.NewPCG(14, 15))
	const batch, length, step = 2, 2000, 160
	sig := sigRand(r, batch*length)
	for _, fl := range []int{400, 512} {
		win := make([]float64, fl)
		for k := range win {
			win[k] = 0.5 - 0.5*math.Cos(2*math.Pi*float64(k)/float64(fl))
		}
		frames := 1 + (length-fl)/step
		for _, onesided := range []bool{true, false} {
			for _, withWin := range []bool{true, false} {
				bins := fl
				if onesided {
					bins = fl/2 + 1
				}
				want := make([]float64, 0, batch*frames*bins*2)
				for b := 0; b < batch; b++ {
					for f := 0; f < frames; f++ {
						line := make([]complex128, fl)
						for k := range line {
							v := sig[b*length+f*step+k]
							if withWin {
								v *= win[k]
							}
							line[k] = complex(v, 0)
						}
						for _, v := range sigDirectDFT(line, false)[:bins] {
							want = append(want, real(v), imag(v))
						}
					}
				}
				attrs := []*onnxpb.AttributeProto{graph.AttrIntOf("onesided", sigB2i(onesided))}
				var w64, w32 *graph.Tensor
				if withWin {
					w64, w32 = sigF64([]int{fl}, win), graph.Float32Tensor([]int{fl}, sigF32s(win))
				}
				shape := []int{batch, frames, bins, 2}
				y := mustSignalOp(t, "STFT", 17, attrs, sigF64([]int{batch, length, 1}, sig), sigI64(step), w64, sigI64(int64(fl)))
				sigClose(t, "STFT float64", y, shape, want, 1e-10)
				x32 := graph.Float32Tensor([]int{batch, length, 1}, sigF32s(sig))
				y1, err := runSignalOp("STFT", 17, 1, attrs, x32, sigI64(step), w32, sigI64(int64(fl)))
				if err != nil {
					t.Fatal(err)
				}
				sigClose(t, "STFT float32", y1, shape, want, 2e-4)
				y2, err := runSignalOp("STFT", 17, 2, attrs, x32, sigI64(step), w32, sigI64(int64(fl)))
				if err != nil {
					t.Fatal(err)
				}
				a, b := y1.Float32s(), y2.Float32s()
				for i := range a {
					if a[i] != b[i] {
						t.Fatalf("fl=%d: 2 threads [%d] = %g, 1 thread %g", fl, i, b[i], a[i])
					}
				}
			}
		}
	}
	// frame_length from the window alone, and a complex signal (onesided=0)
	x := sigRand(r, 1*50*2)
	y := mustSignalOp(t, "STFT", 17, []*onnxpb.AttributeProto{graph.AttrIntOf("onesided", 0)},
		sigF64([]int{1, 50, 2}, x), sigI64(7), sigF64([]int{16}, make([]float64, 16)))
	if !sigEqual(y.Shape, []int{1, 1 + (50-16)/7, 16, 2}) {
		t.Fatalf("complex STFT shape %v", y.Shape)
	}
}

// TestWindowsKnownValues checks values of the spec's formula computed by
// hand: w[n] = a0 - a1 cos(2πn/N) + a2 cos(4πn/N), N = size (periodic) or
// size-1 (symmetric).
func TestWindowsKnownValues(t *testing.T) {
	s2 := math.Sqrt2 / 2
	sym := []*onnxpb.AttributeProto{graph.AttrIntOf("periodic", 0)}
	cases := []struct {
		op    string
		attrs []*onnxpb.AttributeProto
		size  int64
		want  []float64
	}{
		// periodic Hann of 8: 0.5 - 0.5cos(πn/4)
		{"HannWindow", nil, 8, []float64{0, 0.5 - 0.5*s2, 0.5, 0.5 + 0.5*s2, 1, 0.5 + 0.5*s2, 0.5, 0.5 - 0.5*s2}},
		{"HannWindow", sym, 5, []float64{0, 0.5, 1, 0.5, 0}},
		// Hamming: 25/46 - 21/46 cos: first 4/46, quarter 25/46, middle 1
		{"HammingWindow", nil, 4, []float64{4.0 / 46, 25.0 / 46, 1, 25.0 / 46}},
		{"HammingWindow", sym, 3, []float64{4.0 / 46, 1, 4.0 / 46}},
		// Blackman: 0.42 - 0.5cos + 0.08cos(2·): 0 at the ends, 0.34 at a quarter, 1 in the middle
		{"BlackmanWindow", sym, 5, []float64{0, 0.34, 1, 0.34, 0}},
		{"BlackmanWindow", nil, 4, []float64{0, 0.34, 1, 0.34}},
		// one point: the n = 0 sample
		{"HammingWindow", sym, 1, []float64{4.0 / 46}},
	}
	for _, c := range cases {
		attrs := append(append([]*onnxpb.AttributeProto(nil), c.attrs...), graph.AttrIntOf("output_datatype", int64(graph.Double)))
		y := mustSignalOp(t, c.op, 17, attrs, sigI64(c.size))
		if y.DType != graph.Double {
			t.Fatalf("%s: output %s, want float64", c.op, y.DType.Short())
		}
		sigClose(t, c.op, y, []int{int(c.size)}, c.want, 1e-15)
		// default output_datatype is float32; an int32 size works the same
		y = mustSignalOp(t, c.op, 17, c.attrs, tensorOf(t, graph.Int32, []int{}, []int32{int32(c.size)}))
		if y.DType != graph.Float {
			t.Fatalf("%s: default output %s, want float32", c.op, y.DType.Short())
		}
		sigClose(t, c.op+" float32", y, []int{int(c.size)}, c.want, 1e-7)
	}
	// integer output truncates like Cast: only the 1 in the middle survives
	y := mustSignalOp(t, "HannWindow", 17, append(sym, graph.AttrIntOf("output_datatype", int64(graph.Int64))), sigI64(5))
	if got := y.Int64s(); !sigEqual(toInts(got), []int{0, 0, 1, 0, 0}) {
		t.Fatalf("int64 Hann = %v", got)
	}
}

// TestMelWeightMatrixFromSpecFormula: 4 mel bins, dft_length 64, 16 kHz,
// 0-8000 Hz. mel(8000) = 2595 log10(1 + 8000/700) = 2840.02, step /6 =
// 473.34; the 6 points map (floor(65 hz / 16000)) to bins 0, 1, 3, 7, 12, 20
// (hz 0, 365.4, 921.5, 1767.8, 3055.9, 5016.3). Filter i rises from point i
// to i+1 and falls to i+2.
func TestMelWeightMatrixFromSpecFormula(t *testing.T) {
	in := []*graph.Tensor{sigI64(4), sigI64(64), sigI64(16000), graph.Float32Tensor([]int{}, []float32{0}), graph.Float32Tensor([]int{}, []float32{8000})}
	y := mustSignalOp(t, "MelWeightMatrix", 17, nil, in...)
	if y.DType != graph.Float || !sigEqual(y.Shape, []int{33, 4}) {
		t.Fatalf("got %s %v, want float32 [33 4]", y.DType.Short(), y.Shape)
	}
	w := y.Float32s()
	at := func(bin, mel int) float64 { return float64(w[bin*4+mel]) }
	known := []struct {
		bin, mel int
		v        float64
	}{
		{0, 0, 0}, {1, 0, 1}, {2, 0, 0.5}, {3, 0, 0},
		{1, 1, 0}, {2, 1, 0.5}, {3, 1, 1}, {4, 1, 0.75}, {5, 1, 0.5}, {6, 1, 0.25}, {7, 1, 0},
		{3, 2, 0}, {4, 2, 0.25}, {7, 2, 1}, {8, 2, 0.8}, {11, 2, 0.2}, {12, 2, 0},
		{7, 3, 0}, {8, 3, 0.2}, {12, 3, 1}, {13, 3, 0.875}, {19, 3, 0.125}, {20, 3, 0},
	}
	for _, k := range known {
		if got := at(k.bin, k.mel); math.Abs(got-k.v) > 1e-7 {
			t.Errorf("w[%d][%d] = %g, want %g", k.bin, k.mel, got, k.v)
		}
	}
	// a triangle over points l, c, h sums to (h-l)/2
	for m, want := range []float64{1.5, 3, 4.5, 6.5} {
		s := 0.0
		for b := 0; b < 33; b++ {
			s += at(b, m)
		}
		if math.Abs(s-want) > 1e-6 {
			t.Errorf("column %d sums to %g, want %g", m, s, want)
		}
	}
	for b := 20; b < 33; b++ {
		for m := 0; m < 4; m++ {
			if at(b, m) != 0 {
				t.Errorf("w[%d][%d] = %g above the last point", b, m, at(b, m))
			}
		}
	}
	// float64 edges and a float64 output give the same matrix
	in[3], in[4] = sigF64([]int{}, []float64{0}), sigF64([]int{}, []float64{8000})
	y64 := mustSignalOp(t, "MelWeightMatrix", 17, []*onnxpb.AttributeProto{graph.AttrIntOf("output_datatype", int64(graph.Double))}, in...)
	for i, v := range graph.Elems[float64](y64) {
		if float32(v) != w[i] {
			t.Fatalf("float64 [%d] = %g, float32 %g", i, v, w[i])
		}
	}
}

// TestMelWeightMatrixCoincidentPoints: the backend test's case, 8 mel bins,
// dft_length 16, 8192 Hz, 0-4096 Hz: mel(4096) = 2168.85, step /10; the 10
// points map (floor(17 hz / 8192)) to bins 0 0 0 1 1 2 3 4 5 6, so several
// filters have coincident points and are a single 1 at their centre.
func TestMelWeightMatrixCoincidentPoints(t *testing.T) {
	y := mustSignalOp(t, "MelWeightMatrix", 17, nil, sigI64(8), sigI64(16), sigI64(8192),
		graph.Float32Tensor([]int{}, []float32{0}), graph.Float32Tensor([]int{}, []float32{4096}))
	want := make([]float64, 9*8)
	for _, bm := range [][2]int{{0, 0}, {0, 1}, {1, 2}, {1, 3}, {2, 4}, {3, 5}, {4, 6}, {5, 7}} {
		want[bm[0]*8+bm[1]] = 1
	}
	sigClose(t, "MelWeightMatrix", y, []int{9, 8}, want, 0)
}

// TestPyFloorDiv: Python's float // (what the reference's bin mapping uses).
func TestPyFloorDiv(t *testing.T) {
	for _, c := range [][3]float64{{7, 2, 3}, {-7, 2, -4}, {6, 3, 2}, {0.5, 0.1, 4}, {1, 0.1, 9}, {0, 5, 0}} {
		if got := pyFloorDiv(c[0], c[1]); got != c[2] {
			t.Errorf("%g // %g = %g, want %g", c[0], c[1], got, c[2])
		}
	}
}

// TestSignalBadInputs: every bad input is a one-line error, never a panic.
func TestSignalBadInputs(t *testing.T) {
	f32 := func(shape ...int) *graph.Tensor { return graph.NewTensor(graph.Float, shape) }
	attr := graph.AttrIntOf
	type call struct {
		name  string
		op    string
		opset int64
		attrs []*onnxpb.AttributeProto
		in    []*graph.Tensor
	}
	cases := []call{
		{"DFT rank 1", "DFT", 20, nil, []*graph.Tensor{f32(8)}},
		{"DFT last dim 3", "DFT", 20, nil, []*graph.Tensor{f32(4, 8, 3)}},
		{"DFT int input", "DFT", 20, nil, []*graph.Tensor{graph.Int64Tensor([]int{4, 1}, make([]int64, 4))}},
		{"DFT axis on the complex dim", "DFT", 17, []*onnxpb.AttributeProto{attr("axis", -1)}, []*graph.Tensor{f32(4, 8, 1)}},
		{"DFT axis attr out of range", "DFT", 17, []*onnxpb.AttributeProto{attr("axis", 2)}, []*graph.Tensor{f32(4, 8, 1)}},
		{"DFT axis input out of range", "DFT", 20, nil, []*graph.Tensor{f32(4, 8, 1), nil, sigI64(-4)}},
		{"DFT axis input not scalar", "DFT", 20, nil, []*graph.Tensor{f32(4, 8, 1), nil, graph.Int64Tensor([]int{2}, []int64{0, 1})}},
		{"DFT dft_length 0", "DFT", 20, nil, []*graph.Tensor{f32(8, 1), sigI64(0)}},
		{"DFT dft_length negative", "DFT", 17, nil, []*graph.Tensor{f32(1, 8, 1), sigI64(-3)}},
		{"DFT dft_length float", "DFT", 20, nil, []*graph.Tensor{f32(8, 1), f32()}},
		{"DFT onesided complex", "DFT", 20, []*onnxpb.AttributeProto{attr("onesided", 1)}, []*graph.Tensor{f32(8, 2)}},
		{"DFT irfft real", "DFT", 20, []*onnxpb.AttributeProto{attr("onesided", 1), attr("inverse", 1)}, []*graph.Tensor{f32(8, 1)}},
		{"DFT irfft of one bin", "DFT", 20, []*onnxpb.AttributeProto{attr("onesided", 1), attr("inverse", 1)}, []*graph.Tensor{f32(1, 2)}},
		{"DFT dft_length huge", "DFT", 20, nil, []*graph.Tensor{f32(8, 1), sigI64(1 << 40)}},
		{"DFT missing input", "DFT", 20, nil, []*graph.Tensor{nil}},
		{"STFT rank 2", "STFT", 17, nil, []*graph.Tensor{f32(1, 100), sigI64(10), nil, sigI64(16)}},
		{"STFT last dim 3", "STFT", 17, nil, []*graph.Tensor{f32(1, 100, 3), sigI64(10), nil, sigI64(16)}},
		{"STFT step 0", "STFT", 17, nil, []*graph.Tensor{f32(1, 100, 1), sigI64(0), nil, sigI64(16)}},
		{"STFT step negative", "STFT", 17, nil, []*graph.Tensor{f32(1, 100, 1), sigI64(-1), nil, sigI64(16)}},
		{"STFT frame longer than signal", "STFT", 17, nil, []*graph.Tensor{f32(1, 100, 1), sigI64(10), nil, sigI64(101)}},
		{"STFT window longer than signal", "STFT", 17, nil, []*graph.Tensor{f32(1, 10, 1), sigI64(1), f32(16)}},
		{"STFT frame_length 0", "STFT", 17, nil, []*graph.Tensor{f32(1, 100, 1), sigI64(10), nil, sigI64(0)}},
		{"STFT window disagrees", "STFT", 17, nil, []*graph.Tensor{f32(1, 100, 1), sigI64(10), f32(20), sigI64(16)}},
		{"STFT window 2-D", "STFT", 17, nil, []*graph.Tensor{f32(1, 100, 1), sigI64(10), f32(4, 4)}},
		{"STFT window int", "STFT", 17, nil, []*graph.Tensor{f32(1, 100, 1), sigI64(10), graph.Int64Tensor([]int{16}, make([]int64, 16))}},
		{"STFT onesided complex", "STFT", 17, nil, []*graph.Tensor{f32(1, 100, 2), sigI64(10), nil, sigI64(16)}},
		{"STFT step missing", "STFT", 17, nil, []*graph.Tensor{f32(1, 100, 1), nil}},
		{"Hann size 0", "HannWindow", 17, nil, []*graph.Tensor{sigI64(0)}},
		{"Hamming size negative", "HammingWindow", 17, nil, []*graph.Tensor{sigI64(-4)}},
		{"Blackman size not scalar", "BlackmanWindow", 17, nil, []*graph.Tensor{graph.Int64Tensor([]int{2}, []int64{4, 4})}},
		{"Hann size huge", "HannWindow", 17, nil, []*graph.Tensor{sigI64(1 << 50)}},
		{"Hann size float", "HannWindow", 17, nil, []*graph.Tensor{f32()}},
		{"Hann output string", "HannWindow", 17, []*onnxpb.AttributeProto{attr("output_datatype", int64(graph.String))}, []*graph.Tensor{sigI64(4)}},
		{"Mel num_mel_bins 0", "MelWeightMatrix", 17, nil, []*graph.Tensor{sigI64(0), sigI64(64), sigI64(16000), f32(), f32()}},
		{"Mel huge", "MelWeightMatrix", 17, nil, []*graph.Tensor{sigI64(1 << 20), sigI64(1 << 20), sigI64(16000), f32(), f32()}},
		{"Mel sample_rate 0", "MelWeightMatrix", 17, nil, []*graph.Tensor{sigI64(4), sigI64(64), sigI64(0), f32(), f32()}},
		{"Mel upper edge past Nyquist", "MelWeightMatrix", 17, nil, []*graph.Tensor{sigI64(4), sigI64(64), sigI64(16000), f32(), graph.Float32Tensor([]int{}, []float32{40000})}},
		{"Mel negative edge", "MelWeightMatrix", 17, nil, []*graph.Tensor{sigI64(4), sigI64(64), sigI64(16000), graph.Float32Tensor([]int{}, []float32{-600}), graph.Float32Tensor([]int{}, []float32{8000})}},
		{"Mel int edge", "MelWeightMatrix", 17, nil, []*graph.Tensor{sigI64(4), sigI64(64), sigI64(16000), sigI64(0), f32()}},
		{"Mel output bool", "MelWeightMatrix", 17, []*onnxpb.AttributeProto{attr("output_datatype", int64(graph.Bool))}, []*graph.Tensor{sigI64(4), sigI64(64), sigI64(16000), f32(), f32()}},
		{"Mel missing input", "MelWeightMatrix", 17, nil, []*graph.Tensor{sigI64(4), sigI64(64), sigI64(16000), f32()}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			defer func() {
				if p := recover(); p != nil {
					t.Fatalf("panic: %v", p)
				}
			}()
			y, err := runSignalOp(c.op, c.opset, 1, c.attrs, c.in...)
			if err == nil {
				t.Fatalf("no error; output %v", y.Shape)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error spans lines: %q", err)
			}
		})
	}
}

// BenchmarkSTFT: one second of 16 kHz audio, 25 ms frames every 10 ms as
// torch.stft(n_fft=512, win_length=400, hop=160) exports them (512-point
// frames with the 400-point Hann window centred in them: 97 real FFTs of
// 512), then the same frames at frame_length 400 (Bluestein), run by a
// Session on 1 and 2 threads.
func BenchmarkSTFT(b *testing.B) {
	r := rand.New(rand.NewPCG(16, 17))
	sig := graph.Float32Tensor([]int{1, 16000, 1}, sigF32s(sigRand(r, 16000)))
	hann400 := make([]float64, 400)
	for k := range hann400 {
		hann400[k] = 0.5 - 0.5*math.Cos(2*math.Pi*float64(k)/400)
	}
	for _, c := range []struct {
		name string
		win  []float64
	}{{"frame512", sigHann400in512()}, {"frame400", hann400}} {
		for _, threads := range []int{1, 2} {
			b.Run(c.name+"/threads="+strconv.Itoa(threads), func(b *testing.B) {
				m := graph.NewModel(graph.Opset{Version: 17})
				g := m.Graph
				x := g.AddInput("x", graph.Float, []int64{1, 16000, 1})
				step := g.AddInitializer("step", sigI64(160))
				win := g.AddInitializer("win", graph.Float32Tensor([]int{len(c.win)}, sigF32s(c.win)))
				g.AddOutput(g.AddNode("STFT", "stft", []*graph.Value{x, step, win}, []string{"y"}).Output())
				s, err := NewSession(m, Options{Threads: threads})
				if err != nil {
					b.Fatal(err)
				}
				feed := map[string]*graph.Tensor{"x": sig}
				b.ReportAllocs()
				for i := 0; i < b.N; i++ {
					if _, err := s.Run(feed); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkFFTPlan: one transform of the audio frame lengths, complex and real.
func BenchmarkFFTPlan(b *testing.B) {
	for _, n := range []int{400, 512} {
		b.Run("n="+strconv.Itoa(n), func(b *testing.B) {
			p := newFFTPlan(n)
			x0 := sigRandComplex(rand.New(rand.NewPCG(1, 1)), n)
			x := make([]complex128, n)
			work := make([]complex128, p.scratch())
			for i := 0; i < b.N; i++ {
				copy(x, x0)
				p.transform(x, work, false)
			}
		})
		b.Run("real/n="+strconv.Itoa(n), func(b *testing.B) {
			p := newRFFTPlan(n)
			x0 := sigRandComplex(rand.New(rand.NewPCG(1, 1)), n)
			x := make([]complex128, n)
			work := make([]complex128, p.scratch())
			for i := 0; i < b.N; i++ {
				copy(x, x0)
				p.transform(x, work)
			}
		})
	}
}
