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
	runtimes["ort"] = func(_ *graph.Model, path string, threads int) (runFunc, error) {
		if err := ortref.InitBundled(); err != nil {
			return nil, err
		}
		s, err := ortref.NewSession(path, max(threads, 1))
		if err != nil {
			return nil, err
		}
		return func(x dataset.Sample) (*graph.Tensor, error) {
			outs, err := s.Run(x)
			if err != nil {
				return nil, err
			}
			for _, t := range outs {
				return t, nil
			}
			return nil, fmt.Errorf("ONNX Runtime returned no output")
		}, nil
	}
}
