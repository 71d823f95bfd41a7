package overrides

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestConfig(t *testing.T) {
	c, err := LoadConfig("testdata/run.toml")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Model != filepath.Join("testdata", "model.onnx") || c.Threads != 2 || c.Calib.Size != 32 || c.Calib.Image.Resize != "bicubic" || c.Calib.Image.Channels != "BGR" ||
		len(c.Calib.Image.Mean) != 3 || c.Observer.Kind != "percentile" || c.Observer.Percentile != 99.999 || !c.Quant.BiasCorrection || !c.Passes.CLE ||
		c.Report.Encodings != filepath.Join("testdata", "encodings.json") {
		t.Errorf("decoded %+v", c)
	}
	// What the file leaves out keeps the defaults.
	if c.Observer.Bins != 2048 || c.Calib.Image.Layout != "NCHW" || c.Quant.WeightGranularity != PerChannel || c.Quant.BiasType != "int32" {
		t.Errorf("defaults lost: %+v", c)
	}
	f, err := c.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	if f.OpTypes["Softmax"].ActivationDType != "uint16" || f.Nodes["/blocks.*/conv"].WeightDType != "int4" ||
		f.Tensors["relu6.out"].Max[0] != 6 || !f.Tensors["logits"].Float || f.Skip.OpTypes[0] != "Sigmoid" {
		t.Errorf("embedded overrides %+v", f)
	}
	// The printed config reads back to the same settings.
	b, err := c.TOML()
	if err != nil {
		t.Fatal(err)
	}
	d, err := ParseConfig(b, "printed")
	if err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	b2, _ := d.TOML()
	if string(b) != string(b2) {
		t.Errorf("print is not stable:\n%s\n---\n%s", b, b2)
	}
	g, err := d.Embedded()
	if err != nil || g.Tensors["relu6.out"].Min[0] != 0 || g.Nodes["/blocks.*/conv"].WeightDType != "int4" {
		t.Errorf("embedded overrides after printing: %v %+v", err, g)
	}
}

// TestConfigErrors: each mistake names the key and the line it is on.
func TestConfigErrors(t *testing.T) {
	cases := map[string]string{
		"[observer]\nkind = \"kl\"\n":                                                  `cfg:2: observer.kind: "kl" is not one of minmax, percentile, entropy, mse`,
		"threads = 1\n[observer]\npercentil = 99.9\n":                                  `cfg:3: observer.percentil: unknown key`,
		"[quantization]\nweight_type = 8\n":                                            `cfg:2: quantization.weight_type`,
		"[quantization]\nweight_granularity = \"per_block\"\n":                         `cfg:1: quantization.weight_block_size: per_block needs a block size`,
		"[calib.image]\nsize = \"224\"\n":                                              `cfg:2: calib.image.size: "224" is not HxW`,
		"[calib]\nraw_type = \"float33\"\n":                                            `cfg:2: calib.raw_type`,
		"a = [1,\n":                                                                    `cfg: line 1: array is incomplete`,
		"[overrides.tensors]\nx = { min = 3.0, max = 1.0 }\n":                          `cfg:2: overrides.tensors.x.min: 3 is above max 1`,
		"[overrides.nodes.\"conv.1\"]\nweight_dtype = \"int3\"\n":                      `cfg:2: overrides.nodes."conv.1".weight_dtype: "int3" is not supported`,
		"[overrides]\nbogus = 1\n":                                                     `cfg:2: overrides.bogus: unknown key`,
		"[rounding]\nmethod = \"gptx\"\n":                                              `cfg:2: rounding.method: "gptx" is not one of nearest, gptq, awq, adaround, hqq`,
		"[rounding]\nbits = 9\n":                                                       `cfg:2: rounding.bits: 9 is not in 2..7`,
		"[quantization]\nruntime = \"tensorrt\"\n":                                     `cfg:2: quantization.runtime: "tensorrt" is not one of generic, ort, ort-vnni`,
		"[rounding]\ngptq_damp = 0.0\n":                                                `cfg:2: rounding.gptq_damp: 0 is not in (0, 1]`,
		"[overrides.op_types.MatMul]\nweight_range = \"max\"\n":                        `cfg:2: overrides.op_types.MatMul.weight_range: "max" is not one of minmax, mse`,
		"overrides_file = \"q.json\"\n[overrides.defaults]\nweight_dtype = \"int4\"\n": `cfg:1: overrides_file: conflicts with the [overrides] table`,
		"threads = 1\nexternal_data_chunk = \"12XB\"\n":                                `cfg:2: external_data_chunk: "12XB" is not a size`,
		"external_data_chunk = -5\n":                                                   `cfg:1: external_data_chunk: "-5" is not a size`,
		"external_data_chunk = true\n":                                                 `cfg:1: external_data_chunk: "true" is not a size`,
		"external_data_chunk = [1]\n":                                                  `cfg:1: external_data_chunk`,
	}
	for in, want := range cases {
		c, err := ParseConfig([]byte(in), "cfg")
		if err == nil {
			err = c.Validate()
		}
		if err == nil {
			_, err = c.Embedded()
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q:\n got %v\nwant %q", in, err, want)
		}
	}
	c, _ := ParseConfig([]byte("[observer]\nbins = 4\n"), "cfg")
	var ce *ConfigError
	if err := c.Validate(); !errors.As(err, &ce) || ce.Key != "observer.bins" || ce.Line != 2 {
		t.Errorf("ConfigError %+v", err)
	}
}

func TestParseByteSize(t *testing.T) {
	for in, want := range map[string]int64{"1500": 1500, "64KiB": 64 << 10, "1.5GiB": 3 << 29, "2GB": 2e9, "512 MB": 512e6, "10B": 10} {
		if got, err := ParseByteSize(in); err != nil || got != want {
			t.Errorf("%q: %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "GB", "-1MB", "0", "12XB", "1e30GB", "NaN"} {
		if _, err := ParseByteSize(in); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}

// TestConfigExternalDataChunk: external_data_chunk takes bytes as an integer
// or a string with a unit, is absent (0) by default, and prints back to the
// same size.
func TestConfigExternalDataChunk(t *testing.T) {
	for in, want := range map[string]int64{"": 0, "external_data_chunk = 1500000\n": 1500000, "external_data_chunk = \"2GB\"\n": 2e9, "external_data_chunk = \"64KiB\"\n[observer]\nbins = 512\n": 64 << 10} {
		c, err := ParseConfig([]byte(in), "cfg")
		if err == nil {
			err = c.Validate()
		}
		if err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		if got, err := c.ExternalDataChunk.Bytes(); err != nil || got != want {
			t.Errorf("%q: %d, %v; want %d", in, got, err, want)
		}
		b, err := c.TOML()
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), "external_data_chunk") != (want > 0) {
			t.Errorf("%q printed as\n%s", in, b)
		}
		d, err := ParseConfig(b, "printed")
		if err == nil {
			err = d.Validate()
		}
		if err != nil {
			t.Fatalf("%q printed: %v\n%s", in, err, b)
		}
		if got, _ := d.ExternalDataChunk.Bytes(); got != want {
			t.Errorf("%q printed and read back: %d, want %d\n%s", in, got, want, b)
		}
	}
}

func FuzzParseConfig(f *testing.F) {
	b, err := os.ReadFile("testdata/run.toml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte("[overrides.tensors]\nx = { min = 3.0, max = 1.0 }\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseConfig(b, "fuzz")
		if err != nil {
			return
		}
		if c.Validate() != nil {
			return
		}
		if _, err := c.Embedded(); err != nil {
			return
		}
		// What is valid prints and reads back.
		out, err := c.TOML()
		if err != nil {
			t.Fatalf("print: %v", err)
		}
		d, err := ParseConfig(out, "printed")
		if err != nil {
			t.Fatalf("re-read: %v\n%s", err, out)
		}
		if err := d.Validate(); err != nil {
			t.Fatalf("re-validate: %v\n%s", err, out)
		}
	})
}

// TestExampleConfig: the run config make demo uses is valid.
func TestExampleConfig(t *testing.T) {
	c, err := LoadConfig("../examples/demo.toml")
	if err == nil {
		err = c.Validate()
	}
	if err == nil {
		_, err = c.Embedded()
	}
	if err != nil {
		t.Fatal(err)
	}
}
