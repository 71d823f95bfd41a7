//go:build ort

// Command ort-cosine runs a float model and a quantized one in ONNX Runtime
// on the same .npy samples and prints, per output, the worst and the mean
// cosine of the quantized outputs to the float ones: the check that a
// converted model holds in the runtime it is deployed on, not only in
// onnxq's executor.
//
//	go run -tags ort ./examples/ort-cosine float.onnx model.qdq.onnx eval/
package main

import (
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"

	"github.com/onnxq/onnxq/converter/dataset"
	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/internal/ortref"
	"github.com/onnxq/onnxq/npy"
)

func main() {
	threads := flag.Int("threads", 1, "ONNX Runtime intra-op threads")
	flag.Parse()
	if flag.NArg() != 3 || *threads < 1 {
		fmt.Fprintln(os.Stderr, "usage: ort-cosine [-threads T] FLOAT.onnx QUANT.onnx DIR_OF_NPY")
		os.Exit(2)
	}
	if err := run(flag.Arg(0), flag.Arg(1), flag.Arg(2), *threads); err != nil {
		fmt.Fprintln(os.Stderr, "ort-cosine:", err)
		os.Exit(1)
	}
}

func run(floatPath, quantPath, dir string, threads int) error {
	if err := ortref.InitBundled(); err != nil {
		return err
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.npy"))
	if err != nil || len(files) == 0 {
		return fmt.Errorf("no .npy samples in %s", dir)
	}
	m, err := graph.Load(floatPath)
	if err != nil {
		return err
	}
	ins := dataset.InputsOf(m)
	if len(ins) == 0 {
		return fmt.Errorf("%s has no data input", floatPath)
	}
	input := ins[0].Name
	fs, err := ortref.NewSession(floatPath, threads)
	if err != nil {
		return fmt.Errorf("%s: %v", floatPath, err)
	}
	defer fs.Close()
	qs, err := ortref.NewSession(quantPath, threads)
	if err != nil {
		return fmt.Errorf("%s: %v", quantPath, err)
	}
	defer qs.Close()
	worst, sum := map[string]float64{}, map[string]float64{}
	for _, f := range files {
		x, err := npy.ReadFile(f)
		if err != nil {
			return err
		}
		feed := map[string]*graph.Tensor{input: x}
		a, err := fs.Run(feed)
		if err != nil {
			return fmt.Errorf("%s on %s: %v", floatPath, f, err)
		}
		b, err := qs.Run(feed)
		if err != nil {
			return fmt.Errorf("%s on %s: %v", quantPath, f, err)
		}
		for name, t := range a {
			q, ok := b[name]
			if !ok {
				return fmt.Errorf("%s has no output %q", quantPath, name)
			}
			c := cosine(t.Float32s(), q.Float32s())
			if w, ok := worst[name]; !ok || c < w {
				worst[name] = c
			}
			sum[name] += c
		}
	}
	var names []string
	for n := range worst {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Printf("%s: %d samples, worst cosine %.5f, mean %.5f\n", n, len(files), worst[n], sum[n]/float64(len(files)))
	}
	return nil
}

func cosine(a, b []float32) float64 {
	if len(a) != len(b) {
		return math.NaN()
	}
	var d, na, nb float64
	for i := range a {
		d += float64(a[i]) * float64(b[i])
		na += float64(a[i]) * float64(a[i])
		nb += float64(b[i]) * float64(b[i])
	}
	if na == 0 || nb == 0 {
		return math.NaN()
	}
	return d / math.Sqrt(na*nb)
}
