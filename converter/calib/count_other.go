//go:build !amd64

package calib

var haveCountAVX2 = false

func countAVX2([]float32, *countParams, []uint32, []int32) (float32, float32) {
	panic("countAVX2 without amd64")
}

func drainAVX2([]uint64, []uint32, int) { panic("drainAVX2 without amd64") }
