package vec

import "math"

// ErrorSums returns, over ref and test (test at least as long as ref), the
// float64 sums of ref^2, test^2, ref*test and (ref - test)^2, and the
// largest |ref - test| (NaN when a difference is NaN): the sums a
// comparison of two tensors takes (cosine, SQNR, MSE). The sums run in
// four lanes, lane j taking the values i with i%4 == j in order; then
// (l0 + l1) + (l2 + l3), then the last len%4 values in order. The AVX2
// loop and the Go loop follow that order, so they give the same bits (a
// float32 product is exact in float64; an error's square rounds the same
// in both).
func ErrorSums(ref, test []float32) (rr, tt, rt, e2, mx float64) {
	n := len(ref)
	test = test[:n]
	k := n &^ 3
	var l [errLanes]float64
	if simdLen(k) > 0 {
		errorSumsAsm(&ref[0], &test[0], k, &l)
	} else {
		errorSumsGo(ref[:k], test[:k], &l)
	}
	rr = (l[0] + l[1]) + (l[2] + l[3])
	tt = (l[4] + l[5]) + (l[6] + l[7])
	rt = (l[8] + l[9]) + (l[10] + l[11])
	e2 = (l[12] + l[13]) + (l[14] + l[15])
	mx = max(l[16], l[17], l[18], l[19])
	nan := l[20] != 0 || l[21] != 0 || l[22] != 0 || l[23] != 0
	for i := k; i < n; i++ {
		x, y := float64(ref[i]), float64(test[i])
		d := x - y
		rr += x * x
		tt += y * y
		rt += x * y
		e2 += d * d
		if a := math.Abs(d); a != a {
			nan = true
		} else {
			mx = max(mx, a)
		}
	}
	if nan {
		mx = math.NaN()
	}
	return rr, tt, rt, e2, mx
}

// errLanes is the lanes ErrorSums' loops leave: four each of ref^2,
// test^2, ref*test, error^2, the largest |error| and a NaN flag.
const errLanes = 24

// errorSumsGo is the AVX2 loop's lanes in Go, for n a multiple of 4.
func errorSumsGo(ref, test []float32, l *[errLanes]float64) {
	for i := 0; i+3 < len(ref); i += 4 {
		for j := 0; j < 4; j++ {
			x, y := float64(ref[i+j]), float64(test[i+j])
			d := x - y
			l[j] += x * x
			l[4+j] += y * y
			l[8+j] += x * y
			l[12+j] += d * d
			if a := math.Abs(d); a != a {
				l[20+j] = 1
			} else {
				l[16+j] = max(l[16+j], a)
			}
		}
	}
}
