//go:build !amd64 || purego

package vec

// Without assembly useFMA stays false and these are never called.
func expAsm(dst, x *float32, n int)                                        {}
func logAsm(dst, x *float32, n int)                                        {}
func sigmoidAsm(dst, x *float32, n int)                                    {}
func tanhAsm(dst, x *float32, n int)                                       {}
func erfAsm(dst, x *float32, n int)                                        {}
func siluAsm(dst, x *float32, n int)                                       {}
func geluErfAsm(dst, x *float32, n int)                                    {}
func geluTanhAsm(dst, x *float32, n int)                                   {}
func mishAsm(dst, x *float32, n int)                                       {}
func softplusAsm(dst, x *float32, n int)                                   {}
func eluAsm(dst, x *float32, n int, alpha float32)                         {}
func expSubSumAsm(dst, x *float32, n int, sub float32, acc *[8]float64)    {}
func sumF64Asm(x *float32, n int, acc *[4]float64)                         {}
func softmaxRowsAsm(dst, x *float32, rows, t, ld int, maxes *float32) bool { return false }
func sumSqDevAsm(x *float32, n int, mean float64, acc *[4]float64)         {}
