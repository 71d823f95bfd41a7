// Command ocr-accuracy measures a PaddleOCR recognizer's line accuracy or
// direction classifier's accuracy against the labels of rendered lines
// (internal/testdata's TextLine and ClsLine), for `onnxq tune --eval-cmd`:
//
//	go build -o bin/ocr-accuracy ./examples/ocr-accuracy
//	onnxq tune rec.onnx --calib calib/ --eval-cmd 'bin/ocr-accuracy {model}' --target 97
//	onnxq tune cls.onnx --calib calib/ --eval-cmd 'bin/ocr-accuracy -kind cls {model}' --target 99
//
// A recognizer's line is right when its greedy CTC reading equals the label
// after both drop spaces and map full-width ASCII forms to ASCII; a
// classifier's when its best class is the label (0 or 180 degrees). It
// prints the count and, last, the accuracy in percent. The lines have
// seeds seed..seed+n-1 (default 5000..), apart from the calibration seeds
// the examples use (100..); -data reads the lines and labels that
// `ocr-samples -labelled` wrote instead.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/internal/ppocr"
	"github.com/onnxq/onnxq/internal/testdata"
	"github.com/onnxq/onnxq/kernels"
	"github.com/onnxq/onnxq/npy"
)

func main() {
	kind := flag.String("kind", "rec", "rec (text recognizer, line accuracy) or cls (direction classifier, accuracy)")
	n := flag.Int("n", 100, "number of rendered lines")
	seed := flag.Uint64("seed", 5000, "seed of the first rendered line")
	data := flag.String("data", "", "read the lines and labels.txt that `ocr-samples -labelled` wrote to this folder instead of rendering them")
	keys := flag.String("keys", filepath.Join(testdata.CacheDir(), "ocr-models", "package", "assets", "ppocr_keys_v1.txt"), "the recognizer's character dictionary")
	threads := flag.Int("threads", 0, "threads for the kernels (0: all cores)")
	rt := flag.String("runtime", "onnxq", "run the model with onnxq's executor (onnxq) or ONNX Runtime (ort; needs a build with -tags ort)")
	verbose := flag.Bool("v", false, "print each wrong line (label and reading) on stderr")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: ocr-accuracy [-kind rec|cls] [flags] MODEL.onnx\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	open, ok := runtimes[*rt]
	if flag.NArg() != 1 || *kind != "rec" && *kind != "cls" || *n < 1 || !ok {
		if !ok {
			fmt.Fprintf(os.Stderr, "ocr-accuracy: -runtime %q is not available in this build (onnxq%s)\n", *rt, ortNote)
		}
		flag.Usage()
		os.Exit(2)
	}
	lines := Rendered(*kind, *n, *seed)
	if *data != "" {
		var err error
		if lines, err = ReadLabelled(*data); err != nil {
			fmt.Fprintln(os.Stderr, "ocr-accuracy:", err)
			os.Exit(1)
		}
	}
	var read reader
	if *kind == "rec" {
		dict, err := ppocr.LoadDict(*keys)
		if err != nil {
			fmt.Fprintln(os.Stderr, "ocr-accuracy:", err)
			os.Exit(1)
		}
		read = recReader(dict)
	} else {
		read = ppocr.ClsDecision
	}
	run, err := open(flag.Arg(0), *threads)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ocr-accuracy:", err)
		os.Exit(1)
	}
	right, err := Score(run, read, lines, func(l Line, got string) {
		if *verbose {
			fmt.Fprintf(os.Stderr, "%s: %q read as %q\n", l.Name, l.Label, got)
		}
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "ocr-accuracy: %s: %v\n", flag.Arg(0), err)
		os.Exit(1)
	}
	fmt.Printf("lines %d  right %d  accuracy %.2f\n", len(lines), right, Percent(right, len(lines)))
}

// Score counts the lines the model reads right; wrong sees the others.
func Score(run runFunc, read reader, lines []Line, wrong func(l Line, got string)) (int, error) {
	right := 0
	for _, l := range lines {
		got, err := readLine(run, read, l)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", l.Name, err)
		}
		if ppocr.Same(got, l.Label) {
			right++
		} else {
			wrong(l, got)
		}
	}
	return right, nil
}

// Percent is right out of total in percent.
func Percent(right, total int) float64 { return 100 * float64(right) / float64(total) }

// Line is one labelled input.
type Line struct {
	Name  string
	Input func() (*graph.Tensor, error)
	Label string
}

// Rendered lists n labelled lines of a kind from seed on: rec lines are
// 48 x 320, cls lines 48 x 192, both mapped to [-1, 1].
func Rendered(kind string, n int, seed uint64) []Line {
	out := make([]Line, n)
	for i := range out {
		s := seed + uint64(i)
		img, label := testdata.TextLine(48, 320, s)
		h, w := 48, 320
		if kind == "cls" {
			img, label = testdata.ClsLine(48, 192, s)
			w = 192
		}
		x := testdata.HalfNormalized(img, h, w)
		out[i] = Line{Name: fmt.Sprintf("seed %d", s), Input: func() (*graph.Tensor, error) { return x, nil }, Label: label}
	}
	return out
}

// ReadLabelled lists the lines of a folder's labels.txt (PaddleOCR's label
// format: a file name, a tab, the label), which name .npy files there.
func ReadLabelled(dir string) ([]Line, error) {
	p := filepath.Join(dir, "labels.txt")
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("labels: %w (write them with ocr-samples -labelled)", err)
	}
	defer f.Close()
	var out []Line
	sc := bufio.NewScanner(f)
	for ln := 1; sc.Scan(); ln++ {
		if sc.Text() == "" {
			continue
		}
		name, label, ok := strings.Cut(sc.Text(), "\t")
		if !ok || name == "" {
			return nil, fmt.Errorf("%s:%d: want FILE<tab>LABEL, got %q", p, ln, sc.Text())
		}
		file := filepath.Join(dir, name)
		out = append(out, Line{Name: name, Label: label, Input: func() (*graph.Tensor, error) { return npy.ReadFile(file) }})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s lists no lines", p)
	}
	return out, nil
}

// reader turns a model's output into text to compare with the label.
type reader func(*graph.Tensor) (string, error)

func recReader(d ppocr.Dict) reader {
	return func(t *graph.Tensor) (string, error) {
		classes, err := ppocr.GreedyCTC(t)
		if err != nil {
			return "", err
		}
		return d.Text(classes)
	}
}

func readLine(run runFunc, read reader, l Line) (string, error) {
	x, err := l.Input()
	if err != nil {
		return "", err
	}
	out, err := run(x)
	if err != nil {
		return "", err
	}
	return read(out)
}

// runFunc runs the model on one input and returns its one output.
type runFunc func(x *graph.Tensor) (*graph.Tensor, error)

// runtimes are the executors a model can run on: onnxq's own, and ONNX
// Runtime in builds with -tags ort (runtime_ort.go).
var runtimes = map[string]func(path string, threads int) (runFunc, error){
	"onnxq": func(path string, threads int) (runFunc, error) {
		m, err := graph.Load(path)
		if err != nil {
			return nil, err
		}
		s, err := kernels.NewSession(m, kernels.Options{Threads: threads})
		if err != nil {
			return nil, err
		}
		if len(s.Inputs()) != 1 || len(s.OutputNames()) != 1 {
			return nil, fmt.Errorf("%s has %d inputs and %d outputs; PaddleOCR's rec and cls have one image input and one output", path, len(s.Inputs()), len(s.OutputNames()))
		}
		in, out := s.Inputs()[0].Name, s.OutputNames()[0]
		return func(x *graph.Tensor) (*graph.Tensor, error) {
			outs, err := s.Run(map[string]*graph.Tensor{in: x})
			if err != nil {
				return nil, err
			}
			return outs[out], nil
		}, nil
	},
}

// ortNote completes the list of runtimes in an error message.
var ortNote = "; build with -tags ort for ort"
