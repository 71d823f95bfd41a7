package vec

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
	"time"
)

// TestTapRowsMatchesPasses checks TapRows bit for bit against its definition
// run as separate passes (bias, one Axpy per tap on each row, Affine, Clip),
// with and without AVX2: column strides 1 and 2, widths around the 8- and
// 32-column groups and below 8 (whose stores run into the next row), row
// counts around the groups of 4 (the last overlapping the one before), 1 to
// 25 taps at random offsets, with and without an epilogue, NaN and infinities.
func TestTapRowsMatchesPasses(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	paths, restore := isaPaths(&useSIMD)
	defer restore()
	eps := []Epilogue{NoEpilogue(), {Mul: 0.75, Add: -0.125, Lo: 0, Hi: 6}, {Mul: -1.5, Add: 0.5, Lo: float32(math.Inf(-1)), Hi: 1}}
	for _, sx := range []int{1, 2} {
		for _, cols := range []int{1, 2, 5, 7, 8, 9, 14, 15, 16, 17, 28, 31, 32, 33, 47, 48, 56, 71} {
			for _, rows := range []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 13} {
				for _, taps := range []int{1, 2, 9, 25} {
					srcRow := sx*max(cols, 8) + r.IntN(5)
					src := make([]float32, (rows+2)*srcRow+50)
					for i := range src {
						src[i] = float32(r.NormFloat64())
						if r.IntN(60) == 0 {
							src[i] = []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.Copysign(0, -1))}[r.IntN(4)]
						}
					}
					offs, w := make([]int, taps), make([]float32, taps)
					for i := range offs {
						offs[i], w[i] = r.IntN(41), float32(r.NormFloat64())
					}
					if taps == 9 && r.IntN(2) == 0 { // a 3x3 kernel one source row a row (tapRows3AVX512)
						base := r.IntN(5)
						for i := range offs {
							offs[i] = base + i/3*srcRow + i%3
						}
					}
					ep := eps[r.IntN(len(eps))]
					bias := float32(r.NormFloat64())
					want := make([]float32, rows*cols)
					row := make([]float32, cols)
					xs := make([]float32, cols)
					for y := 0; y < rows; y++ {
						for c := range row {
							row[c] = bias
						}
						for i, o := range offs {
							for c := range xs {
								xs[c] = src[o+y*srcRow+sx*c]
							}
							Axpy(row, xs, w[i])
						}
						if ep != NoEpilogue() {
							Affine(row, row, ep.Mul, ep.Add)
							Clip(row, row, ep.Lo, ep.Hi)
						}
						copy(want[y*cols:], row)
					}
					for _, path := range paths {
						simd := path.name
						path.use()
						got := make([]float32, rows*cols+3)
						for i := range got {
							got[i] = 12345 // stale values must be overwritten, and nothing past the outputs
						}
						if err := TapRows(got[:rows*cols], src, offs, w, bias, rows, cols, srcRow, sx, ep); err != nil {
							t.Fatal(err)
						}
						for i := range want {
							if math.Float32bits(got[i]) != math.Float32bits(want[i]) && !(got[i] != got[i] && want[i] != want[i]) {
								t.Fatalf("sx=%d %dx%d taps=%d ep=%+v %s [%d]: got %v, want %v", sx, rows, cols, taps, ep, simd, i, got[i], want[i])
							}
						}
						for i := rows * cols; i < len(got); i++ {
							if got[i] != 12345 {
								t.Fatalf("sx=%d %dx%d %s: wrote past the outputs at %d", sx, rows, cols, simd, i)
							}
						}
						// With room past the outputs (which it may then overwrite).
						long := make([]float32, rows*cols+8)
						if err := TapRows(long, src, offs, w, bias, rows, cols, srcRow, sx, ep); err != nil {
							t.Fatal(err)
						}
						for i := range want {
							if math.Float32bits(long[i]) != math.Float32bits(want[i]) && !(long[i] != long[i] && want[i] != want[i]) {
								t.Fatalf("sx=%d %dx%d taps=%d %s, room past the outputs [%d]: got %v, want %v", sx, rows, cols, taps, simd, i, long[i], want[i])
							}
						}
					}
					restore()
				}
			}
		}
	}
}

// TestNoEpilogueKeepsBits checks that the identity epilogue keeps -0, NaN and
// the infinities as they are.
func TestNoEpilogueKeepsBits(t *testing.T) {
	ep := NoEpilogue()
	for _, v := range []float32{float32(math.Copysign(0, -1)), 0, float32(math.Inf(1)), float32(math.Inf(-1)), 1e-45, -3.5} {
		if got := ep.apply(v); math.Float32bits(got) != math.Float32bits(v) {
			t.Errorf("NoEpilogue(%v) = %v", v, got)
		}
	}
	if got := ep.apply(float32(math.NaN())); got == got {
		t.Errorf("NoEpilogue(NaN) = %v", got)
	}
}

func TestTapRowsRejectsBadInput(t *testing.T) {
	dst, src := make([]float32, 16), make([]float32, 20)
	for _, tc := range []struct {
		offs       []int
		w          []float32
		rows, cols int
		sx         int
		msg        string
	}{
		{[]int{0}, []float32{1, 2}, 1, 8, 1, "offsets for"},
		{[]int{0}, []float32{1}, 1, 8, 3, "column stride"},
		{[]int{0}, []float32{1}, 3, 8, 1, "outputs"},
		{[]int{13}, []float32{1}, 1, 8, 1, "reads past"},
		{[]int{0}, []float32{1}, 1, 4, 2, ""},           // 16 floats read for 4 stride-2 columns: fits
		{[]int{5}, []float32{1}, 1, 4, 2, "reads past"}, // 5+16 > 20
	} {
		err := TapRows(dst, src, tc.offs, tc.w, 0, tc.rows, tc.cols, 8, tc.sx, NoEpilogue())
		if tc.msg == "" && err != nil || tc.msg != "" && (err == nil || !strings.Contains(err.Error(), tc.msg)) {
			t.Errorf("%+v: got %v, want %q", tc, err, tc.msg)
		}
	}
}

// TestCopyRows checks CopyRows against a copy per row, with and without
// AVX2, and that the floats between the rows stay as they were.
func TestCopyRows(t *testing.T) {
	saved := useSIMD
	defer func() { useSIMD = saved }()
	for _, cols := range []int{1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 33, 112} {
		for _, rows := range []int{1, 2, 5} {
			srcRow, dstRow := cols+3, cols+2
			src := make([]float32, rows*srcRow)
			for i := range src {
				src[i] = float32(i + 1)
			}
			for _, simd := range []bool{false, saved} {
				useSIMD = simd
				dst := make([]float32, rows*dstRow+1)
				for i := range dst {
					dst[i] = -1
				}
				if err := CopyRows(dst, dstRow, src, srcRow, rows, cols); err != nil {
					t.Fatal(err)
				}
				for i, v := range dst {
					r, c := i/dstRow, i%dstRow
					want := float32(-1)
					if r < rows && c < cols {
						want = src[r*srcRow+c]
					}
					if v != want {
						t.Fatalf("%dx%d simd=%v: dst[%d] = %v, want %v", rows, cols, simd, i, v, want)
					}
				}
			}
		}
	}
	if err := CopyRows(make([]float32, 10), 5, make([]float32, 20), 8, 2, 6); err == nil {
		t.Error("rows of 6 into rows 5 apart: no error")
	}
}

// TestEpilogueApplyMatchesPasses checks Epilogue.Apply against Affine then
// Clip bit for bit, with and without AVX2, on lengths around the 8- and
// 32-float steps, NaN, infinities and -0 included.
func TestEpilogueApplyMatchesPasses(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	saved := useSIMD
	defer func() { useSIMD = saved }()
	for _, n := range []int{0, 1, 7, 8, 9, 31, 32, 33, 100} {
		x := make([]float32, n)
		for i := range x {
			x[i] = 4 * float32(r.NormFloat64())
			if r.IntN(10) == 0 {
				x[i] = []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.Copysign(0, -1))}[r.IntN(4)]
			}
		}
		for _, ep := range []Epilogue{NoEpilogue(), {Mul: 0.75, Add: -0.125, Lo: 0, Hi: 6}, {Mul: -2, Add: 0, Lo: -1, Hi: float32(math.Inf(1))}} {
			want := append([]float32(nil), x...)
			Affine(want, want, ep.Mul, ep.Add)
			Clip(want, want, ep.Lo, ep.Hi)
			if ep == NoEpilogue() {
				copy(want, x)
			}
			for _, simd := range []bool{false, saved} {
				useSIMD = simd
				got := append([]float32(nil), x...)
				ep.Apply(got)
				for i := range want {
					if math.Float32bits(got[i]) != math.Float32bits(want[i]) && !(got[i] != got[i] && want[i] != want[i]) {
						t.Fatalf("n=%d ep=%+v simd=%v [%d]: %v -> %v, want %v", n, ep, simd, i, x[i], got[i], want[i])
					}
				}
			}
		}
	}
}

// TestSplitRows checks SplitRows against its definition, with and without
// AVX2, on widths around the 16-float step, and that nothing between or
// after the rows' halves is written.
func TestSplitRows(t *testing.T) {
	saved := useSIMD
	defer func() { useSIMD = saved }()
	for _, cols := range []int{1, 2, 3, 15, 16, 17, 31, 32, 33, 112} {
		for _, rows := range []int{1, 3} {
			srcRow, dstRow := cols+1, (cols+1)/2+3
			src := make([]float32, rows*srcRow)
			for i := range src {
				src[i] = float32(i + 1)
			}
			for _, simd := range []bool{false, saved} {
				useSIMD = simd
				buf := make([]float32, 2*rows*dstRow+4)
				for i := range buf {
					buf[i] = -1
				}
				off := rows*dstRow + 2 // b starts here
				if err := SplitRows(buf, buf[off:], dstRow, src, srcRow, rows, cols); err != nil {
					t.Fatal(err)
				}
				want := make([]float32, len(buf))
				for i := range want {
					want[i] = -1
				}
				for r := 0; r < rows; r++ {
					for x := 0; x < cols; x++ {
						at := r*dstRow + x/2
						if x%2 == 1 {
							at += off
						}
						want[at] = src[r*srcRow+x]
					}
				}
				for i := range want {
					if buf[i] != want[i] {
						t.Fatalf("%dx%d simd=%v: buf[%d] = %v, want %v", rows, cols, simd, i, buf[i], want[i])
					}
				}
			}
		}
	}
	if err := SplitRows(make([]float32, 4), make([]float32, 4), 4, make([]float32, 20), 10, 2, 10); err == nil {
		t.Error("5 even columns into rows 4 apart: no error")
	}
}

// BenchmarkTapRows is one depthwise channel's 3x3 taps at stride 1 over a
// padded plane (hw x hw outputs), as depthwiseRows calls it, alternating
// call by call between the 3x3 kernel (tapRows3AVX512, where the machine
// has AVX-512) and the generic one: median MAC/ns of each.
func BenchmarkTapRows(b *testing.B) {
	for _, hw := range []int{13, 26, 52, 56, 104} {
		b.Run(fmt.Sprint(hw), func(b *testing.B) {
			rs := hw + 2
			src := make([]float32, (hw+2)*rs+16)
			for i := range src {
				src[i] = float32(i%7) - 3
			}
			var offs []int
			for ki := 0; ki < 3; ki++ {
				for kj := 0; kj < 3; kj++ {
					offs = append(offs, ki*rs+kj)
				}
			}
			w := []float32{1, 2, 3, 4, 5, 6, 7, 8, 9}
			dst := make([]float32, hw*hw)
			ep := Epilogue{Mul: 1, Lo: float32(math.Inf(-1)), Hi: float32(math.Inf(1))}
			defer func() { noTapRows3 = false }()
			var ns [2][]float64
			for i := 0; i < b.N; i++ {
				for path := range 2 {
					noTapRows3 = path == 1
					t0 := time.Now()
					for range 20 {
						if err := TapRows(dst, src, offs, w, 0.5, hw, hw, rs, 1, ep); err != nil {
							b.Fatal(err)
						}
					}
					ns[path] = append(ns[path], float64(time.Since(t0).Nanoseconds())/20)
				}
			}
			for path, name := range []string{"MAC/ns-3x3", "MAC/ns-generic"} {
				sort.Float64s(ns[path])
				b.ReportMetric(float64(9*hw*hw)/ns[path][len(ns[path])/2], name)
			}
		})
	}
}
