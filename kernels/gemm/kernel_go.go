package gemm

import "os"

// portableKernel is the pure-Go micro-kernel (4 x 8), used where no SIMD kernel
// runs and tested on every machine.
var portableKernel = kernel{name: "go-4x8", mr: 4, nr: 8, fn: portableFn, gemv: portableGemv}

// portableGemv is kernel.gemv for portableFn's 8-wide panels, with its
// roundings: a product, then a sum.
func portableGemv(kc int, x, b []float32, panels int, y []float32, acc bool) {
	x = x[:kc]
	for q := 0; q < panels; q++ {
		var t [8]float32
		bq := b[q*kc*8 : (q+1)*kc*8]
		for p, xp := range x {
			bp := bq[p*8 : p*8+8 : p*8+8]
			for j := range t {
				t[j] += xp * bp[j]
			}
		}
		row := y[q*8 : q*8+8]
		if acc {
			for j := range row {
				row[j] += t[j]
			}
		} else {
			copy(row, t[:])
		}
	}
}

func portableFn(kc int, a, b, c []float32, ldc int, acc bool) {
	var t [4][8]float32
	a = a[:kc*4]
	b = b[:kc*8]
	for p := 0; p < kc; p++ {
		bp := b[p*8 : p*8+8 : p*8+8]
		ap := a[p*4 : p*4+4 : p*4+4]
		for i := 0; i < 4; i++ {
			ai := ap[i]
			ti := &t[i]
			ti[0] += ai * bp[0]
			ti[1] += ai * bp[1]
			ti[2] += ai * bp[2]
			ti[3] += ai * bp[3]
			ti[4] += ai * bp[4]
			ti[5] += ai * bp[5]
			ti[6] += ai * bp[6]
			ti[7] += ai * bp[7]
		}
	}
	for i := 0; i < 4; i++ {
		row := c[i*ldc : i*ldc+8]
		if acc {
			for j := range row {
				row[j] += t[i][j]
			}
		} else {
			copy(row, t[i][:])
		}
	}
}

func init() {
	ks := kernels()
	active = ks[0]
	// ONNXQ_GEMM_KERNEL=avx2|go forces a slower kernel, for comparisons.
	if want := os.Getenv("ONNXQ_GEMM_KERNEL"); want != "" {
		for _, k := range ks {
			if len(k.name) >= len(want) && k.name[:len(want)] == want {
				active = k
			}
		}
	}
}
