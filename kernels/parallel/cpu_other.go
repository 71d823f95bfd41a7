//go:build !linux

package parallel

// threadCPU has no portable form: accounting is not available.
func threadCPU() int64 { return -1 }
