//go:build !unix

package rss

func Peak() int64 { return 0 }
