package kernels

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/onnxq/onnxq/kernels/parallel"
	"github.com/onnxq/onnxq/testmodels"
)

// TestThreadChoicePhases plays made-up times through the choice (so the
// test does not depend on the machine): three steps, the first faster on
// one thread, the second faster wide, the third the same either way; the
// check's whole runs then decide between the mix, all wide and all on one
// thread; after threadRecheck runs the trials start again.
func TestThreadChoicePhases(t *testing.T) {
	// By run counts alone here; TestThreadChoiceTimed sizes by time.
	defer func(d, r time.Duration) { threadCheckTime, threadRecheckTime = d, r }(threadCheckTime, threadRecheckTime)
	threadCheckTime, threadRecheckTime = 0, 0
	us := func(v int) time.Duration { return time.Duration(v) * time.Microsecond }
	// stepTimes[mode][step]: the first step 10 us on one thread, 20 wide.
	stepTimes := map[threadMode][]time.Duration{
		modeNarrow: {us(10), us(50), us(30)},
		modeWide:   {us(20), us(30), us(30)},
	}
	for _, tc := range []struct {
		name   string
		runs   map[threadMode]time.Duration // whole runs in the check
		narrow []bool
	}{
		{"mix fastest", map[threadMode]time.Duration{modeMix: us(60), modeWide: us(80), modeNarrow: us(90)}, []bool{true, false, false}},
		{"wide fastest", map[threadMode]time.Duration{modeMix: us(85), modeWide: us(80), modeNarrow: us(90)}, []bool{false, false, false}},
		{"one thread fastest", map[threadMode]time.Duration{modeMix: us(85), modeWide: us(80), modeNarrow: us(70)}, []bool{true, true, true}},
	} {
		c := threadChoice{phase: threadsWarm}
		if n := c.settling(); n != 1+2*threadTrials+3*threadChecks {
			t.Errorf("%s: settling %d at the start, want %d", tc.name, n, 1+2*threadTrials+3*threadChecks)
		}
		runs, seen := 0, map[threadMode]int{}
		for !c.chosen && runs < 100 {
			c.begin(3)
			seen[c.mode]++
			if c.timing {
				for i := 0; i < 3; i++ {
					if c.narrowAt(i) != (c.mode == modeNarrow) {
						t.Fatalf("%s: step %d narrow %v in mode %d", tc.name, i, c.narrowAt(i), c.mode)
					}
					c.step(i, stepTimes[c.mode][i])
				}
			}
			c.end(tc.runs[c.mode])
			runs++
		}
		if want := 1 + 2*threadTrials + 3*threadChecks; runs != want {
			t.Errorf("%s: chosen after %d runs, want %d", tc.name, runs, want)
		}
		if !slices.Equal(c.narrow, tc.narrow) {
			t.Errorf("%s: narrow %v, want %v", tc.name, c.narrow, tc.narrow)
		}
		if seen[modeMix] != threadChecks || seen[modeNarrow] != threadTrials+threadChecks {
			t.Errorf("%s: runs by mode %v", tc.name, seen)
		}
		if c.settling() != 0 || !c.settled() {
			t.Errorf("%s: settling %d after the choice", tc.name, c.settling())
		}
		for r := 0; r < threadRecheck; r++ {
			c.begin(3)
			if c.mode != modeMix || c.timing {
				t.Fatalf("%s: run %d after the choice in mode %d, timing %v", tc.name, r, c.mode, c.timing)
			}
			c.end(us(50))
		}
		if c.phase != threadsSteps {
			t.Errorf("%s: phase %d after %d runs, want the step trials again", tc.name, c.phase, threadRecheck)
		}
	}
	// play runs a choice of two steps, each 10 us either way, the whole
	// runs on one thread taking narrowRun, the others 20 us; it returns
	// how many runs the choice took.
	play := func(narrowRun time.Duration) (*threadChoice, int) {
		c := &threadChoice{phase: threadsWarm}
		runs := 0
		for !c.chosen && runs < 100 {
			c.begin(2)
			if c.timing {
				c.step(0, us(10))
				c.step(1, us(10))
			}
			if c.mode == modeNarrow {
				c.end(narrowRun)
			} else {
				c.end(us(20))
			}
			runs++
		}
		return c, runs
	}
	// Steps alike both ways and runs on one thread no faster: nothing to
	// gain, decided after threadEarly runs each way.
	if c, runs := play(us(20)); runs != 1+2*threadEarly || slices.Contains(c.narrow, true) || len(c.narrow) != 2 {
		t.Errorf("steps alike both ways: chosen after %d runs (want %d), narrow %v", runs, 1+2*threadEarly, c.narrow)
	}
	// The same steps, but runs on one thread faster: the trials go on;
	// with no step faster on one thread, the mix is all wide and needs
	// no check.
	if c, runs := play(us(15)); runs != 1+2*threadTrials || slices.Contains(c.narrow, true) {
		t.Errorf("runs faster on one thread: chosen after %d runs (want %d), narrow %v", runs, 1+2*threadTrials, c.narrow)
	}
}

// TestThreadChoiceTimed: runs of 0.4 ms take trials and a check sized
// by time (threadCheckTime of runs each way, at most threadCheckMax runs
// each), whose turns are read run by run; the slower spell in the middle
// of the check falls on every mode of its turns alike and changes
// nothing. Runs of 20 us stop at threadCheckMax, and their choice holds
// past threadRecheck runs, for threadRecheckTime.
func TestThreadChoiceTimed(t *testing.T) {
	us := func(v int) time.Duration { return time.Duration(v) * time.Microsecond }
	ceilRuns := func(d time.Duration) int { return int((threadCheckTime + d - 1) / d) }
	c := threadChoice{phase: threadsWarm}
	if n, want := c.settling(), 1+2*threadCheckMax+3*threadCheckMax; n != want {
		t.Errorf("settling %d at the start, want %d", n, want)
	}
	const run = 400 // us, in the trials
	if n := ceilRuns(us(run)); n >= threadCheckMax || n <= threadTrials {
		t.Fatalf("threadCheckTime %v: want a run count between %d and %d for %d us runs, got %d", threadCheckTime, threadTrials, threadCheckMax, run, n)
	}
	times := map[threadMode]int{modeMix: 320, modeWide: 400, modeNarrow: 440}
	runs, trials, checks := 0, 0, 0
	for !c.chosen && runs < 1000 {
		c.begin(2)
		if c.timing {
			// Step 0 faster on one thread, step 1 wide.
			c.step(0, us(map[threadMode]int{modeNarrow: 40, modeWide: 80}[c.mode]))
			c.step(1, us(map[threadMode]int{modeNarrow: 160, modeWide: 120}[c.mode]))
		}
		d := us(run)
		switch c.phase {
		case threadsSteps:
			trials++
		case threadsCheck:
			d = us(times[c.mode])
			if turn := checks / 3; turn >= 10 && turn < 20 {
				d *= 3
			}
			checks++
		}
		c.end(d)
		runs++
	}
	if want := 2 * ceilRuns(us(run)); trials != want {
		t.Errorf("step trials took %d runs, want %d (%v each way of %d us runs)", trials, want, threadCheckTime, run)
	}
	// The mix's runs add up slowest: 10 turns of 320 us, 10 of 960, then 320.
	want := 20
	for sum := 10*us(320) + 10*us(960); sum < threadCheckTime; sum += us(320) {
		want++
	}
	if checks != 3*want {
		t.Errorf("check took %d runs, want %d", checks, 3*want)
	}
	if !slices.Equal(c.narrow, []bool{true, false}) {
		t.Errorf("narrow %v, want the mix [true false]", c.narrow)
	}
	// Runs of 20 us: at most threadCheckMax each way.
	c = threadChoice{phase: threadsWarm}
	runs = 0
	for !c.chosen && runs < 1000 {
		c.begin(1)
		if c.timing {
			c.step(0, us(map[threadMode]int{modeNarrow: 10, modeWide: 20}[c.mode]))
		}
		c.end(us(20))
		runs++
	}
	if runs != 1+5*threadCheckMax {
		t.Errorf("runs of 20 us chosen after %d runs, want %d", runs, 1+5*threadCheckMax)
	}
	for r := 0; r < threadRecheck; r++ {
		c.begin(1)
		c.end(us(20))
	}
	if c.phase != threadsChosen {
		t.Errorf("rechecked after %d runs of 20 us", threadRecheck)
	}
}

// TestStepThreadsSameBits runs every zoo and family model at 2 threads
// through the steps' thread trials and past them: each run's outputs
// carry the same bits as a 1-thread session's (whatever mode a run took),
// and the buffer pool makes no buffer run after run once the choice is
// made.
func TestStepThreadsSameBits(t *testing.T) {
	if parallel.Workers() < 2 {
		t.Skip("one CPU: nothing to choose")
	}
	// The trials by run counts (TestThreadChoiceTimed has them by time):
	// the small models' would take some 300 runs.
	defer func(d time.Duration) { threadCheckTime = d }(threadCheckTime)
	threadCheckTime = 0
	settle := 1 + 2*threadTrials + 3*threadChecks
	for _, name := range append(testmodels.Zoo(), testmodels.Families()...) {
		m, in := zooModel(t, name)
		one, err := NewSession(m, Options{Threads: 1})
		if err != nil {
			t.Fatal(err)
		}
		res, err := one.Run(in)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string][]float32{}
		for k, v := range res {
			want[k] = slices.Clone(v.Float32s())
		}
		s, err := NewSession(m, Options{Threads: 2})
		if err != nil {
			t.Fatal(err)
		}
		if !s.threads.settled() && s.Settling() < settle {
			t.Errorf("%s: Settling %d before the first run, want at least %d", name, s.Settling(), settle)
		}
		// The pool is watched from the first run after every trial (the
		// lanes' come after the steps') to 15 runs later. Not its bytes: two
		// threads take and give back the chunks' scratch in an order that
		// changes from run to run, and a rare order needs one more buffer
		// (mobilenetv3: one of 320 KiB, 1.7 -> 2.0 MB, at run 3, 5 or 11 of
		// runs all wide; efficientnet made 3 once in a loaded `make test`).
		// That growth is bounded: a class gains a buffer only when an order
		// has more of its requests alive at once than any order before. A
		// buffer held per run would be made every run, one held every
		// other run 7 times: more than 5 fails.
		var made int
		last := -1
		for r := 1; r <= 80 && r != last; r++ {
			if last < 0 && s.Settling() == 0 {
				last = r + 15
			}
			res, err := s.Run(in)
			if err != nil {
				t.Fatalf("%s run %d: %v", name, r, err)
			}
			for k, v := range res {
				if !slices.Equal(v.Float32s(), want[k]) {
					t.Fatalf("%s run %d (mode %d): output %s differs from 1 thread's", name, r, s.threads.mode, k)
				}
			}
			s.Recycle(res)
			if r == last-15 {
				made = s.ctx.pool.made
			} else if n := s.ctx.pool.made - made; r == last-1 && n > 5 {
				t.Errorf("%s: the pool made %d buffers in the 14 runs after the trials", name, n)
			}
		}
		if !s.threads.settled() || last < 0 {
			t.Errorf("%s: trials not over after 80 runs (settled %v)", name, s.threads.settled())
		}
		n := 0
		for _, b := range s.threads.narrow {
			if b {
				n++
			}
		}
		t.Logf("%-14s %3d of %3d steps on one thread", name, n, len(s.steps))
	}
}

// TestStepThreadsProfile: a step kept on one thread says so in the
// profile and in the trace; the others do not.
func TestStepThreadsProfile(t *testing.T) {
	if parallel.Workers() < 2 {
		t.Skip("one CPU: nothing to choose")
	}
	noLanes = true
	defer func() { noLanes = false }()
	m, in := zooModel(t, "resnet20")
	s, err := NewSession(m, Options{Threads: 2, Profile: true})
	if err != nil {
		t.Fatal(err)
	}
	// The choice as if made: every other step on one thread.
	s.threads.phase, s.threads.chosen = threadsChosen, true
	s.threads.narrow = make([]bool, len(s.steps))
	for i := range s.threads.narrow {
		s.threads.narrow[i] = i%2 == 0
	}
	res, err := s.Run(in)
	if err != nil {
		t.Fatal(err)
	}
	s.Recycle(res)
	p := s.Profile()
	if len(p.Events) != len(s.steps) {
		t.Fatalf("%d events for %d steps", len(p.Events), len(s.steps))
	}
	for _, e := range p.Events {
		if e.OneThread != (e.Step%2 == 0) {
			t.Errorf("step %d: OneThread %v", e.Step, e.OneThread)
		}
	}
	var buf strings.Builder
	if err := p.WriteTrace(&buf); err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Count(buf.String(), `"threads":1`), (len(s.steps)+1)/2; got != want {
		t.Errorf("the trace marks %d events on one thread, want %d", got, want)
	}
}
