//go:build ort

package main

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"time"
)

// On a shared machine a timed run may find its cores taken by other
// processes: a 2-thread run then gets one core or less, and its time says
// nothing about how the work splits. The run-queue wait of this process's
// own threads (the second field of /proc/self/task/*/schedstat, in
// nanoseconds) tells afterwards whether a run had the cores it asked for: it
// is zero when every thread of the process that wanted a CPU had one. (The
// kernel's CPU pressure, /proc/pressure/cpu, would also count other
// processes' waits, but its total advances in bursts of several
// milliseconds, too coarse for a run.) It reads as -1 where the kernel does
// not provide it.

// runQueueWait sums the run-queue wait of every thread of this process.
// Threads that ended since the last call drop out of the sum, so callers
// take differences over intervals in which the engines keep their threads.
func runQueueWait() int64 {
	d, err := os.Open("/proc/self/task")
	if err != nil {
		return -1
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return -1
	}
	var sum int64
	var buf [128]byte
	for _, name := range names {
		f, err := os.Open("/proc/self/task/" + name + "/schedstat")
		if err != nil {
			continue // the thread ended
		}
		n, _ := f.Read(buf[:])
		f.Close()
		fields := bytes.Fields(buf[:n])
		if len(fields) < 2 {
			return -1
		}
		v, err := strconv.ParseInt(string(fields[1]), 10, 64)
		if err != nil {
			return -1
		}
		sum += v
	}
	return sum
}

// cpuIdle returns the idle and total jiffies of all CPUs from /proc/stat.
func cpuIdle() (idle, total int64, ok bool) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, false
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := bytes.Fields(line)
	if len(f) < 5 || string(f[0]) != "cpu" {
		return 0, 0, false
	}
	for i, v := range f[1:] {
		n, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil {
			return 0, 0, false
		}
		total += n
		if i == 3 || i == 4 { // idle, iowait
			idle += n
		}
	}
	return idle, total, true
}

// quietGate waits, up to limit, for a window in which the machine's CPUs
// were at least quietIdle idle, so that the block of runs that follows
// starts when other processes leave both cores free. It returns how long it
// waited and whether it found such a window. The runs themselves are judged
// afterwards by their own run-queue wait (see timing.clean).
func quietGate(limit time.Duration) (time.Duration, bool) {
	start := time.Now()
	if limit <= 0 {
		return 0, false
	}
	for {
		i0, t0, ok := cpuIdle()
		if !ok {
			return time.Since(start), false
		}
		time.Sleep(quietWindow)
		i1, t1, ok := cpuIdle()
		if !ok {
			return time.Since(start), false
		}
		if t1 > t0 && float64(i1-i0) >= quietIdle*float64(t1-t0) {
			return time.Since(start), true
		}
		if time.Since(start) >= limit {
			return time.Since(start), false
		}
	}
}

const (
	quietWindow = 200 * time.Millisecond
	quietIdle   = 0.9
)

// gate is a -quiet or -near gate and what it found: before each block of
// runs, wait waits up to limit for the gate's condition and says how long
// it waited and whether the condition came.
type gate struct {
	limit         time.Duration
	blocks, found int
	waited        time.Duration
	wait          func(limit time.Duration) (time.Duration, bool)
}

var (
	quiet = gate{wait: quietGate}
	near  = gate{wait: nearGate}
)

// before gates one block of runs.
func (q *gate) before() {
	if q.limit <= 0 {
		return
	}
	d, ok := q.wait(q.limit)
	q.blocks++
	q.waited += d
	if ok {
		q.found++
	}
}

// report prints what the gate -flag found; started says how the blocks
// that found its condition started.
func (q *gate) report(flag, started string) {
	if q.blocks == 0 {
		return
	}
	fmt.Printf("\n-%s %v: %d of %d blocks started %s; %.1f s spent waiting\n", flag, q.limit, q.found, q.blocks, started, q.waited.Seconds())
}

// reportGates prints what the -quiet and -near gates found.
func reportGates() {
	quiet.report("quiet", fmt.Sprintf("after a %v window with the CPUs %.0f%% idle", quietWindow, 100*quietIdle))
	near.report("near", fmt.Sprintf("with the CPUs near (cross-core round trip under %d ns)", nearRoundTrip.Nanoseconds()))
}
