package parallel

import "syscall"

// osYield gives the CPU to another thread if one is waiting for it. On a
// loaded machine the OS often wakes a worker on the caller's own CPU; a
// worker that spun there without yielding would hold the caller off.
func osYield() { syscall.Syscall(syscall.SYS_SCHED_YIELD, 0, 0, 0) }
