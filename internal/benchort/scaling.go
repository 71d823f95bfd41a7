//go:build ort

package main

import (
	"fmt"
	"strings"
)

// scalingRow is one model's -scaling result: onnxq at 1 and 2 threads, ORT
// at 1 thread and at 2 threads with its intra-op workers spinning between
// runs (its default) and not.
type scalingRow struct {
	name                                    string
	ours1, ours2, ort1, ort2spin, ort2still timing
	ours2est                                timing // onnxq 2T in accounting mode
}

// ort2 is ORT at 2 threads at its best: the faster of spinning and not.
func (r scalingRow) ort2(clean bool) (timing, string) {
	a, b := r.ort2spin, r.ort2still
	if clean {
		if b.nClean >= minClean && (a.nClean < minClean || b.clean < a.clean) {
			return b, "no spin"
		}
		return a, "spin"
	}
	if b.wall < a.wall {
		return b, "no spin"
	}
	return a, "spin"
}

// minClean is how many clean runs each engine needs before the clean table
// shows a row's times.
const minClean = 3

// ms is a median with its interquartile range.
func ms(t timing) string { return fmt.Sprintf("%.2f (%.2f-%.2f)", t.wall, t.p25, t.p75) }

// speedup is 1T/2T from the medians, with the range that pairing the
// quartiles allows (1T p25 / 2T p75 .. 1T p75 / 2T p25).
func speedup(one, two timing) string {
	return fmt.Sprintf("%.2f (%.2f-%.2f)", one.wall/two.wall, one.p25/two.p75, one.p75/two.p25)
}

func printScaling(rows []scalingRow) {
	fmt.Println("\nall runs: median ms (interquartile range); ORT 2T is the faster of its workers spinning between runs (its default) or not; waited: the run-queue time of the process's threads during onnxq's 2-thread runs (/proc/self/task/*/schedstat), summed over threads, as a share of the run, median: near 0 the run had two cores, 100% or more a thread waited for one throughout; worker: the share of onnxq's parallel loops in its 2-thread runs that a worker took part in (the others ran at 1-thread speed)")
	fmt.Println()
	fmt.Println("| model | onnxq 1T | onnxq 2T | onnxq 1T/2T | ORT 1T | ORT 2T spin | ORT 2T no spin | ORT 1T/2T | onnxq / ORT 2T | waited | worker |")
	fmt.Println("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, r := range rows {
		o2, which := r.ort2(false)
		worker := "–"
		if r.ours2.helped >= 0 {
			worker = fmt.Sprintf("%.0f%%", 100*r.ours2.helped)
		}
		fmt.Printf("| %s | %s | %s | %s | %s | %s | %s | %s (%s) | %.2f | %.0f%% | %s |\n", r.name, ms(r.ours1), ms(r.ours2), speedup(r.ours1, r.ours2),
			ms(r.ort1), ms(r.ort2spin), ms(r.ort2still), speedup(r.ort1, o2), which, r.ours2.wall/o2.wall, 100*r.ours2.waited, worker)
	}
	fmt.Println("\nonnxq on cores of its own, estimated from thread CPU times (kernels/parallel's accounting mode: each loop's items go to seats statically and count as the slowest seat's CPU time; hand-offs between threads left out, about 1 us per loop when the worker spins): 1T is the thread CPU time of the 1-thread runs, 2T the estimate, medians")
	fmt.Println()
	fmt.Println("| model | onnxq 1T CPU ms | onnxq 2T estimate ms | estimated 1T/2T |")
	fmt.Println("|---|---:|---:|---:|")
	for _, r := range rows {
		fmt.Printf("| %s | %.2f | %.2f | %.2f |\n", r.name, r.ours1.thread, r.ours2est.estimate, r.ours1.thread/r.ours2est.estimate)
	}
	fmt.Printf("\nclean runs only (this process's threads waited for a CPU less than %.0f%% of the run, so a 2-thread run had two cores): median ms, clean runs of all; – where an engine had fewer than %d\n\n", 100*cleanWait, minClean)
	fmt.Println("| model | onnxq 1T | onnxq 2T | onnxq 1T/2T | ORT 1T | ORT 2T | ORT 1T/2T | onnxq / ORT 2T |")
	fmt.Println("|---|---:|---:|---:|---:|---:|---:|---:|")
	for _, r := range rows {
		o2, which := r.ort2(true)
		cell := func(t timing) string {
			if t.nClean < minClean {
				return fmt.Sprintf("– (%d/%d)", t.nClean, t.n)
			}
			return fmt.Sprintf("%.2f (%d/%d)", t.clean, t.nClean, t.n)
		}
		ratio := func(a, b timing) string {
			if a.nClean < minClean || b.nClean < minClean {
				return "–"
			}
			return fmt.Sprintf("%.2f", a.clean/b.clean)
		}
		fmt.Printf("| %s | %s | %s | %s | %s | %s | %s | %s |\n", r.name, cell(r.ours1), cell(r.ours2), ratio(r.ours1, r.ours2),
			cell(r.ort1), strings.TrimSpace(cell(o2)+" "+which), ratio(r.ort1, o2), ratio(r.ours2, o2))
	}
}
