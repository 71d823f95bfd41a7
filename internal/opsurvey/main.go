//go:build ort

// Command opsurvey times onnxq's executor against ONNX Runtime on single
// ops and small subgraphs at sizes real models use (about 110 cases:
// convolutions, pooling, resizes, normalizations, reductions, gathers,
// masks, attention pieces, detection post-processing), one thread each,
// paired and alternating in one process: each pair's onnxq/ORT thread CPU
// time ratio, the median of those, and the outputs' agreement. It finds the
// ops a model family spends its time in that the zoo does not cover (session
// 15's first run: Einsum 250-390x, TopK 34-149x, reductions 10-25x behind).
// ORT runs on input and output tensors bound once (ortref.Bound), as onnxq
// returns pooled buffers.
//
//	make survey            # or: go run -tags ort ./internal/opsurvey [-only REGEXP] [-runs N] [-budget SECONDS] [-list]
//
// It prints progress to stderr and a markdown table, worst ratio first, to
// stdout.
package main

import (
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"sort"
	"strings"
	"time"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/internal/ortref"
	"github.com/onnxq/onnxq/internal/testdata"
	"github.com/onnxq/onnxq/kernels"
	"golang.org/x/sys/unix"
)

func threadCPU() float64 {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts)
	return float64(ts.Sec)*1e3 + float64(ts.Nsec)/1e6 // ms
}

func wall() float64 { return float64(time.Now().UnixNano()) / 1e6 }

type result struct {
	name, shape          string
	qCPU, oCPU, ratio    float64
	qWall, oWall, wRatio float64
	relErr               float64
	intMismatch          string
	n                    int
	err                  string
}

func median(x []float64) float64 {
	y := append([]float64(nil), x...)
	sort.Float64s(y)
	if len(y) == 0 {
		return math.NaN()
	}
	if len(y)%2 == 1 {
		return y[len(y)/2]
	}
	return (y[len(y)/2-1] + y[len(y)/2]) / 2
}

// compare returns max |a-b| / max|b| over float outputs, and a note on int outputs.
func compare(q, o map[string]*graph.Tensor) (float64, string, error) {
	rel := 0.0
	var notes []string
	for name, ot := range o {
		qt, ok := q[name]
		if !ok {
			return 0, "", fmt.Errorf("onnxq has no output %q", name)
		}
		if fmt.Sprint(qt.Shape) != fmt.Sprint(ot.Shape) {
			return 0, "", fmt.Errorf("output %q shape onnxq %v vs ORT %v", name, qt.Shape, ot.Shape)
		}
		switch ot.DType {
		case graph.Float:
			if qt.DType != graph.Float {
				return 0, "", fmt.Errorf("output %q dtype %v vs float", name, qt.DType)
			}
			a, b := qt.Float32s(), ot.Float32s()
			scale, diff := 0.0, 0.0
			for i := range b {
				scale = math.Max(scale, math.Abs(float64(b[i])))
				d := math.Abs(float64(a[i]) - float64(b[i]))
				if math.IsNaN(d) {
					d = math.Inf(1)
				}
				diff = math.Max(diff, d)
			}
			if scale == 0 {
				scale = 1
			}
			rel = math.Max(rel, diff/scale)
		case graph.Int64:
			if qt.DType != graph.Int64 {
				return 0, "", fmt.Errorf("output %q dtype %v vs int64", name, qt.DType)
			}
			a, b := qt.Int64s(), ot.Int64s()
			bad := 0
			for i := range b {
				if a[i] != b[i] {
					bad++
				}
			}
			notes = append(notes, fmt.Sprintf("%d/%d int diff", bad, len(b)))
		}
	}
	return rel, strings.Join(notes, ","), nil
}

func fname(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, s)
}

func runCase(c tcase, dir string, minRuns, maxRuns int, budget float64) (r result) {
	r.name, r.shape = c.name, c.shape
	defer func() {
		if p := recover(); p != nil {
			r.err = fmt.Sprintf("panic: %v", p)
		}
	}()
	b := c.build()
	path := filepath.Join(dir, fname(c.name)+".onnx")
	if err := graph.Save(b.m, path); err != nil {
		r.err = "save: " + err.Error()
		return
	}
	ref, err := ortref.NewSession(path, 1)
	if err != nil {
		r.err = "ORT session: " + err.Error()
		return
	}
	defer ref.Close()
	m, err := graph.Load(path)
	if err != nil {
		r.err = "load: " + err.Error()
		return
	}
	s, err := kernels.NewSession(m, kernels.Options{Threads: 1})
	if err != nil {
		r.err = "onnxq NewSession: " + err.Error()
		return
	}
	in := b.feeds
	oo, err := ref.Run(in)
	if err != nil {
		r.err = "ORT run: " + err.Error()
		return
	}
	qo, err := s.Run(in)
	if err != nil {
		r.err = "onnxq Run: " + err.Error()
		return
	}
	r.relErr, r.intMismatch, err = compare(qo, oo)
	s.Recycle(qo)
	if err != nil {
		r.err = "compare: " + err.Error()
		return
	}
	// Timed: ORT's run on tensors bound once, as onnxq returns pooled buffers.
	timed, err := ortref.NewSessionOpts(path, ortref.Options{Threads: 1, Level: ortref.OptAll})
	if err != nil {
		r.err = "ORT session: " + err.Error()
		return
	}
	defer timed.Close()
	raw, err := timed.Bind(in, oo)
	if err != nil {
		r.err = "ORT bind: " + err.Error()
		return
	}
	defer raw.Close()
	runtime.GC()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var qc, oc, qw, ow, ratio, wratio []float64
	start := wall()
	const warm = 5
	for i := 0; ; i++ {
		var tq, to, wq, wo float64
		runQ := func() {
			w0, t0 := wall(), threadCPU()
			out, err := s.Run(in)
			t1, w1 := threadCPU(), wall()
			if err != nil {
				panic(err)
			}
			s.Recycle(out)
			tq, wq = t1-t0, w1-w0
		}
		runO := func() {
			w0, t0 := wall(), threadCPU()
			err := raw.Run()
			t1, w1 := threadCPU(), wall()
			if err != nil {
				panic(err)
			}
			to, wo = t1-t0, w1-w0
		}
		if i%2 == 0 {
			runQ()
			runO()
		} else {
			runO()
			runQ()
		}
		if i < warm {
			continue
		}
		qc, oc, qw, ow = append(qc, tq), append(oc, to), append(qw, wq), append(ow, wo)
		ratio = append(ratio, tq/to)
		wratio = append(wratio, wq/wo)
		n := len(qc)
		if n >= maxRuns || (n >= minRuns && (wall()-start)/1e3 > budget) {
			break
		}
	}
	r.n = len(qc)
	r.qCPU, r.oCPU, r.ratio = median(qc), median(oc), median(ratio)
	r.qWall, r.oWall, r.wRatio = median(qw), median(ow), median(wratio)
	return
}

func main() { os.Exit(survey()) }

// survey runs the cases and returns the exit code: 1 when a case could not
// run or ORT is missing, 2 for bad flags.
func survey() int {
	only := flag.String("only", "", "regexp on case names")
	minRuns := flag.Int("runs", 40, "minimum paired runs (after 5 warm-ups)")
	maxRuns := flag.Int("max", 300, "maximum paired runs")
	budget := flag.Float64("budget", 2, "seconds per case after which to stop once -runs reached")
	dir := flag.String("dir", "", "where to write the models (default: a temporary folder, removed at the end)")
	list := flag.Bool("list", false, "list cases")
	flag.Parse()
	if *list {
		for _, c := range cases {
			fmt.Println(c.name)
		}
		return 0
	}
	if err := ortref.Init(testdata.ORTLibraryPath()); err != nil {
		fmt.Fprintln(os.Stderr, "opsurvey: ONNX Runtime (make testdata):", err)
		return 1
	}
	re, err := regexp.Compile(*only)
	if err != nil {
		fmt.Fprintln(os.Stderr, "opsurvey: -only:", err)
		return 2
	}
	if *dir == "" {
		tmp, err := os.MkdirTemp("", "opsurvey")
		if err != nil {
			fmt.Fprintln(os.Stderr, "opsurvey:", err)
			return 1
		}
		defer os.RemoveAll(tmp)
		*dir = tmp
	} else if err := os.MkdirAll(*dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "opsurvey:", err)
		return 1
	}
	debug.SetGCPercent(400)
	var res []result
	for _, c := range cases {
		if !re.MatchString(c.name) {
			continue
		}
		r := runCase(c, *dir, *minRuns, *maxRuns, *budget)
		if r.err != "" {
			fmt.Fprintf(os.Stderr, "%-55s ERROR %s\n", r.name, r.err)
		} else {
			fmt.Fprintf(os.Stderr, "%-55s onnxq %8.3f ms  ORT %8.3f ms  ratio %5.2f (wall %5.2f)  relerr %.1e %s n=%d\n",
				r.name, r.qCPU, r.oCPU, r.ratio, r.wRatio, r.relErr, r.intMismatch, r.n)
		}
		res = append(res, r)
	}
	sort.SliceStable(res, func(i, j int) bool {
		if (res[i].err != "") != (res[j].err != "") {
			return res[i].err == ""
		}
		return res[i].ratio > res[j].ratio
	})
	fmt.Println("| op / model | shape | onnxq ms | ORT ms | median paired ratio (thread CPU) | wall ratio | max rel err | n |")
	fmt.Println("|---|---|---:|---:|---:|---:|---:|---:|")
	for _, r := range res {
		if r.err != "" {
			continue
		}
		e := fmt.Sprintf("%.1e", r.relErr)
		if r.intMismatch != "" {
			e += " (" + r.intMismatch + ")"
		}
		fmt.Printf("| %s | %s | %.3f | %.3f | %.2f | %.2f | %s | %d |\n", r.name, r.shape, r.qCPU, r.oCPU, r.ratio, r.wRatio, e, r.n)
	}
	code := 0
	for _, r := range res {
		if r.err != "" {
			fmt.Printf("\nERROR %s [%s]: %s\n", r.name, r.shape, r.err)
			code = 1
		}
	}
	return code
}
