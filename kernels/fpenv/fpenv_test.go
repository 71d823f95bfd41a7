package fpenv

import (
	"runtime"
	"testing"
)

// Variables, so that the compiler cannot fold the arithmetic below.
var (
	tiny  float32 = 0x1p-140 // subnormal
	small float32 = 0x1p-70  // normal; mul(small, small) is subnormal
	one   float32 = 1
)

// mul is a float32 product the compiler computes at the call, in the
// thread's current mode.
//
//go:noinline
func mul(a, b float32) float32 { return a * b }

func TestFlushAndRestore(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if mul(tiny, one) != tiny || mul(small, small) != 0x1p-140 {
		t.Fatalf("before Flush: %g, %g; want IEEE subnormals", mul(tiny, one), mul(small, small))
	}
	if Flushing() {
		t.Fatal("the thread flushes before Flush")
	}
	prev := Flush()
	got1, got2, on := mul(tiny, one), mul(small, small), Flushing()
	Restore(prev)
	if Supported {
		if got1 != 0 || got2 != 0 || !on {
			t.Errorf("in flush mode: subnormal*1 = %g, mul(small, small) = %g, Flushing %v; want 0, 0, true", got1, got2, on)
		}
	}
	if mul(tiny, one) != tiny || mul(small, small) != 0x1p-140 || Flushing() || Mode() != prev {
		t.Errorf("after Restore: %g, %g, mode %#x (was %#x)", mul(tiny, one), mul(small, small), Mode(), prev)
	}
}

func TestAdoptCopiesOnlyTheFlushBits(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	own := Mode()
	prev := Flush()
	flushing := Mode()
	Restore(prev)
	// Adopting a flushing thread's mode turns flushing on and keeps the rest.
	p := Adopt(flushing)
	if got := Mode(); got != own|flushBits {
		t.Errorf("after Adopt(flushing mode): %#x, want %#x", got, own|flushBits)
	}
	// Adopting a non-flushing mode with other bits set changes only flushing.
	Adopt(^uint32(flushBits) & 0xffff)
	if got := Mode(); got != own {
		t.Errorf("after Adopt(non-flushing mode): %#x, want %#x", got, own)
	}
	Restore(p)
	if Mode() != own {
		t.Errorf("after Restore: %#x, want %#x", Mode(), own)
	}
}
