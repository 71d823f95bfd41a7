//go:build ort

package main

import (
	"fmt"

	"github.com/onnxq/onnxq/converter/dataset"
	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/internal/ortref"
)

func init() {
	ortNote = ", ort"
	runtimes["ort"] = func(path string, threads int) (runFunc, error) {
		if err := ortref.InitBundled(); err != nil {
			return nil, err
		}
		m, err := graph.Load(path)
		if err != nil {
			return nil, err
		}
		ins := dataset.InputsOf(m)
		if len(ins) != 1 {
			return nil, fmt.Errorf("%s has %d data inputs; PaddleOCR's rec and cls have one", path, len(ins))
		}
		s, err := ortref.NewSession(path, max(threads, 1))
		if err != nil {
			return nil, err
		}
		return func(x *graph.Tensor) (*graph.Tensor, error) {
			outs, err := s.Run(map[string]*graph.Tensor{ins[0].Name: x})
			if err != nil {
				return nil, err
			}
			if len(outs) != 1 {
				return nil, fmt.Errorf("ONNX Runtime returned %d outputs, want 1", len(outs))
			}
			for _, t := range outs {
				return t, nil
			}
			return nil, nil
		}, nil
	}
}
