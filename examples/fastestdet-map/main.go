// Command fastestdet-map measures a FastestDet model's COCO-style mAP on the
// evaluation images of ../shared/models/fastestdet with onnxq's own executor,
// so that `onnxq tune --eval-cmd` can tune against the detector's real metric:
//
//	go build -o bin/fastestdet-map ./examples/fastestdet-map
//	onnxq tune FastestDet.onnx --calib calib/ --image-channels BGR \
//	    --eval-cmd 'bin/fastestdet-map {model}' --target 13.4
//
// It prints mAP50 and, last, mAP50:95, both in percent. Preprocessing,
// decoding and the evaluation protocol are those of the data's README.
package main

import (
	"flag"
	"fmt"
	"image"
	_ "image/jpeg" // the evaluation images are JPEG
	"os"
	"path/filepath"
	"strings"

	"github.com/onnxq/onnxq/converter/dataset"
	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/kernels"
)

func main() {
	data := flag.String("data", filepath.Join("..", "shared", "models", "fastestdet"), "the FastestDet data folder (images in SPLIT/, labels in labels/SPLIT/)")
	split := flag.String("split", "eval", "which images: eval or calib")
	threads := flag.Int("threads", 0, "threads for the kernels (0: all cores)")
	limit := flag.Int("n", 0, "use only the first N images (0: all)")
	rt := flag.String("runtime", "onnxq", "run the model with onnxq's executor (onnxq) or ONNX Runtime (ort; needs a build with -tags ort)")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: fastestdet-map [flags] MODEL.onnx\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	open, ok := runtimes[*rt]
	if !ok {
		fmt.Fprintf(os.Stderr, "fastestdet-map: -runtime %q is not available in this build (onnxq%s)\n", *rt, ortNote)
		os.Exit(2)
	}
	r, err := Evaluate(flag.Arg(0), *data, *split, *limit, func(m *graph.Model, path string) (runFunc, error) { return open(m, path, *threads) })
	if err != nil {
		fmt.Fprintln(os.Stderr, "fastestdet-map:", err)
		os.Exit(1)
	}
	fmt.Printf("images %d  classes %d  mAP50 %.2f  mAP50:95 %.2f\n", r.Images, r.Classes, 100*r.MAP50, 100*r.MAP)
}

// Result is the accuracy of one model on one split.
type Result struct {
	Images, Classes int
	MAP50, MAP      float64 // fractions; MAP averages IoU 0.50:0.05:0.95
}

// Evaluate runs the model on every image of the split and scores its
// detections against the labels.
func Evaluate(modelPath, dataDir, split string, limit int, open opener) (*Result, error) {
	m, err := graph.Load(modelPath)
	if err != nil {
		return nil, err
	}
	if len(m.Graph.Outputs) != 1 {
		return nil, fmt.Errorf("%s has %d outputs; FastestDet has one [1,85,22,22]", modelPath, len(m.Graph.Outputs))
	}
	run, err := open(m, modelPath)
	if err != nil {
		return nil, err
	}
	images, err := filepath.Glob(filepath.Join(dataDir, split, "*.jpg"))
	if err != nil {
		return nil, err
	}
	if len(images) == 0 {
		return nil, fmt.Errorf("no .jpg images in %s", filepath.Join(dataDir, split))
	}
	if limit > 0 && len(images) > limit {
		images = images[:limit]
	}
	inputs := dataset.InputsOf(m)
	var dets [][]Box
	var gts [][]Box
	for _, p := range images {
		w, h, err := imageSize(p)
		if err != nil {
			return nil, err
		}
		gt, err := readLabels(filepath.Join(dataDir, "labels", split, strings.TrimSuffix(filepath.Base(p), filepath.Ext(p))+".txt"), w, h)
		if err != nil {
			return nil, err
		}
		x, err := Preprocess(p, inputs)
		if err != nil {
			return nil, err
		}
		out, err := run(x)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		d, err := Decode(out, w, h, 0.001)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		dets = append(dets, NMS(d, 0.45, 100))
		gts = append(gts, gt)
	}
	ap50, ap, classes := MeanAP(dets, gts)
	return &Result{Images: len(images), Classes: classes, MAP50: ap50, MAP: ap}, nil
}

// runFunc runs the model on one sample and returns its one output.
type runFunc func(dataset.Sample) (*graph.Tensor, error)

// opener prepares a model (loaded, and its file) to run.
type opener func(m *graph.Model, path string) (runFunc, error)

// runtimes are the executors a model can run on: onnxq's own, and ONNX
// Runtime in builds with -tags ort (runtime_ort.go).
var runtimes = map[string]func(m *graph.Model, path string, threads int) (runFunc, error){
	"onnxq": func(m *graph.Model, _ string, threads int) (runFunc, error) {
		s, err := kernels.NewSession(m, kernels.Options{Threads: threads})
		if err != nil {
			return nil, err
		}
		return func(x dataset.Sample) (*graph.Tensor, error) {
			outs, err := s.Run(x)
			if err != nil {
				return nil, err
			}
			return outs[s.OutputNames()[0]], nil
		}, nil
	},
}

// ortNote completes the list of runtimes in an error message.
var ortNote = "; build with -tags ort for ort"

// Preprocess reads an image as FastestDet was trained on it: BGR, values
// in [0, 1], stretched bilinearly to the model's 352x352 input, NCHW. It is
// the loader `onnxq convert --calib DIR --image-channels BGR` uses.
func Preprocess(path string, inputs []dataset.Input) (dataset.Sample, error) {
	src, err := dataset.Open(path, inputs, dataset.Options{Image: dataset.ImageOptions{Channels: "BGR"}})
	if err != nil {
		return nil, err
	}
	return src.Sample(0)
}

func imageSize(path string) (int, int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	c, _, err := image.DecodeConfig(f)
	if err != nil {
		return 0, 0, fmt.Errorf("%s: %v", path, err)
	}
	return c.Width, c.Height, nil
}
