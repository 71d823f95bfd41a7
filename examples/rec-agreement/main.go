// Command rec-agreement measures a PaddleOCR text recognizer against its
// float model on rendered text lines, for `onnxq tune --eval-cmd`: it
// greedy-decodes the CTC output of both (argmax per time step, repeats
// collapsed, blank 0 dropped) and prints the share of lines whose decoding
// equals the float model's, in percent: what quantization changes, on the
// unlabelled lines of TextImage. examples/ocr-accuracy measures true line
// accuracy on labelled lines.
//
//	go build -o bin/rec-agreement ./examples/rec-agreement
//	onnxq tune rec.onnx --calib calib/ --eval-cmd 'bin/rec-agreement -float rec.onnx {model}' --target 99
//
// The lines have seeds seed..seed+n-1 (default 5000..), apart from the
// calibration seeds the tests and the examples use (100..).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/internal/atomicfile"
	"github.com/onnxq/onnxq/internal/ppocr"
	"github.com/onnxq/onnxq/internal/testdata"
	"github.com/onnxq/onnxq/kernels"
)

func main() {
	floatPath := flag.String("float", "", "the float recognizer (required)")
	n := flag.Int("n", 100, "number of lines")
	seed := flag.Uint64("seed", 5000, "seed of the first line")
	threads := flag.Int("threads", 0, "threads for the kernels (0: all cores)")
	cache := flag.String("cache", "", "keep the float model's decodings in this file and reuse them while the float model, seeds and count are the same (tune runs the command once per candidate)")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: rec-agreement -float FLOAT.onnx [flags] MODEL.onnx\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 || *floatPath == "" || *n < 1 {
		flag.Usage()
		os.Exit(2)
	}
	same, err := Agreement(*floatPath, flag.Arg(0), *n, *seed, *threads, *cache)
	if err != nil {
		fmt.Fprintln(os.Stderr, "rec-agreement:", err)
		os.Exit(1)
	}
	fmt.Printf("lines %d  same as float %d  agreement %.2f\n", *n, same, 100*float64(same)/float64(*n))
}

// Agreement counts the lines of n (seeds seed..) on which the model's greedy
// CTC decoding equals the float model's.
// With a cache path, the float decodings are read from it when it was
// written for the same float model file, seeds and count, and written to it
// otherwise.
func Agreement(floatPath, modelPath string, n int, seed uint64, threads int, cache string) (int, error) {
	ref, err := floatDecodings(floatPath, n, seed, threads, cache)
	if err != nil {
		return 0, err
	}
	ms, err := open(modelPath, threads)
	if err != nil {
		return 0, err
	}
	same := 0
	for i := 0; i < n; i++ {
		b, err := decodeLine(ms, testdata.OCRInput("rec", 48, 320, seed+uint64(i)))
		if err != nil {
			return 0, fmt.Errorf("%s: %w", modelPath, err)
		}
		if slices.Equal(ref[i], b) {
			same++
		}
	}
	return same, nil
}

// decodings is the cache file's content.
type decodings struct {
	Model string  `json:"model"` // absolute path, size and modification time
	Seed  uint64  `json:"seed"`
	Lines [][]int `json:"lines"`
}

func floatDecodings(floatPath string, n int, seed uint64, threads int, cache string) ([][]int, error) {
	st, err := os.Stat(floatPath)
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(floatPath)
	if err != nil {
		return nil, err
	}
	key := fmt.Sprintf("%s %d %d", abs, st.Size(), st.ModTime().UnixNano())
	if cache != "" {
		var d decodings
		if b, err := os.ReadFile(cache); err == nil && json.Unmarshal(b, &d) == nil && d.Model == key && d.Seed == seed && len(d.Lines) == n {
			return d.Lines, nil
		}
	}
	fs, err := open(floatPath, threads)
	if err != nil {
		return nil, err
	}
	lines := make([][]int, n)
	for i := range lines {
		if lines[i], err = decodeLine(fs, testdata.OCRInput("rec", 48, 320, seed+uint64(i))); err != nil {
			return nil, fmt.Errorf("%s: %w", floatPath, err)
		}
	}
	if cache != "" {
		b, err := json.Marshal(decodings{Model: key, Seed: seed, Lines: lines})
		if err != nil {
			return nil, err
		}
		if err := atomicfile.WriteBytes(cache, b); err != nil {
			return nil, fmt.Errorf("cache %s: %v", cache, err)
		}
	}
	return lines, nil
}

func open(path string, threads int) (*kernels.Session, error) {
	m, err := graph.Load(path)
	if err != nil {
		return nil, err
	}
	s, err := kernels.NewSession(m, kernels.Options{Threads: threads})
	if err != nil {
		return nil, err
	}
	if len(s.Inputs()) != 1 || len(s.OutputNames()) != 1 {
		return nil, fmt.Errorf("%s has %d inputs and %d outputs; a recognizer has one image input and one [1,T,classes] output", path, len(s.Inputs()), len(s.OutputNames()))
	}
	return s, nil
}

func decodeLine(s *kernels.Session, x *graph.Tensor) ([]int, error) {
	outs, err := s.Run(map[string]*graph.Tensor{s.Inputs()[0].Name: x})
	if err != nil {
		return nil, err
	}
	return ppocr.GreedyCTC(outs[s.OutputNames()[0]])
}
