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

// row4VNNI and row1VNNI take one row of A against four panels of B
// (stride bytes apart) or one: the product of a row (a batch of one),
// without the five rows of a tile it would leave empty.
//
//go:noescape
func row4VNNI(a *uint8, b *int8, stride, k4 int, out *int32)

//go:noescape
func row1VNNI(a *uint8, b *int8, k4 int, out *int32)

// rowFn sets out[0:32 * panels] to the sums of row a (k4 groups of four)
// against panels consecutive panels of b from panel 0; panels is 1 or 4.
func rowFn(a []uint8, b []int8, k4, panels int, out []int32) {
	if !useVNNI || k4 == 0 {
		rowGo(a, b, k4, panels, out)
		return
	}
	_ = a[k4*4-1]
	_ = b[panels*k4*nr*4-1]
	_ = out[panels*nr-1]
	if panels == 4 {
		row4VNNI(&a[0], &b[0], k4*nr*4, k4, &out[0])
		return
	}
	row1VNNI(&a[0], &b[0], k4, &out[0])
}
