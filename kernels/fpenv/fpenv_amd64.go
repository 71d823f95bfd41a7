package fpenv

// Supported tells whether this architecture has a flush mode that Flush sets.
const Supported = true

// flushBits are MXCSR's DAZ (bit 6: subnormal inputs read as zero) and FTZ
// (bit 15: subnormal results written as zero).
const flushBits = 1<<6 | 1<<15

//go:noescape
func get() uint32

//go:noescape
func set(mode uint32)
