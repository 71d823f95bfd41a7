//go:build amd64 && !purego

package gemm

import "golang.org/x/sys/cpu"

//go:noescape
func packA12AVX(dst, src *float32, lds, groups int)

//go:noescape
func packA6AVX(dst, src *float32, lds, groups int)

// packPanel packs the first 8*groups columns of mr rows of A (lds apart,
// from src[0]) into an mr-row panel, for mr 12 or 6 when the machine has
// AVX; it reports false otherwise.
func packPanel(dst, src []float32, mr, lds, groups int) bool {
	if groups == 0 || !cpu.X86.HasAVX || (mr != 12 && mr != 6) {
		return groups == 0
	}
	_ = src[(mr-1)*lds+8*groups-1]
	_ = dst[mr*8*groups-1]
	if mr == 12 {
		packA12AVX(&dst[0], &src[0], lds, groups)
	} else {
		packA6AVX(&dst[0], &src[0], lds, groups)
	}
	return true
}
