//go:build ort

package main

import (
	"fmt"
	"math"
)

// clockMode says which times the table shows.
type clockMode int

const (
	clockBoth   clockMode = iota // wall at every thread count, thread CPU beside it at 1 thread
	clockWall                    // wall only
	clockThread                  // thread CPU only (1 thread)
)

func parseClock(s string) (clockMode, error) {
	switch s {
	case "both":
		return clockBoth, nil
	case "wall":
		return clockWall, nil
	case "thread":
		return clockThread, nil
	}
	return 0, fmt.Errorf("-clock %q: want wall, thread or both", s)
}

// maxProcPerThread is how far process CPU time may exceed thread CPU time,
// as the median over runs, before a row's thread-CPU ratio is marked as not
// covering the whole pass. At 1 thread onnxq measures 1.00-1.01 and ORT
// 1.00-1.11: around ORT's cgo calls Go's sysmon thread wakes about 20 times
// a pass (its context switches, on a loaded machine), work that is neither
// engine's. With their pools at 2 threads onnxq measures 1.19-1.20 (its
// worker gets little of a loaded core) and ORT 2.0.
const maxProcPerThread = 1.15

// table prints the onnxq vs ORT Markdown table and, when it shows thread CPU
// time, the range of process/thread CPU per engine that tells whether the
// thread's clock saw the whole pass.
type table struct {
	clock  clockMode
	lo, hi [2]float64 // process / thread CPU (median over runs), onnxq and ORT, over 1-thread rows
	allHi  [2]float64 // the same over all runs summed, largest
	marked int
}

func (t *table) header() {
	t.lo = [2]float64{math.Inf(1), math.Inf(1)}
	t.hi = [2]float64{math.Inf(-1), math.Inf(-1)}
	t.allHi = t.hi
	switch t.clock {
	case clockWall:
		fmt.Println("| model | input | threads | onnxq ms | ORT ms | onnxq / ORT |")
		fmt.Println("|---|---|---:|---:|---:|---:|")
	case clockThread:
		fmt.Println("| model | input | threads | onnxq CPU ms | ORT CPU ms | CPU onnxq / ORT |")
		fmt.Println("|---|---|---:|---:|---:|---:|")
	default:
		fmt.Println("| model | input | threads | onnxq ms | onnxq CPU ms | ORT ms | ORT CPU ms | onnxq / ORT | CPU onnxq / ORT (1T), clean wall (2T) |")
		fmt.Println("|---|---|---:|---:|---:|---:|---:|---:|---:|")
	}
}

func (t *table) row(m model, threads int, ours, theirs timing, noSpin bool) {
	cpuRatio := "–"
	ourCPU, theirCPU := "–", "–"
	if threads == 1 {
		ourCPU, theirCPU = fmt.Sprintf("%.2f", ours.thread), fmt.Sprintf("%.2f", theirs.thread)
		cpuRatio = fmt.Sprintf("%.2f", ours.thread/theirs.thread)
		for i, e := range []timing{ours, theirs} {
			t.lo[i] = min(t.lo[i], e.procPerThread)
			t.hi[i] = max(t.hi[i], e.procPerThread)
			t.allHi[i] = max(t.allHi[i], e.procPerThreadAll)
		}
		if ours.procPerThread > maxProcPerThread || theirs.procPerThread > maxProcPerThread {
			cpuRatio += fmt.Sprintf(" (!) process/thread CPU %.2f, %.2f", ours.procPerThread, theirs.procPerThread)
			t.marked++
		}
	}
	if threads > 1 {
		// Thread CPU time says nothing here; the wall ratio over the runs
		// that had their cores does (see timing.clean).
		cpuRatio = fmt.Sprintf("clean runs %d/%d, %d/%d", ours.nClean, ours.n, theirs.nClean, theirs.n)
		if noSpin {
			cpuRatio += "; ORT without spinning"
		}
		if ours.helped >= 0 {
			// Loops no worker joined ran at their 1-thread speed: the
			// VM did not run the worker's vCPU in time.
			cpuRatio += fmt.Sprintf("; onnxq's worker in %.0f%% of loops", 100*ours.helped)
		}
		if ours.nClean >= minClean && theirs.nClean >= minClean {
			cpuRatio = fmt.Sprintf("wall %.2f over ", ours.clean/theirs.clean) + cpuRatio
		}
	}
	in := describe(m.inputs)
	switch t.clock {
	case clockWall:
		fmt.Printf("| %s | %s | %d | %.2f | %.2f | %.2f |\n", m.name, in, threads, ours.wall, theirs.wall, ours.wall/theirs.wall)
	case clockThread:
		fmt.Printf("| %s | %s | %d | %s | %s | %s |\n", m.name, in, threads, ourCPU, theirCPU, cpuRatio)
	default:
		fmt.Printf("| %s | %s | %d | %.2f | %s | %.2f | %s | %.2f | %s |\n", m.name, in, threads, ours.wall, ourCPU, theirs.wall, theirCPU, ours.wall/theirs.wall, cpuRatio)
	}
}

func (t *table) footer() {
	if t.clock != clockWall && t.lo[0] <= t.hi[0] {
		fmt.Printf("\nprocess / thread CPU time per 1-thread run (median): onnxq %.2f-%.2f, ORT %.2f-%.2f (1: the pass ran on the calling thread; rows above %.2f are marked (!))\n",
			t.lo[0], t.hi[0], t.lo[1], t.hi[1], maxProcPerThread)
		fmt.Printf("over all runs summed, at most: onnxq %.2f, ORT %.2f (above the median: Go's garbage collector or runtime threads now and then, which thread CPU time leaves out)\n", t.allHi[0], t.allHi[1])
		if t.marked > 0 {
			fmt.Printf("%d rows marked: there other threads did part of the work in most runs, and the thread-CPU ratio leaves it out\n", t.marked)
		}
	}
	fmt.Printf("\nload average at the end %s; %s\n", loadavg(), crossCore(false))
}
