//go:build !amd64 || purego

package vec

// Without assembly useSIMD is false and this is never called.
func accRowAsm(acc *float64, x, dst *float32, n int, exclusive bool) {}

func widenAddAsm(acc *float64, x *float32, n int) {}
