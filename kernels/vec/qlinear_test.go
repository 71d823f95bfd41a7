package vec

import (
	"math"
	"math/big"
	"math/rand/v2"
	"testing"
)

// fma32Exact is x*y + z rounded once to float32, by big.Float.
func fma32Exact(x, y, z float32) float32 {
	p := new(big.Float).SetPrec(200).Mul(big.NewFloat(float64(x)), big.NewFloat(float64(y)))
	p.Add(p, big.NewFloat(float64(z)))
	f, _ := p.Float32()
	return f
}

// TestFMA32MatchesExact holds FMA32 to the exactly rounded x*y + z on
// random operands and on sums built to land on float32 halfway points
// with a tiny remainder either side (where rounding the float64 sum again
// errs).
func TestFMA32MatchesExact(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 9))
	check := func(x, y, z float32) {
		t.Helper()
		if got, want := FMA32(x, y, z), fma32Exact(x, y, z); got != want && !(math.IsNaN(float64(got)) && math.IsNaN(float64(want))) {
			t.Fatalf("FMA32(%g, %g, %g) = %g, want %g", x, y, z, got, want)
		}
	}
	for range 200000 {
		x := float32(r.NormFloat64() * math.Pow(2, float64(r.IntN(20)-10)))
		y := float32(r.NormFloat64())
		z := float32(r.NormFloat64() * math.Pow(2, float64(r.IntN(40)-20)))
		check(x, y, z)
	}
	// Halfway cases: x*y = 2^-24 (1 +- 2^-18)(1 -+ 2^-18) = 2^-24 - 2^-60
	// (exact in float64) added to z = 1 + m 2^-23 gives a float64 sum on
	// the float32 halfway point 1 + (2m+1) 2^-24, 2^-60 below the true
	// value: rounding it again picks the even neighbour, once the wrong
	// one for every other m. Scaled by powers of two and both signs.
	halfway := 0
	for m := range 64 {
		for e := -20; e <= 20; e += 5 {
			sc := float32(math.Ldexp(1, e))
			x := float32(1+math.Ldexp(1, -18)) * sc
			y := float32(math.Ldexp(1-math.Ldexp(1, -18), -24))
			z := float32(1+math.Ldexp(float64(m), -23)) * sc
			if math.Float64bits(float64(x)*float64(y)+float64(z))&(1<<29-1) == 1<<28 {
				halfway++
			}
			check(x, y, z)
			check(-x, y, -z)
		}
	}
	t.Logf("%d sums on a float32 halfway point", halfway)
}

// qlAddRef is QLinearAdd8's definition for one pair, through FMA32.
func qlAddRef(x, y, rx, ry, fixed, lo, hi float32) int32 {
	v := FMA32(x, rx, FMA32(y, ry, fixed))
	return int32(max(float64(lo), min(float64(hi), math.RoundToEven(float64(v)))))
}

// TestQLinearAdd8AndMul8 hold the AVX-512 loops and the scalar ones to the
// definitions over all 65536 code pairs, for uint8 and int8, y read as a
// run and as one value, under scale sets that make ties.
func TestQLinearAdd8AndMul8(t *testing.T) {
	wide := quantWide
	defer func() { quantWide = wide }()
	scales := [][3]float32{{0.02, 0.02, 0.04}, {0.0173, 0.0031, 0.011}, {0.5, 0.25, 1}, {0.1, 0.3, 0.05}}
	for _, path := range []string{"avx512", "scalar"} {
		quantWide = path == "avx512" && wide
		for _, sc := range scales {
			checkQL[uint8](t, path, sc, 128, 3, 131, 0, 255)
			checkQL[int8](t, path, sc, -2, 5, 0, -128, 127)
		}
	}
}

// checkQL runs every pair of codes of T through QLinearAdd8 and
// QLinearMul8 (zero points za, zb, zc; output range [lo, hi]).
func checkQL[T uint8 | int8](t *testing.T, path string, sc [3]float32, za, zb, zc int32, lo, hi float32) {
	t.Helper()
	ra, rb := sc[0]/sc[2], sc[1]/sc[2]
	fixed := float32(zc) - FMA32(ra, float32(za), rb*float32(zb))
	ratio := sc[0] * sc[1] / sc[2]
	x := make([]T, 256)
	for i := range x {
		x[i] = T(i)
	}
	add, mul := make([]T, 256), make([]T, 256)
	for j := range 256 {
		y := make([]T, 256)
		for i := range y {
			y[i] = T(j)
		}
		for _, ystep := range []int{1, 0} {
			QLinearAdd8(add, x, y, ystep, ra, rb, fixed, lo, hi)
			QLinearMul8(mul, x, y, ystep, za, zb, ratio, float32(zc), lo, hi)
			for i := range x {
				if want := qlAddRef(float32(x[i]), float32(y[i]), ra, rb, fixed, lo, hi); int32(add[i]) != want {
					t.Fatalf("%s %T scales %v ystep %d: add(%d, %d) = %d, want %d", path, x[i], sc, ystep, x[i], y[i], add[i], want)
				}
				p := (int32(x[i]) - za) * (int32(y[i]) - zb)
				v := float32(float32(p)*ratio) + float32(zc)
				if want := int32(max(float64(lo), min(float64(hi), math.RoundToEven(float64(v))))); int32(mul[i]) != want {
					t.Fatalf("%s %T scales %v ystep %d: mul(%d, %d) = %d, want %d", path, x[i], sc, ystep, x[i], y[i], mul[i], want)
				}
			}
		}
	}
}

// TestLookup8 holds the VBMI loop to the byte loop over every code, at
// lengths around its 64-byte step and mask, with a table whose halves
// differ (the top bit picks the half).
func TestLookup8(t *testing.T) {
	saved := useLookupVBMI
	defer func() { useLookupVBMI = saved }()
	r := rand.New(rand.NewPCG(4, 2))
	var table [256]byte
	for i := range table {
		table[i] = byte(r.IntN(256))
	}
	for _, n := range []int{0, 1, 63, 64, 65, 127, 256, 1000} {
		src := make([]byte, n)
		for i := range src {
			src[i] = byte(i*7 + r.IntN(3))
		}
		got, want := make([]byte, n+1), make([]byte, n+1)
		got[n], want[n] = 0x5a, 0x5a
		useLookupVBMI = saved
		Lookup8(got[:n], src, &table)
		useLookupVBMI = false
		Lookup8(want[:n], src, &table)
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("n %d: byte %d is %d, want %d", n, i, got[i], want[i])
			}
		}
	}
}
