package vec

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestC8TapsMatchesPasses checks Interleave and Run bit for bit against
// their definition run as separate passes per channel (bias, one Axpy per
// tap, Affine, Clip), with and without AVX2: position counts below, at and
// around the groups of 8 (the last overlapping the one before), 1 to 8
// channels, 1 to 25 taps at random offsets, lane epilogues that differ (or none), NaN
// and infinities; nothing outside the outputs is written.
func TestC8TapsMatchesPasses(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	saved := useSIMD
	defer func() { useSIMD = saved }()
	eps := []Epilogue{NoEpilogue(), {Mul: 0.75, Add: -0.125, Lo: 0, Hi: 6}, {Mul: -1.5, Add: 0.5, Lo: float32(math.Inf(-1)), Hi: 1}}
	saved16 := hasC8x16
	defer func() { hasC8x16 = saved16 }()
	// Positions at random, then (rows > 0) in rows of 16 or more whose
	// first taps are consecutive, as a stride-1 convolution's: AVX-512's
	// runs of 16.
	for _, n := range []int{1, 2, 5, 7, 8, 9, 15, 16, 17, 49, 196, -1, -2, -3} {
		rows, rl := 0, 0
		if n < 0 {
			rows, rl = -n, 16+r.IntN(30)
			n = rows * rl
		}
		for _, taps := range []int{1, 2, 9, 25} {
			nch := 1 + r.IntN(8)
			nin := 1 + r.IntN(60)
			vecs := nin + 40 + r.IntN(20) + rl
			// Input positions: distinct places in the padded map.
			in := r.Perm(vecs)[:nin]
			base, offs := make([]int, n), make([]int, taps)
			for i := range offs {
				offs[i] = r.IntN(20)
			}
			for i := range base {
				base[i] = r.IntN(vecs - 20)
			}
			for k := 0; k < rows; k++ {
				start := r.IntN(vecs - 20 - rl + 1)
				for j := 0; j < rl; j++ {
					base[k*rl+j] = start + j
				}
			}
			plane := nin + r.IntN(3)
			src := make([]float32, 8*plane+5)
			for i := range src {
				src[i] = float32(r.NormFloat64())
				if r.IntN(60) == 0 {
					src[i] = []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.Copysign(0, -1))}[r.IntN(4)]
				}
			}
			var chans [8]int
			for l := range chans {
				chans[l] = r.IntN(8*plane - nin + 1)
			}
			w := make([]float32, 8*taps)
			for i := range w {
				w[i] = float32(r.NormFloat64())
			}
			bias := make([]float32, 8)
			// A nil epilogue (none) a third of the time.
			var ep Epilogue8
			epp := &ep
			noEp := r.IntN(3) == 0
			if noEp {
				epp = nil
			}
			for l := range bias {
				bias[l] = float32(r.NormFloat64())
				ep.Set(l, eps[r.IntN(len(eps))])
				if noEp {
					ep.Set(l, NoEpilogue())
				}
			}
			// The padded map by definition: padding positions hold
			// something recognisable that Interleave must leave alone.
			wantMap := make([]float32, 8*vecs)
			for i := range wantMap {
				wantMap[i] = -7
			}
			for q, p := range in {
				for l, c := range chans {
					wantMap[p*8+l] = src[c+q]
				}
			}
			stride := n + r.IntN(4)
			want := make([]float32, 8*stride)
			for i := range want {
				want[i] = 99
			}
			row, xs := make([]float32, n), make([]float32, n)
			for l := range nch {
				for p := range row {
					row[p] = bias[l]
				}
				for i, o := range offs {
					for p, b := range base {
						xs[p] = wantMap[(b+o)*8+l]
					}
					Axpy(row, xs, w[i*8+l])
				}
				Affine(row, row, ep.Mul[l], ep.Add[l])
				Clip(row, row, ep.Lo[l], ep.Hi[l])
				copy(want[l*stride:], row)
			}
			tt, err := NewC8Taps(vecs, in, base, offs)
			if err != nil {
				t.Fatal(err)
			}
			for _, mode := range [][2]bool{{false, false}, {saved, false}, {saved, saved16}} {
				simd := mode[0]
				useSIMD, hasC8x16 = mode[0], mode[1]
				m := make([]float32, 8*vecs)
				for i := range m {
					m[i] = -7
				}
				if err := tt.Interleave(m, src, &chans); err != nil {
					t.Fatal(err)
				}
				for i := range m {
					if math.Float32bits(m[i]) != math.Float32bits(wantMap[i]) {
						t.Fatalf("simd=%v n=%d: map[%d] = %v, want %v", simd, nin, i, m[i], wantMap[i])
					}
				}
				got := make([]float32, 8*stride)
				for i := range got {
					got[i] = 99
				}
				if err := tt.Run(got, stride, m, w, bias, epp, nch); err != nil {
					t.Fatal(err)
				}
				for i := range got {
					if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
						t.Fatalf("simd=%v avx512=%v rows=%d n=%d taps=%d nch=%d: out[%d] (channel %d, position %d) = %v, want %v", simd, mode[1], rows, n, taps, nch, i, i/stride, i%stride, got[i], want[i])
					}
				}
			}
		}
	}
}

// TestC8TapsRejects checks that tables and buffers that do not fit are
// errors, not reads or writes out of bounds.
func TestC8TapsRejects(t *testing.T) {
	if _, err := NewC8Taps(10, []int{3, 10}, nil, nil); err == nil || !strings.Contains(err.Error(), "outside") {
		t.Fatalf("input position past the map: %v", err)
	}
	if _, err := NewC8Taps(10, nil, []int{0, 5}, []int{0, 5}); err == nil || !strings.Contains(err.Error(), "read positions 0 to 10") {
		t.Fatalf("tap past the map: %v", err)
	}
	if _, err := NewC8Taps(10, nil, []int{2}, []int{-3}); err == nil {
		t.Fatal("tap before the map: no error")
	}
	tt, err := NewC8Taps(4, []int{0, 1, 2}, []int{0, 1}, []int{0, 2})
	if err != nil {
		t.Fatal(err)
	}
	var chans [8]int
	chans[7] = 2
	if err := tt.Interleave(make([]float32, 32), make([]float32, 4), &chans); err == nil {
		t.Fatal("plane past the source: no error")
	}
	if err := tt.Interleave(make([]float32, 31), make([]float32, 8), &[8]int{}); err == nil {
		t.Fatal("short map: no error")
	}
	w, b, ep := make([]float32, 16), make([]float32, 8), new(Epilogue8)
	if err := tt.Run(make([]float32, 2*3+1), 3, make([]float32, 32), w, b, ep, 3); err == nil {
		t.Fatal("short output: no error")
	}
	if err := tt.Run(make([]float32, 100), 3, make([]float32, 32), w[:8], b, ep, 3); err == nil {
		t.Fatal("weights for one tap of two: no error")
	}
	if err := tt.Run(make([]float32, 100), 3, make([]float32, 32), w, b, ep, 9); err == nil {
		t.Fatal("9 channels: no error")
	}
	if err := tt.Run(make([]float32, 100), 1, make([]float32, 32), w, b, ep, 2); err == nil {
		t.Fatal("channels overlapping: no error")
	}
}
