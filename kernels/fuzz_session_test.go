package kernels

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/onnxq/onnxq/graph"
)

// FuzzSession compiles and runs arbitrary model bytes: NewSession and Run
// may fail, but never panic (a kernel's factory runs outside Run's recover,
// so a bad attribute or subgraph must be an error there). Inputs are zeros
// of the declared shapes (unknown dimensions 1), small enough to run.
func FuzzSession(f *testing.F) {
	for _, name := range []string{"test_if", "test_loop11", "test_scan9_sum", "test_sequence_map_add_2_sequences", "test_split_to_sequence_1",
		"test_gridsample_bicubic", "test_roialign_aligned_true", "test_nonmaxsuppression_center_point_box_format", "test_stft", "test_dft",
		"test_convtranspose_3d", "test_unique_sorted_with_axis", "test_tfidfvectorizer_tf_uniandbigrams_skip5", "test_optional_get_element_sequence",
		"test_conv_with_strides_padding", "test_maxunpool_export_with_output_shape", "test_nllloss_NCd1d2d3_none_no_weight_negative_ii"} {
		if b, err := os.ReadFile(filepath.Join("/usr/share/libonnx-testdata/data/node", name, "model.onnx")); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := graph.Decode(data, t.TempDir(), graph.LoadOptions{})
		if err != nil {
			return
		}
		s, err := NewSession(m, Options{Threads: 1})
		if err != nil {
			return
		}
		in := map[string]*graph.Tensor{}
		for _, spec := range s.Inputs() {
			if spec.DType == graph.Undefined || spec.DType == graph.String || !spec.DType.Known() {
				return
			}
			shape := make([]int, len(spec.Dims))
			for i, d := range spec.Dims {
				shape[i] = int(max(1, min(d, 64)))
			}
			if graph.Numel(shape) > 1<<16 {
				return
			}
			in[spec.Name] = graph.NewTensor(spec.DType, shape)
		}
		_, _ = s.Run(in)
	})
}
