package converter

import (
	"context"
	"testing"

	"github.com/onnxq/onnxq/converter/calib"
	"github.com/onnxq/onnxq/internal/testdata"
)

func TestTmpCPU(t *testing.T) {
	if _, err := Convert(context.Background(), Options{Model: testdata.OCRModel(t, "rec"), Output: t.TempDir() + "/q.onnx", Calib: "/tmp/recal", Observer: calib.Config{Kind: "entropy"}}); err != nil {
		t.Fatal(err)
	}
}
