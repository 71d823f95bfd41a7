package fpenv

// Supported tells whether this architecture has a flush mode that Flush sets.
const Supported = true

// flushBits is FPCR's FZ (bit 24): subnormal inputs and results are zero.
const flushBits = 1 << 24

//go:noescape
func get() uint32

//go:noescape
func set(mode uint32)
