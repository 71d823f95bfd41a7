package kernels

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// BenchmarkZooStepScaling shows where a second thread pays and where it
// costs: zoo models (ZOO_SCALING, comma-separated; default resnet20 and
// squeezenet) run at 1 and 2 threads in one process, ten runs of each in
// turn per iteration, back to back as calibration runs them, profiled; it
// prints each step's median at both thread counts and their ratio, and
// reports the run medians. Medians per step, not a 2-thread run's total,
// are what tell a step that lost its speed at 2 threads (a layer whose
// input the other thread wrote, a pass over another thread's lines) from
// noise.
func BenchmarkZooStepScaling(b *testing.B) {
	names := []string{"resnet20", "squeezenet"}
	if v := os.Getenv("ZOO_SCALING"); v != "" {
		names = strings.Split(v, ",")
	}
	for _, name := range names {
		b.Run(name, func(b *testing.B) {
			var runs [2][]time.Duration
			s1, in := zooSessionWith(b, name, Options{Threads: 1, Profile: true})
			s2, _ := zooSessionWith(b, name, Options{Threads: 2, Profile: true})
			ss := [2]*Session{s1, s2}
			for i := -1; i < b.N; i++ {
				for t, s := range ss {
					for r := 0; r < 10; r++ {
						t0 := time.Now()
						out, err := s.Run(in)
						if err != nil {
							b.Fatal(err)
						}
						if i >= 0 {
							runs[t] = append(runs[t], time.Since(t0))
						}
						s.Recycle(out)
					}
					if i < 0 { // the warm-up block
						s.ResetProfile()
					}
				}
			}
			one, two := stepMedians(ss[0].Profile()), stepMedians(ss[1].Profile())
			var sb strings.Builder
			fmt.Fprintf(&sb, "%-52s %9s %9s %6s\n", "step", "1T us", "2T us", "1T/2T")
			for i, st := range one {
				a, c := st.med, two[i].med
				mark := ""
				if c > a {
					mark = "  slower at 2 threads"
				}
				fmt.Fprintf(&sb, "%-52.52s %9.1f %9.1f %6.2f%s\n", st.name, us(a), us(c), a.Seconds()/c.Seconds(), mark)
			}
			// Printed, not logged: the testing package cuts a benchmark's
			// log after ten lines.
			var regions, helped int64
			for _, r := range ss[1].Profile().Runs {
				regions, helped = regions+r.Regions, helped+r.Helped
			}
			// A loop no worker joined took its 1-thread time (the VM did
			// not run the worker's vCPU then): a low share explains a
			// 2-thread column close to the 1-thread one.
			fmt.Fprintf(&sb, "2 threads: a worker took part in %d of %d parallel loops (%.0f%%)\n", helped, regions, 100*float64(helped)/float64(max(1, regions)))
			fmt.Printf("%s, medians of %d runs a thread count:\n%s", name, len(runs[0]), sb.String())
			m1, m2 := medianOf(runs[0]), medianOf(runs[1])
			b.ReportMetric(m1.Seconds()*1e3, "1T-ms")
			b.ReportMetric(m2.Seconds()*1e3, "2T-ms")
			b.ReportMetric(m1.Seconds()/m2.Seconds(), "speedup")
		})
	}
}

type stepMedian struct {
	name string
	med  time.Duration
}

// stepMedians is each profiled step's median time, in step order.
func stepMedians(p *Profile) []stepMedian {
	per := make([][]time.Duration, len(p.Steps))
	for _, ev := range p.Events {
		per[ev.Step] = append(per[ev.Step], ev.Dur)
	}
	out := make([]stepMedian, len(p.Steps))
	for i, st := range p.Steps {
		var med time.Duration
		if len(per[i]) > 0 {
			med = medianOf(per[i])
		}
		out[i] = stepMedian{name: st.Name, med: med}
	}
	return out
}

func us(d time.Duration) float64 { return d.Seconds() * 1e6 }
