package kernels

import (
	"slices"
	"time"
)

// Step threads: at two threads, a step whose work is small can lose more
// to handing half of it to the other core (waking it, the join, the other
// core's cache holding what the next step reads) than it gains. What that
// costs depends on where the hypervisor has put the two virtual CPUs: on
// the 2-vCPU VM the cross-core round trip moved between 80 and 500 ns from
// minute to minute, and at 500 ns DenseNet's and Inception's 2-thread runs
// were slower than their 1-thread runs (ShuffleNet's by 60%), while most
// of their convolutions still gained. A threshold on the work cannot be
// right in both states, so the session measures, step by step: its first
// runs alternate between every step on one thread and every step on the
// session's threads, each step timed, and a step that ran clearly faster
// on one thread (median under threadWin of the other's) keeps one. Whole
// runs then check the mix against every step wide and every step on one
// thread, and the fastest is kept: in the mix, the steps beside a narrow
// one leave their outputs in the other core's cache, which the step
// trials did not see (ShuffleNet's mix ran 11% faster than all wide, all
// on one thread 14% faster than the mix). The choice is made again every
// threadRecheck runs, as the machine's state drifts. Every kernel gives
// the same bits at any thread count, so the choice changes times only.

// threadChoice is a session's choice, step by step, between the session's
// threads and one.
type threadChoice struct {
	phase threadPhase
	runs  int // runs made in this phase
	// times holds each step's times in the step trials, by mode (wide,
	// narrow); check the whole runs' times by mode, in the step trials
	// (for their early stop) and in the check.
	times  [2][][]time.Duration
	check  [3][]time.Duration
	narrow []bool // the steps kept on one thread
	// mode and timing are the current run's: how its steps take threads,
	// and whether each step's time is recorded.
	mode   threadMode
	timing bool
	chosen bool // a choice has been made (the lanes' trials wait for it)
	// held is the time of the runs since the choice (for the recheck).
	held time.Duration
}

type threadPhase int

const (
	threadsOff    threadPhase = iota // one thread, or one CPU: nothing to choose
	threadsWarm                      // the first run, wide: new buffers fault in
	threadsSteps                     // step trials, alternating narrow and wide
	threadsCheck                     // whole runs, alternating the mix and wide
	threadsChosen                    // the mix holds until the recheck
)

type threadMode int

const (
	modeWide   threadMode = iota // every step on the session's threads
	modeNarrow                   // every step on one thread
	modeMix                      // the steps in narrow on one thread
)

// threadTrials is how many runs each way time the steps (threadEarly
// before the trials may stop with nothing to gain), threadChecks how
// many whole runs of each mode check the mix at least; threadWin is how
// much faster a step must be on one thread to keep it, threadCheckWin how
// much faster than all wide the mix or all on one thread must run;
// threadRecheck how many runs a choice holds at least.
const (
	threadTrials   = 5
	threadEarly    = 2
	threadChecks   = 4
	threadWin      = 0.9
	threadCheckWin = 0.95
	threadRecheck  = 500
)

// The step trials and the check are sized by time as well as by runs:
// they go on until each mode's runs add up to threadCheckTime (at most
// threadCheckMax runs each).
// Four runs of an LLM's decode step (0.25 ms) are a sample the VM's noise
// decides: stories260K's step at 2 threads kept the mix or all wide in
// most sessions, 0.27-0.34 ms a run, where all on one thread ran 0.23
// (its 1-thread time). A choice then holds for threadRecheckTime of runs
// too (at least threadRecheck runs), so that the longer checks of short
// runs stay a few percent of the time.
var (
	threadCheckTime   = 15 * time.Millisecond
	threadRecheckTime = 5 * time.Second
)

const threadCheckMax = 64

// noStepThreads keeps every step on the session's threads, for the tests
// and benchmarks that compare.
var noStepThreads = false

// begin sets the run's mode; steps is the session's step count.
func (c *threadChoice) begin(steps int) {
	c.timing = false
	switch c.phase {
	case threadsOff, threadsWarm:
		c.mode = modeWide
	case threadsSteps:
		if c.times[modeWide] == nil {
			c.times = [2][][]time.Duration{make([][]time.Duration, steps), make([][]time.Duration, steps)}
		}
		c.mode, c.timing = modeNarrow, true
		if c.runs%2 == 1 {
			c.mode = modeWide
		}
	case threadsCheck:
		c.mode = [3]threadMode{modeMix, modeWide, modeNarrow}[c.runs%3]
	case threadsChosen:
		c.mode = modeMix
	}
	if noStepThreads {
		c.mode, c.timing = modeWide, false
	}
}

// narrowAt tells whether step i runs on one thread in this run.
func (c *threadChoice) narrowAt(i int) bool {
	switch c.mode {
	case modeNarrow:
		return true
	case modeMix:
		return c.narrow[i]
	}
	return false
}

// step records step i's time in a step trial (wide or narrow).
func (c *threadChoice) step(i int, d time.Duration) {
	c.times[c.mode][i] = append(c.times[c.mode][i], d)
}

// end records a whole run's time d and moves the phases on.
func (c *threadChoice) end(d time.Duration) {
	if noStepThreads {
		return
	}
	c.runs++
	switch c.phase {
	case threadsWarm:
		c.next(threadsSteps)
	case threadsSteps:
		c.check[c.mode] = append(c.check[c.mode], d)
		timed := c.timed(modeNarrow, modeWide)
		if c.runs%2 == 0 && c.runs >= 2*threadEarly && timed && c.plainlyWide() {
			c.pick() // for the times it clears: the choice is all wide
			clear(c.narrow)
			c.next(threadsChosen)
			return
		}
		if c.runs < 2*threadTrials || c.runs < 2*threadCheckMax && !timed {
			return
		}
		c.pick()
		if !slices.Contains(c.narrow, true) {
			c.next(threadsChosen) // nothing to check: the mix is all wide
			return
		}
		c.next(threadsCheck)
	case threadsCheck:
		c.check[c.mode] = append(c.check[c.mode], d)
		if c.runs%3 != 0 || c.runs < 3*threadChecks || c.runs < 3*threadCheckMax && !c.timed(modeMix, modeWide, modeNarrow) {
			return
		}
		// Each mode against another in the median of their ratios run by
		// run: the modes take turns, so a spell of a loaded machine falls
		// on the three runs of a turn alike, where it moved one mode's
		// median and not another's. Wide is the default: the others must
		// win by a margin (a check the machine disturbed costs less that
		// way).
		mix, wide, one := c.check[modeMix], c.check[modeWide], c.check[modeNarrow]
		switch {
		case pairedRatio(one, wide) < threadCheckWin && pairedRatio(one, mix) < 1:
			for i := range c.narrow {
				c.narrow[i] = true
			}
		case pairedRatio(mix, wide) >= threadCheckWin:
			clear(c.narrow)
		}
		c.next(threadsChosen)
	case threadsChosen:
		c.held += d
		if c.runs >= threadRecheck && c.held >= threadRecheckTime {
			c.next(threadsSteps)
		}
	}
}

// pairedRatio is the median of a[i] / b[i].
func pairedRatio(a, b []time.Duration) float64 {
	r := make([]float64, min(len(a), len(b)))
	for i := range r {
		r[i] = float64(a[i]) / float64(max(1, b[i]))
	}
	slices.Sort(r)
	return r[len(r)/2]
}

// timed tells whether the runs of each of modes in this phase add up to
// threadCheckTime.
func (c *threadChoice) timed(modes ...threadMode) bool {
	for _, m := range modes {
		var sum time.Duration
		for _, d := range c.check[m] {
			sum += d
		}
		if sum < threadCheckTime {
			return false
		}
	}
	return true
}

// next starts phase p; the whole runs' times are the last phase's only.
func (c *threadChoice) next(p threadPhase) {
	c.phase, c.runs, c.held = p, 0, 0
	c.chosen = c.chosen || p == threadsChosen
	c.check = [3][]time.Duration{}
}

// settled tells whether the first choice has been made (or there is none
// to make).
func (c *threadChoice) settled() bool { return c.phase == threadsOff || c.chosen || noStepThreads }

// plainlyWide tells, after threadEarly runs each way (and threadCheckTime
// of them), that the trials could find nothing: the runs on one thread
// were no faster than the wide ones, and what the steps faster on one
// thread could save (each its best time each way) is under what the check
// asks of a mix. A session of a
// convolution network on a machine whose cores hand work over well is
// then done after 5 runs (of 4 ms or more), not 23.
func (c *threadChoice) plainlyWide() bool {
	wide := medianDur(c.check[modeWide])
	if medianDur(c.check[modeNarrow]) < wide {
		return false
	}
	var saving time.Duration
	for i := range c.times[modeNarrow] {
		if one, w := c.times[modeNarrow][i], c.times[modeWide][i]; len(one) > 0 && len(w) > 0 {
			saving += max(0, slices.Min(w)-slices.Min(one))
		}
	}
	return float64(saving) < (1-threadCheckWin)*float64(wide)
}

// pick keeps on one thread the steps that ran faster on one; a step not
// timed both ways (it ran in a branch lane) keeps its last choice.
func (c *threadChoice) pick() {
	if c.narrow == nil {
		c.narrow = make([]bool, len(c.times[modeNarrow]))
	}
	for i := range c.narrow {
		one, wide := c.times[modeNarrow][i], c.times[modeWide][i]
		if len(one) > 0 && len(wide) > 0 {
			c.narrow[i] = float64(medianDur(one)) < threadWin*float64(medianDur(wide))
		}
		c.times[modeNarrow][i], c.times[modeWide][i] = one[:0], wide[:0]
	}
}

// atMost is how many runs of each mode a phase of least runs (the step
// trials', the check's) takes at most.
func atMost(least int) int {
	if threadCheckTime <= 0 {
		return least
	}
	return threadCheckMax
}

// settling is how many more runs the first choice takes at most.
func (c *threadChoice) settling() int {
	if c.settled() {
		return 0
	}
	switch c.phase {
	case threadsWarm:
		return 1 + 2*atMost(threadTrials) + 3*atMost(threadChecks)
	case threadsSteps:
		return 2*atMost(threadTrials) - c.runs + 3*atMost(threadChecks)
	case threadsCheck:
		return 3*atMost(threadChecks) - c.runs
	}
	return 0
}
