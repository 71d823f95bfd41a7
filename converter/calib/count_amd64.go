package calib

import "golang.org/x/sys/cpu"

var haveCountAVX2 = cpu.X86.HasAVX2 // a variable so tests can take the Go path

//go:noescape
func countAVX2(x []float32, p *countParams, c []uint32, idx []int32) (lo, hi float32)

//go:noescape
func drainAVX2(counts []uint64, c []uint32, stride int)
