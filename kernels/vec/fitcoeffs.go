//go:build ignore

// fitcoeffs derives the polynomial coefficients of the float32 transcendentals
// (run: go run fitcoeffs.go > coeffs.go). Each polynomial is a weighted minimax
// fit found by the Remez exchange algorithm in float64; the coefficients are
// then rounded to float32 one at a time, lowest order first, refitting the
// higher ones after each rounding so they absorb its error.
package main

import (
	"fmt"
	"math"
	"os"
	"sort"
)

// fit describes one approximation: target(x) ~ sum c[j] * x^(first+j) for j <= deg,
// with the error measured as weight(x) * (approx - target).
type fit struct {
	name          string
	lo, hi        float64
	center        float64 // the polynomial is in x - center
	first, deg    int
	target        func(float64) float64
	weight        func(float64) float64
	note          string
	fixed         map[int]float64 // coefficients already rounded to float32
	coeffs        []float64
	maxErr        float64
	float32MaxErr float64
}

func (f *fit) basis(x float64, j int) float64 { return math.Pow(x-f.center, float64(f.first+j)) }

// eval is the fitted polynomial with all coefficients.
func (f *fit) eval(c []float64, x float64) float64 {
	v := x - f.center
	s := 0.0
	for j := len(c) - 1; j >= 0; j-- {
		s = s*v + c[j]
	}
	return s * math.Pow(v, float64(f.first))
}

// remez fits the free coefficients (those not in f.fixed) and returns all of
// them and the weighted maximum error.
func (f *fit) remez() ([]float64, float64) {
	var freeIdx []int
	for j := 0; j <= f.deg; j++ {
		if _, ok := f.fixed[j]; !ok {
			freeIdx = append(freeIdx, j)
		}
	}
	free := len(freeIdx)
	npts := free + 1
	// Residual target after the fixed part.
	resid := func(x float64) float64 {
		s := f.target(x)
		for j, c := range f.fixed {
			s -= c * f.basis(x, j)
		}
		return s
	}
	ref := make([]float64, npts)
	for i := range ref {
		ref[i] = (f.lo+f.hi)/2 - (f.hi-f.lo)/2*math.Cos(math.Pi*float64(i)/float64(npts-1))
	}
	grid := make([]float64, 20001)
	for i := range grid {
		// Chebyshev-spaced grid resolves the ends well.
		grid[i] = (f.lo+f.hi)/2 - (f.hi-f.lo)/2*math.Cos(math.Pi*float64(i)/float64(len(grid)-1))
	}
	var c []float64
	var best float64
	for iter := 0; iter < 40; iter++ {
		// Solve sum_j c_j b_j(x_i) + (-1)^i E / w(x_i) = resid(x_i).
		a := make([][]float64, npts)
		for i, x := range ref {
			row := make([]float64, npts+1)
			for k, j := range freeIdx {
				row[k] = f.basis(x, j)
			}
			sgn := 1.0
			if i%2 == 1 {
				sgn = -1
			}
			row[free] = sgn / f.weight(x)
			row[npts] = resid(x)
			a[i] = row
		}
		sol := solve(a)
		c = make([]float64, f.deg+1)
		for j, v := range f.fixed {
			c[j] = v
		}
		for k, j := range freeIdx {
			c[j] = sol[k]
		}
		errAt := func(x float64) float64 { return f.weight(x) * (f.eval(c, x) - f.target(x)) }
		// Local extrema of the error on the grid, then an alternating set of npts.
		type ext struct{ x, e float64 }
		var exts []ext
		for i := range grid {
			e := errAt(grid[i])
			l, r := math.Inf(-1), math.Inf(-1)
			if i > 0 {
				l = math.Abs(errAt(grid[i-1]))
			}
			if i < len(grid)-1 {
				r = math.Abs(errAt(grid[i+1]))
			}
			if math.Abs(e) >= l && math.Abs(e) >= r {
				exts = append(exts, ext{grid[i], e})
			}
		}
		// Merge runs of the same sign, keeping the largest.
		var alt []ext
		for _, e := range exts {
			if len(alt) > 0 && (alt[len(alt)-1].e > 0) == (e.e > 0) {
				if math.Abs(e.e) > math.Abs(alt[len(alt)-1].e) {
					alt[len(alt)-1] = e
				}
				continue
			}
			alt = append(alt, e)
		}
		// Drop the smaller end while there are too many.
		for len(alt) > npts {
			if math.Abs(alt[0].e) < math.Abs(alt[len(alt)-1].e) {
				alt = alt[1:]
			} else {
				alt = alt[:len(alt)-1]
			}
		}
		best = 0
		for _, e := range alt {
			best = math.Max(best, math.Abs(e.e))
		}
		if len(alt) < npts {
			break // degenerate: keep the current solution
		}
		for i := range ref {
			ref[i] = alt[i].x
		}
		sort.Float64s(ref)
	}
	return c, best
}

// solve is Gaussian elimination with partial pivoting on an augmented matrix.
func solve(a [][]float64) []float64 {
	n := len(a)
	for k := 0; k < n; k++ {
		p := k
		for i := k + 1; i < n; i++ {
			if math.Abs(a[i][k]) > math.Abs(a[p][k]) {
				p = i
			}
		}
		a[k], a[p] = a[p], a[k]
		for i := k + 1; i < n; i++ {
			m := a[i][k] / a[k][k]
			for j := k; j <= n; j++ {
				a[i][j] -= m * a[k][j]
			}
		}
	}
	x := make([]float64, n)
	for i := n - 1; i >= 0; i-- {
		s := a[i][n]
		for j := i + 1; j < n; j++ {
			s -= a[i][j] * x[j]
		}
		x[i] = s / a[i][i]
	}
	return x
}

func (f *fit) run() {
	var all []float64
	all, f.maxErr = f.remez()
	// Round one coefficient at a time and refit the others to absorb it. A
	// polynomial in x - center rounds its constant term last: no other term
	// can absorb an error at x = center.
	order := make([]int, 0, f.deg+1)
	for j := 0; j <= f.deg; j++ {
		if f.center == 0 || j > 0 {
			order = append(order, j)
		}
	}
	if f.center != 0 {
		order = append(order, 0)
	}
	f.fixed = map[int]float64{}
	cur := all
	for _, j := range order {
		// A refit that the exchange could not converge (error far above the
		// optimum) is dropped: the coefficients so far are rounded instead.
		if c, e := f.remez(); e <= 4*f.maxErr {
			cur = c
		}
		if os.Getenv("FITDEBUG") != "" { // progress of the one-at-a-time rounding
			fmt.Fprintf(os.Stderr, "%s rounding %d: %v\n", f.name, j, cur)
		}
		f.fixed[j] = float64(float32(cur[j]))
	}
	seq := make([]float64, f.deg+1)
	for j, v := range f.fixed {
		seq[j] = v
	}
	// The refits may lose to plain rounding when the last free coefficients
	// cannot absorb much: keep whichever is better.
	rounded := make([]float64, len(all))
	for j, c := range all {
		rounded[j] = float64(float32(c))
	}
	f.coeffs, f.float32MaxErr = seq, f.gridErr(seq)
	if e := f.gridErr(rounded); e < f.float32MaxErr || math.IsNaN(f.float32MaxErr) {
		f.coeffs, f.float32MaxErr = rounded, e
	}
}

func (f *fit) gridErr(c []float64) float64 {
	m := 0.0
	for i := 0; i <= 200000; i++ {
		x := f.lo + (f.hi-f.lo)*float64(i)/200000
		m = math.Max(m, math.Abs(f.weight(x)*(f.eval(c, x)-f.target(x))))
	}
	return m
}

func one(float64) float64 { return 1 }

func main() {
	ln2 := math.Ln2
	fits := []*fit{
		// exp(r) - 1 = r + r^2 * P(r) on the Cody-Waite interval, relative to exp(r)
		// (what exp needs) while keeping expm1's relative error small near 0.
		{name: "expm1", lo: -ln2 / 2, hi: ln2 / 2, first: 2, deg: 4,
			target: func(r float64) float64 { return math.Expm1(r) - r },
			weight: func(r float64) float64 { return 1 / math.Max(math.Abs(math.Expm1(r)), 1e-300) },
			note:   "expm1(r) = r + r^2*P(r), |r| <= ln2/2; weight 1/|expm1(r)|"},
		// log(1+f) = f - f^2/2 + f^3 * P(f) for the mantissa 1+f in [sqrt(1/2), sqrt(2)).
		{name: "log1p", lo: math.Sqrt(0.5) - 1, hi: math.Sqrt(2) - 1, first: 3, deg: 8,
			target: func(f float64) float64 { return math.Log1p(f) - f + f*f/2 },
			weight: func(f float64) float64 { return 1 / math.Max(math.Abs(math.Log1p(f)), 1e-300) },
			note:   "log(1+f) = f - f^2/2 + f^3*P(f), f in [sqrt(1/2)-1, sqrt(2)-1]; relative weight"},
		// erf(x) = x + x * P(x^2) for |x| < 0.921875 (the x term exact, so the
		// leading coefficient's rounding costs nothing near 0).
		{name: "erfSmall", lo: 0, hi: 0.921875 * 0.921875, first: 0, deg: 6,
			target: func(s float64) float64 {
				if s == 0 {
					return 2/math.SqrtPi - 1
				}
				return math.Erf(math.Sqrt(s))/math.Sqrt(s) - 1
			},
			weight: func(s float64) float64 {
				if s == 0 {
					return math.SqrtPi / 2
				}
				return math.Sqrt(s) / math.Erf(math.Sqrt(s))
			},
			note: "erf(x) = x + x*P(x^2), |x| <= 0.921875; relative weight"},
		// log(erfc(t)) + t^2 for t in [0.921875, 6]: erfc = exp(P(t) - t^2), with
		// t^2 split exactly so that the large exponent carries no rounding. The
		// error is absolute in P, so relative in erfc: 1 - erfc (erf) and erfc
		// itself (Gelu's negative tail) are both accurate. P is in t - 3.4609375
		// (the middle), which keeps Horner's partial sums, and their rounding, small.
		{name: "logErfc", lo: 0.921875, hi: 6, center: 3.4609375, first: 0, deg: 11,
			target: func(t float64) float64 { return math.Log(math.Erfc(t)) + t*t },
			weight: one,
			note:   "log(erfc(t)) + t^2 = P(t - 3.4609375), t in [0.921875, 6]; absolute error in P (relative in erfc)"},
	}
	for _, f := range fits {
		f.run()
		fmt.Fprintf(os.Stderr, "%-9s deg %d: minimax weighted error %.3g, with float32 coefficients %.3g\n", f.name, f.deg, f.maxErr, f.float32MaxErr)
	}
	fmt.Println("// Code generated by fitcoeffs.go (go run fitcoeffs.go > coeffs.go). DO NOT EDIT.")
	fmt.Println()
	fmt.Println("package vec")
	for _, f := range fits {
		fmt.Printf("\n// %s: %s.\n// Weighted minimax error %.3g (float64 fit), %.3g with these float32 coefficients.\nconst (\n", f.name, f.note, f.maxErr, f.float32MaxErr)
		for j, c := range f.coeffs {
			fmt.Printf("\t%s%d = %s // %.9g\n", f.name, f.first+j, hex32(float32(c)), c)
		}
		fmt.Println(")")
	}
}

// hex32 writes a float32 as an exact hexadecimal literal.
func hex32(v float32) string {
	return fmt.Sprintf("%x", float64(v))
}
