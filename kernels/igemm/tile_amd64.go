//go:build amd64 && !purego

package igemm

import "golang.org/x/sys/cpu"

// useVNNI: the tile in assembly needs AVX-512 F, BW and VNNI.
var useVNNI = cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW && cpu.X86.HasAVX512VNNI

// Available reports whether Mul runs the VNNI tile here.
func Available() bool { return useVNNI }

// tileVNNI is tileGo in AVX-512 VNNI: 6 rows x 32 columns in twelve
// accumulators, each group of four K values one VPDPBUSD per register;
// the rows of out are ldo apart.
//
//go:noescape
func tileVNNI(a *uint8, ld int, b *int8, k4 int, out *int32, ldo int, bias *int32)

func tileFn(a []uint8, ld int, b []int8, k4 int, out []int32, ldo int, bias *[nr]int32) {
	if !useVNNI || k4 == 0 {
		tileGo(a, ld, b, k4, out, ldo, bias)
		return
	}
	_ = a[(mr-1)*ld+k4*4-1] // the rows the tile reads are in a
	_ = b[k4*nr*4-1]
	_ = out[(mr-1)*ldo+nr-1] // and those it writes in out
	tileVNNI(&a[0], ld, &b[0], k4, &out[0], ldo, &bias[0])
}

// useVNNIFor sets whether the assembly runs (when the CPU has it), for the
// tests that compare; it returns the previous setting.
func useVNNIFor(on bool) bool {
	old := useVNNI
	useVNNI = on && cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW && cpu.X86.HasAVX512VNNI
	return old
}
