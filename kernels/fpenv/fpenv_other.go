//go:build !amd64 && !arm64

package fpenv

// Supported tells whether this architecture has a flush mode that Flush sets.
const Supported = false

const flushBits = 0

func get() uint32 { return 0 }

func set(uint32) {}
