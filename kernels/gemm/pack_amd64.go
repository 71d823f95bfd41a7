//go:build amd64 && !purego

package gemm

import "golang.org/x/sys/cpu"

//go:noescape
func packA12AVX(dst, src *float32, lds, groups int)

// packA12 packs the first 8*groups columns of 12 rows of A (lds apart, from
// src[0]) into a 12-row panel, when the machine has AVX; it reports false
// otherwise.
func packA12(dst, src []float32, lds, groups int) bool {
	if groups == 0 || !cpu.X86.HasAVX {
		return groups == 0
	}
	_ = src[11*lds+8*groups-1]
	_ = dst[12*8*groups-1]
	packA12AVX(&dst[0], &src[0], lds, groups)
	return true
}
