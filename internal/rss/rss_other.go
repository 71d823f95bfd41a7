//go:build !unix

package rss

func Peak() int64 { return 0 }

// ResetPeak is not available here.
func ResetPeak() bool { return false }
