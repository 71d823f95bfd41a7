//go:build !amd64

package parallel

// spinPause is a no-op where there is no pause instruction wrapper.
func spinPause() {}
