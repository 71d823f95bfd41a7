package main

import (
	"fmt"

	"github.com/onnxq/onnxq/diagnose"
	"github.com/onnxq/onnxq/tune"
)

// reportData is what the HTML report and the plots render (the report
// package lands separately; until then only JSON and CSV are written).
type reportData struct{ res *diagnose.Result }

func compareReport(res *diagnose.Result, ref, test string) *reportData { return &reportData{res} }

func sensitivityReport(res *diagnose.SensitivityResult, model string) *reportData {
	return &reportData{}
}

func tuneReport(res *tune.Result, model string) *reportData { return &reportData{} }

func writeHTMLReport(path string, d *reportData) error {
	return fmt.Errorf("%s: the HTML report is not built into this binary yet", path)
}

func writePlots(dir string, d *reportData) error {
	return fmt.Errorf("%s: plots are not built into this binary yet", dir)
}
