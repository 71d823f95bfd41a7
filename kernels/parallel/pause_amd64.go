package parallel

// spinPause tells the CPU that this is a spin-wait loop (x86 PAUSE): the
// loop then reads the line it waits on less often, so the core that will
// write it gets it sooner, and it leaves the pipeline to a sibling
// hyperthread.
//
//go:noescape
func spinPause()
