package kernels

import (
	"math"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/internal/testdata"
	"github.com/onnxq/onnxq/testmodels"
)

// TestFusionIsExact runs models with and without elementwise fusion: the fused
// programs compute each element with the same float32 operations in the same
// order, so outputs must be identical, and fusion must remove steps.
func TestFusionIsExact(t *testing.T) {
	type tc struct {
		name  string
		model *graph.Model
		input string
		shape []int
	}
	// MobileNetV2: depthwise and pointwise convolutions with BatchNormalization
	// and Relu6 as epilogues, on maps 112 to 7 wide.
	cases := []tc{{"convbnrelu", testmodels.ConvBNReLU(5), "input", []int{1, 3, 32, 32}},
		{"mobilenetv2", testmodels.MobileNetV2(1), "input", []int{1, 3, 224, 224}}}
	for _, k := range []string{"det", "cls"} {
		m, err := graph.Load(testdata.OCRModel(t, k))
		if err != nil {
			t.Fatal(err)
		}
		shape := map[string][]int{"det": {1, 3, 320, 320}, "cls": {1, 3, 48, 192}}[k]
		cases = append(cases, tc{k, m, "x", shape})
	}
	for _, c := range cases {
		h, w := c.shape[2], c.shape[3]
		in := map[string]*graph.Tensor{c.input: testdata.ImageNetNormalized(testdata.TextImage(h, w, 4), h, w)}
		fused, err := NewSession(c.model, Options{Threads: 2})
		if err != nil {
			t.Fatal(err)
		}
		plain, err := NewSession(c.model, Options{Threads: 2, NoFusion: true})
		if err != nil {
			t.Fatal(err)
		}
		if len(fused.steps) >= len(plain.steps) {
			t.Errorf("%s: fusion removed no steps (%d)", c.name, len(plain.steps))
		}
		t.Logf("%s: %d steps unfused, %d fused", c.name, len(plain.steps), len(fused.steps))
		a, err := fused.Run(in)
		if err != nil {
			t.Fatal(err)
		}
		b, err := plain.Run(in)
		if err != nil {
			t.Fatal(err)
		}
		for name, x := range b {
			got, want := a[name].Float32s(), x.Float32s()
			for i := range want {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
					t.Fatalf("%s: output %q[%d] = %v fused, %v unfused", c.name, name, i, got[i], want[i])
				}
			}
		}
		// A second run reuses pooled buffers and must give the same result.
		a2, _ := fused.Run(in)
		for name := range b {
			if a2[name].Float32s()[0] != a[name].Float32s()[0] {
				t.Errorf("%s: second run differs", c.name)
			}
		}
	}
}
