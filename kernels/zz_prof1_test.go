package kernels

import (
	"fmt"
	"math/rand"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/testmodels"
)

func TestZZProf1(t *testing.T) {
	var m *graph.Model
	var err error
	if z := os.Getenv("ZZZ"); z != "" {
		m, err = testmodels.Build(z, 1)
	} else {
		m, err = graph.Load(os.Getenv("ZZM"))
	}
	if err != nil {
		t.Fatal(err)
	}
	var shape []int
	for _, f := range strings.Split(os.Getenv("ZZS"), ",") {
		v, _ := strconv.Atoi(f)
		shape = append(shape, v)
	}
	if len(shape) < 2 {
		shape = []int{1, 1}
	}
	x := graph.NewTensor(graph.Float, shape)
	r := rand.New(rand.NewSource(1))
	for i := range x.Float32s() {
		x.Float32s()[i] = r.Float32()*2 - 1
	}
	th, _ := strconv.Atoi(os.Getenv("ZZTH"))
	s, _ := NewSession(m, Options{Threads: max(1, th)})
	in := map[string]*graph.Tensor{s.Inputs()[0].Name: x}
	if z := os.Getenv("ZZZ"); z != "" {
		smp, _ := testmodels.Samples(z, m, 1, 1)
		in = smp[0]
	}
	var ds []time.Duration
	for i := 0; i < 300; i++ {
		t0 := time.Now()
		o, _ := s.Run(in)
		ds = append(ds, time.Since(t0))
		s.Recycle(o)
	}
	fmt.Printf("median %.3f ms\n", us(medianOf(ds[50:]))/1e3)
}
