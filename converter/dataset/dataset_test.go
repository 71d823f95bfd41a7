package dataset

import (
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/npy"
	"google.golang.org/protobuf/proto"
)

var imgInput = []Input{{Name: "x", DType: graph.Float, Dims: []int64{1, 3, 4, 6}}}

func writeNpy(t *testing.T, path string, shape []int, v float32) {
	t.Helper()
	x := graph.NewTensor(graph.Float, shape)
	for i, d := 0, x.Float32s(); i < len(d); i++ {
		d[i] = v
	}
	if err := npy.WriteFile(path, x); err != nil {
		t.Fatal(err)
	}
}

func TestNpyFolderSortedAndLimited(t *testing.T) {
	dir := t.TempDir()
	for i, name := range []string{"c.npy", "a.npy", "b.npy"} {
		writeNpy(t, filepath.Join(dir, name), []int{1, 3, 4, 6}, float32(i))
	}
	os.WriteFile(filepath.Join(dir, "README.txt"), []byte("ignored"), 0o644)
	src, err := Open(dir, imgInput, Options{Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	if src.Len() != 2 {
		t.Fatalf("%d samples", src.Len())
	}
	s, _ := src.Sample(0) // a.npy was written second: value 1
	if v := s["x"].Float32s()[0]; v != 1 {
		t.Errorf("first sample %v, want a.npy's 1", v)
	}
}

func TestMultiInputFolderAndList(t *testing.T) {
	dir := t.TempDir()
	inputs := []Input{{Name: "a", DType: graph.Float, Dims: []int64{-1, 2}}, {Name: "b", DType: graph.Float, Dims: []int64{3}}}
	for _, in := range []string{"a", "b"} {
		os.MkdirAll(filepath.Join(dir, in), 0o755)
	}
	for i := 0; i < 3; i++ {
		writeNpy(t, filepath.Join(dir, "a", "s"+string(rune('0'+i))+".npy"), []int{i + 1, 2}, float32(i))
		writeNpy(t, filepath.Join(dir, "b", "s"+string(rune('0'+i))+".npy"), []int{3}, float32(10+i))
	}
	src, err := Open(dir, inputs, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s, _ := src.Sample(2)
	if src.Len() != 3 || s["a"].Shape[0] != 3 || s["b"].Float32s()[0] != 12 {
		t.Errorf("len %d, sample 2 %v %v", src.Len(), s["a"].Shape, s["b"].Float32s())
	}
	list := filepath.Join(dir, "input_list.txt")
	os.WriteFile(list, []byte("# QNN style\nb:b/s1.npy a:a/s0.npy\n\na:a/s2.npy b:b/s2.npy\n"), 0o644)
	src, err = Open(list, inputs, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s, _ = src.Sample(0)
	if src.Len() != 2 || s["b"].Float32s()[0] != 11 || s["a"].Shape[0] != 1 {
		t.Errorf("list: len %d", src.Len())
	}
}

func TestRawFiles(t *testing.T) {
	dir := t.TempDir()
	b := make([]byte, 4*6)
	for i := 0; i < 6; i++ {
		bits := math.Float32bits(float32(i))
		b[4*i], b[4*i+1], b[4*i+2], b[4*i+3] = byte(bits), byte(bits>>8), byte(bits>>16), byte(bits>>24)
	}
	os.WriteFile(filepath.Join(dir, "0.bin"), b, 0o644)
	in := []Input{{Name: "x", DType: graph.Float, Dims: []int64{2, 3}}}
	src, err := Open(dir, in, Options{RawShape: []int{2, 3}, RawType: graph.Float})
	if err != nil {
		t.Fatal(err)
	}
	s, _ := src.Sample(0)
	if got := s["x"].Float32s(); got[5] != 5 {
		t.Errorf("raw %v", got)
	}
	if _, err := Open(dir, in, Options{}); err == nil || !strings.Contains(err.Error(), "raw files need a declared shape") {
		t.Errorf("undeclared raw: %v", err)
	}
}

func TestImages(t *testing.T) {
	dir := t.TempDir()
	// 8x12 image: left half red, right half blue.
	img := image.NewRGBA(image.Rect(0, 0, 12, 8))
	for y := 0; y < 8; y++ {
		for x := 0; x < 12; x++ {
			c := color.RGBA{255, 0, 0, 255}
			if x >= 6 {
				c = color.RGBA{0, 0, 255, 255}
			}
			img.Set(x, y, c)
		}
	}
	f, _ := os.Create(filepath.Join(dir, "img.png"))
	png.Encode(f, img)
	f.Close()
	src, err := Open(dir, imgInput, Options{Image: ImageOptions{Channels: "BGR", Mean: []float32{0.5}, Std: []float32{0.5}}})
	if err != nil {
		t.Fatal(err)
	}
	s, err := src.Sample(0)
	if err != nil {
		t.Fatal(err)
	}
	x := s["x"]
	if x.Shape[1] != 3 || x.Shape[2] != 4 || x.Shape[3] != 6 {
		t.Fatalf("shape %v", x.Shape)
	}
	// BGR: channel 0 is blue. Pixel (0,0) is red: blue -1, red +1. Pixel (0,5) is blue.
	at := func(c, y, xx int) float32 { return x.Float32s()[(c*4+y)*6+xx] }
	if at(0, 0, 0) != -1 || at(2, 0, 0) != 1 || at(0, 0, 5) != 1 || at(2, 0, 5) != -1 {
		t.Errorf("BGR normalized values %v %v %v %v", at(0, 0, 0), at(2, 0, 0), at(0, 0, 5), at(2, 0, 5))
	}
	// NHWC gray with a short-side resize and center crop.
	gray := []Input{{Name: "x", DType: graph.Float, Dims: []int64{1, 4, 4, 1}}}
	src, err = Open(dir, gray, Options{Image: ImageOptions{Channels: "GRAY", Layout: "NHWC", ShortSide: 4, Resize: "nearest", Scale: 1}})
	if err != nil {
		t.Fatal(err)
	}
	s, _ = src.Sample(0)
	// 8x12 -> 4x6 -> crop cols 1..4: red (76.2) then blue (29.1) at the middle.
	g := s["x"].Float32s()
	if math.Abs(float64(g[0])-76.245) > 0.01 || math.Abs(float64(g[3])-29.07) > 0.01 {
		t.Errorf("gray row %v", g[:4])
	}
}

func TestBadData(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	os.MkdirAll(empty, 0o755)
	wrong := filepath.Join(dir, "wrong")
	os.MkdirAll(wrong, 0o755)
	writeNpy(t, filepath.Join(wrong, "0.npy"), []int{1, 3, 5, 6}, 0)
	broken := filepath.Join(dir, "broken")
	os.MkdirAll(broken, 0o755)
	os.WriteFile(filepath.Join(broken, "x.png"), []byte("not a png"), 0o644)
	list := filepath.Join(dir, "list.txt")
	os.WriteFile(list, []byte("y:a.npy\n"), 0o644)
	cases := map[string]string{
		empty:                         "holds no samples",
		wrong:                         "0.npy: input \"x\" expects shape [1 3 4 6], the file holds [1 3 5 6]",
		broken:                        "x.png: not a readable PNG or JPEG image",
		list:                          "list.txt:1: no file for input \"x\"",
		filepath.Join(dir, "missing"): "no such file or directory",
	}
	for path, want := range cases {
		if _, err := Open(path, imgInput, Options{}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", filepath.Base(path), err, want)
		}
	}
}

// FuzzList feeds arbitrary list files to Open: no panic, and any accepted list
// yields readable samples.
func FuzzList(f *testing.F) {
	f.Add("a:x.npy b:x.npy\n")
	f.Add("# comment\n\nx.npy\n")
	f.Add("a:../x.npy b:/abs/x.npy\nb:x.npy a:x.npy\n")
	f.Add("a:x.npy a:x.npy\n")
	dir := f.TempDir()
	x := graph.NewTensor(graph.Float, []int{2})
	if err := npy.WriteFile(filepath.Join(dir, "x.npy"), x); err != nil {
		f.Fatal(err)
	}
	inputs := []Input{{Name: "a", DType: graph.Float, Dims: []int64{2}}, {Name: "b", DType: graph.Float, Dims: []int64{-1}}}
	f.Fuzz(func(t *testing.T, list string) {
		p := filepath.Join(t.TempDir(), "list.txt")
		if err := os.WriteFile(p, []byte(list), 0o644); err != nil {
			t.Fatal(err)
		}
		src, err := Open(p, inputs, Options{})
		if err != nil {
			return
		}
		for i := 0; i < src.Len(); i++ {
			if _, err := src.Sample(i); err != nil {
				t.Fatalf("accepted list, sample %d unreadable: %v", i, err)
			}
		}
	})
}

// TestReadAhead: with ReadAhead a source gives every sample as without,
// taken in order, out of order, again from the start, and one that fails
// to read fails in its own turn with the same error; with a window of three
// (KeepAhead), to readers side by side too.
func TestReadAhead(t *testing.T) {
	dir := t.TempDir()
	for i := 0; i < 6; i++ {
		writeNpy(t, filepath.Join(dir, fmt.Sprintf("s%d.npy", i)), []int{1, 3, 4, 6}, float32(i))
	}
	writeNpy(t, filepath.Join(dir, "s6.npy"), []int{1, 3, 4, 6}, 6)
	src, err := Open(dir, imgInput, Options{ReadAhead: true})
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := Open(dir, imgInput, Options{})
	// Broken after Open: its read fails.
	if err := os.WriteFile(filepath.Join(dir, "s6.npy"), []byte("not npy"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{0, 1, 2, 5, 3, 4, 0, 1, 1, 6, 2, 6} {
		got, gerr := src.Sample(i)
		want, werr := plain.Sample(i)
		if (werr != nil) != (i == 6) {
			t.Fatalf("sample %d: error %v", i, werr)
		}
		if (gerr == nil) != (werr == nil) || gerr != nil && gerr.Error() != werr.Error() {
			t.Fatalf("sample %d: error %v, want %v", i, gerr, werr)
		}
		if werr == nil && got["x"].Float32s()[0] != want["x"].Float32s()[0] {
			t.Fatalf("sample %d: %v, want %v", i, got["x"].Float32s()[0], want["x"].Float32s()[0])
		}
	}
	// Three readers side by side claiming the samples in turn, with a
	// window of three, twice over: each sample as without read-ahead.
	wide, _ := Open(dir, imgInput, Options{ReadAhead: true})
	KeepAhead(wide, 3)
	for pass := 0; pass < 2; pass++ {
		var next atomic.Int64
		var wg sync.WaitGroup
		errs := make([]string, 7)
		for range 3 {
			wg.Go(func() {
				for {
					i := int(next.Add(1) - 1)
					if i >= 7 {
						return
					}
					got, err := wide.Sample(i)
					switch {
					case (err != nil) != (i == 6):
						errs[i] = fmt.Sprintf("sample %d: error %v", i, err)
					case err == nil && got["x"].Float32s()[0] != float32(i):
						errs[i] = fmt.Sprintf("sample %d: %v", i, got["x"].Float32s()[0])
					}
				}
			})
		}
		wg.Wait()
		for _, e := range errs {
			if e != "" {
				t.Fatalf("pass %d: %s", pass, e)
			}
		}
	}
}

// writePB writes x as a serialized TensorProto.
func writePB(t *testing.T, path string, x *graph.Tensor) {
	t.Helper()
	b, err := proto.Marshal(x.ToProto())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestONNXTestDataLayout: a model folder of the ONNX model zoo (model.onnx
// beside test_data_set_N/input_K.pb and output_K.pb) is a calibration set:
// a sample per folder, input_K the K-th input, the outputs left out; a lone
// .pb file is one sample, and a .pb of the wrong shape is refused by name.
func TestONNXTestDataLayout(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "model.onnx"), []byte("not read"), 0o644)
	inputs := []Input{{Name: "image", DType: graph.Float, Dims: []int64{1, 2}}, {Name: "scale", DType: graph.Int64, Dims: []int64{1}}}
	for i := 0; i < 3; i++ {
		set := filepath.Join(dir, fmt.Sprintf("test_data_set_%d", i))
		writePB(t, filepath.Join(set, "input_0.pb"), graph.Float32Tensor([]int{1, 2}, []float32{float32(i), 1}))
		writePB(t, filepath.Join(set, "input_1.pb"), graph.Int64Tensor([]int{1}, []int64{int64(10 + i)}))
		writePB(t, filepath.Join(set, "output_0.pb"), graph.Float32Tensor([]int{3}, []float32{1, 2, 3}))
	}
	src, err := Open(dir, inputs, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := src.Sample(2)
	if err != nil {
		t.Fatal(err)
	}
	if src.Len() != 3 || s["image"].Float32s()[0] != 2 || s["scale"].Int64s()[0] != 12 {
		t.Errorf("len %d, sample 2: %v %v", src.Len(), s["image"], s["scale"])
	}
	one := []Input{inputs[0]}
	src, err = Open(filepath.Join(dir, "test_data_set_1", "input_0.pb"), one, Options{})
	if err != nil || src.Len() != 1 {
		t.Fatalf("a lone .pb: %v", err)
	}
	// One input: the sample folders still give the samples.
	only := t.TempDir()
	for i := 0; i < 2; i++ {
		writePB(t, filepath.Join(only, fmt.Sprintf("test_data_set_%d", i), "input_0.pb"), graph.Float32Tensor([]int{1, 2}, []float32{5, 6}))
	}
	if src, err = Open(only, one, Options{}); err != nil || src.Len() != 2 {
		t.Fatalf("one input: %v", err)
	}
	writePB(t, filepath.Join(only, "test_data_set_1", "input_0.pb"), graph.Float32Tensor([]int{2, 2}, []float32{5, 6, 7, 8}))
	if _, err := Open(only, one, Options{}); err == nil || !strings.Contains(err.Error(), `input_0.pb: input "image" expects shape [1 2], the file holds [2 2]`) {
		t.Errorf("wrong shape: %v", err)
	}
}
