// Package fpenv reads and sets the calling OS thread's floating-point mode:
// whether subnormal float values are flushed to zero.
//
// On x86 an arithmetic instruction that reads or produces a subnormal float
// (magnitude below 2^-126 in float32) takes a microcode assist of about a
// hundred cycles, and a vector instruction takes it when any lane does. A
// few subnormals in a layer's input, broadcast or loaded into every tile of
// a GEMM, then cost more than the layer's arithmetic: an EfficientNet-style
// 1x1 convolution (1152 -> 320 channels on 7x7) fed by a squeeze-excitation
// gate with some subnormal products took 3.39 ms, 0.43 ms with subnormals
// flushed (ONNX Runtime: 0.36). The executor therefore runs its kernels in
// flush mode, as TensorFlow does by default: subnormal inputs read as zero
// (x86 DAZ) and results that would be subnormal are written as zero (FTZ;
// arm64's FZ does both). Results differ from IEEE 754 only by less than
// 2^-126 in magnitude.
//
// The mode belongs to an OS thread, so a goroutine must hold its thread
// (runtime.LockOSThread) from Flush to Restore; otherwise the mode could
// stay behind on a thread that other goroutines then use.
package fpenv

// Flush turns flushing on for the calling thread and returns the mode to
// hand to Restore.
func Flush() (prev uint32) {
	prev = get()
	if want := prev | flushBits; want != prev {
		set(want)
	}
	return prev
}

// Restore sets the calling thread's mode back to prev (from Flush or Mode).
func Restore(prev uint32) {
	if get() != prev {
		set(prev)
	}
}

// Mode is the calling thread's mode, for a worker to Adopt.
func Mode() uint32 { return get() }

// Adopt gives the calling thread the flush setting of mode (another thread's
// Mode) and returns its own previous mode for Restore. Only the flush bits
// are copied: exception masks and rounding stay the thread's own.
func Adopt(mode uint32) (prev uint32) {
	prev = get()
	if want := prev&^flushBits | mode&flushBits; want != prev {
		set(want)
	}
	return prev
}

// Flushing reports whether the calling thread flushes subnormals, false where
// the architecture has no such mode (see Supported).
func Flushing() bool { return Supported && get()&flushBits == flushBits }
