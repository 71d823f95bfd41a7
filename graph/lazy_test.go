package graph

import (
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// bigModel is smallModel with a 12000-byte initializer "big" (i/2 values).
func bigModel() (*Model, []float32) {
	m := smallModel()
	big := make([]float32, 3000)
	for i := range big {
		big[i] = float32(i) * 0.5
	}
	m.Graph.AddInitializer("big", Float32Tensor([]int{1000, 3}, big))
	return m, big
}

func TestLazyDataOnDemand(t *testing.T) {
	dir := t.TempDir()
	m, big := bigModel()
	path := filepath.Join(dir, "m.onnx")
	if err := SaveWith(m, path, SaveOptions{ExternalThreshold: 1024}); err != nil {
		t.Fatal(err)
	}
	m2, err := LoadWith(path, LoadOptions{LazyExternal: true})
	if err != nil {
		t.Fatal(err)
	}
	bt := m2.Graph.Value("big").Const
	if bt.Loaded() || !bt.Lazy() {
		t.Fatalf("loaded %v lazy %v right after a lazy load", bt.Loaded(), bt.Lazy())
	}
	// Readers in parallel read the file once and all see the data.
	var wg sync.WaitGroup
	got := make([][]float32, 8)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i] = bt.Float32s()
		}()
	}
	wg.Wait()
	for _, g := range got {
		if !reflect.DeepEqual(g, big) {
			t.Fatal("data read on demand differs")
		}
	}
	if &got[0][0] != &got[7][0] {
		t.Error("concurrent readers got separate copies")
	}
	if !bt.Release() || bt.Loaded() {
		t.Fatal("Release did not drop the data")
	}
	if !reflect.DeepEqual(bt.Float32s(), big) {
		t.Error("data read again after Release differs")
	}
	// A change made in place is what Save writes.
	bt.Float32s()[0] = 42
	out := filepath.Join(dir, "out.onnx")
	if err := Save(m2, out); err != nil {
		t.Fatal(err)
	}
	m3, err := Load(out)
	if err != nil {
		t.Fatal(err)
	}
	if v := m3.Graph.Value("big").Const.Float32s()[0]; v != 42 {
		t.Errorf("saved %v, not the value changed in memory", v)
	}
	// Materialize detaches: nothing to release after it.
	if err := bt.Materialize(); err != nil || bt.Lazy() || bt.Release() {
		t.Errorf("after Materialize: err %v lazy %v", err, bt.Lazy())
	}
	// In-memory tensors are never released.
	if w := m2.Graph.Value("W").Const; w.Lazy() || w.Release() || !w.Loaded() {
		t.Error("an inline tensor is lazy")
	}
}

// A data file that shrinks after the model was loaded is an error when the
// tensor is read, not a panic or zeros.
func TestLazyDataTruncatedLater(t *testing.T) {
	dir := t.TempDir()
	m, _ := bigModel()
	path := filepath.Join(dir, "m.onnx")
	if err := SaveWith(m, path, SaveOptions{ExternalThreshold: 1024}); err != nil {
		t.Fatal(err)
	}
	m2, err := LoadWith(path, LoadOptions{LazyExternal: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path+".data", 100); err != nil {
		t.Fatal(err)
	}
	err = m2.Graph.Value("big").Const.Load()
	if err == nil || !strings.Contains(err.Error(), `tensor "big"`) || !strings.Contains(err.Error(), "shorter") {
		t.Errorf("got %v", err)
	}
	if err := os.Remove(path + ".data"); err != nil {
		t.Fatal(err)
	}
	if err := m2.Graph.Value("big").Const.Load(); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("got %v", err)
	}
}

// Put streams a tensor out before the save; the save refers to those bytes,
// renames the temporary file into place, and the tensor reads from there.
func TestDataWriterPut(t *testing.T) {
	dir := t.TempDir()
	m, big := bigModel()
	path := filepath.Join(dir, "m.onnx")
	w, err := NewDataWriter(path, SaveOptions{})
	if err != nil {
		t.Fatal(err)
	}
	bt := m.Graph.Value("big").Const
	if err := w.Put(bt); err != nil {
		t.Fatal(err)
	}
	if bt.Loaded() || !bt.Lazy() {
		t.Fatal("Put kept the data in memory")
	}
	if !reflect.DeepEqual(bt.Float32s(), big) {
		t.Fatal("data read back from the temporary file differs")
	}
	bt.Release()
	if err := SaveWith(m, filepath.Join(dir, "other.onnx"), SaveOptions{Data: w}); err == nil {
		t.Error("a writer made for another path was accepted")
	}
	w2, _ := NewDataWriter(path, SaveOptions{})
	if err := w2.Put(bt); err != nil { // copies from w's file
		t.Fatal(err)
	}
	w.Abort()
	if err := SaveWith(m, path, SaveOptions{Data: w2}); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if !reflect.DeepEqual(names, []string{"m.onnx", "m.onnx.data"}) {
		t.Errorf("files %v (temporary files left behind?)", names)
	}
	if !reflect.DeepEqual(bt.Float32s(), big) {
		t.Error("the tensor does not read from the renamed file")
	}
	m2, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(m2.Graph.Value("big").Const.Float32s(), big) {
		t.Error("saved data differs")
	}
	if m2.Graph.Value("W").Const.src.GetDataLocation() != 0 {
		t.Error("a small tensor went external")
	}
}

func TestChunkedExternalData(t *testing.T) {
	dir := t.TempDir()
	m, big := bigModel()
	for i := 0; i < 4; i++ {
		m.Graph.AddInitializer("extra"+string(rune('a'+i)), Float32Tensor([]int{1000}, big[:1000]))
	}
	path := filepath.Join(dir, "m.onnx")
	// 4000-byte tensors in 10000-byte chunks: two per file (the second at
	// offset 4096); the 12000-byte one alone.
	if err := SaveWith(m, path, SaveOptions{ExternalThreshold: 1024, ChunkSize: 10000}); err != nil {
		t.Fatal(err)
	}
	m2, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"m.onnx.data.0", "m.onnx.data.1", "m.onnx.data.2"}
	if got := m2.ExternalFiles(); !reflect.DeepEqual(got, want) {
		t.Fatalf("files %v, want %v", got, want)
	}
	if !reflect.DeepEqual(m2.Graph.Value("big").Const.Float32s(), big) || !reflect.DeepEqual(m2.Graph.Value("extrad").Const.Float32s(), big[:1000]) {
		t.Error("chunked data differs")
	}
	// A save with fewer chunks removes the files the model no longer uses.
	if err := SaveWith(m2, path, SaveOptions{ExternalThreshold: 1024, ChunkSize: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	for _, f := range want[1:] {
		if _, err := os.Stat(filepath.Join(dir, f)); !os.IsNotExist(err) {
			t.Errorf("stale chunk %s kept", f)
		}
	}
	if _, err := NewDataWriter(path, SaveOptions{ChunkSize: -1}); err == nil {
		t.Error("negative chunk size accepted")
	}
}

// A model whose inline tensors would pass the protobuf limit is saved with
// external data without being asked.
func TestSaveGoesExternalPastTheLimit(t *testing.T) {
	defer func(l int64) { inlineLimit = l }(inlineLimit)
	inlineLimit = 8000
	dir := t.TempDir()
	m, big := bigModel()
	path := filepath.Join(dir, "m.onnx")
	if err := Save(m, path); err != nil {
		t.Fatal(err)
	}
	m2, err := LoadWith(path, LoadOptions{LazyExternal: true})
	if err != nil {
		t.Fatal(err)
	}
	if !m2.Graph.Value("big").Const.Lazy() || m2.Graph.Value("W").Const.Lazy() {
		t.Error("not the large tensors external")
	}
	if !reflect.DeepEqual(m2.Graph.Value("big").Const.Float32s(), big) {
		t.Error("data differs")
	}
	inlineLimit = 1 << 30
	if err := Save(m, filepath.Join(dir, "small.onnx")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "small.onnx.data")); !os.IsNotExist(err) {
		t.Error("a model under the limit went external")
	}
}

// FuzzExternalRef: whatever a tensor's external_data entries say, loading
// either fails with an error or reads exactly the 16 bytes at the offset.
func FuzzExternalRef(f *testing.F) {
	f.Add("w.bin", "0", "16", 16)
	f.Add("w.bin", "8", "16", 24)
	f.Add("../w.bin", "", "", 16)
	f.Add("w.bin", "-1", "16", 16)
	f.Add("w.bin", "9223372036854775807", "16", 16)
	f.Add("sub/../w.bin", "4", "", 20)
	f.Fuzz(func(t *testing.T, loc, off, length string, size int) {
		if size < 0 || size > 256 {
			return
		}
		kv := map[string]string{"location": loc, "offset": off, "length": length}
		for k, v := range kv {
			if v == "" {
				delete(kv, k)
			}
		}
		path := externalModel(t, kv, size)
		dataFile := filepath.Join(filepath.Dir(path), "w.bin")
		content := make([]byte, size)
		for i := range content {
			content[i] = byte(i + 1)
		}
		if err := os.WriteFile(dataFile, content, 0o644); err != nil {
			t.Fatal(err)
		}
		for _, lazy := range []bool{false, true} {
			m, err := LoadWith(path, LoadOptions{LazyExternal: lazy})
			if err != nil {
				continue
			}
			w := m.Graph.Value("w").Const
			if err := w.Load(); err != nil {
				t.Fatalf("checked at load, failed to read: %v", err)
			}
			got := RawBytes(w)
			o := 0
			if off != "" {
				o64, err := strconv.ParseInt(off, 10, 64)
				if err != nil {
					t.Fatalf("offset %q accepted", off)
				}
				o = int(o64)
			}
			if o < 0 || o+16 > size || string(got) != string(content[o:o+16]) {
				t.Fatalf("read %v at offset %d of %d bytes", got, o, size)
			}
		}
	})
}
