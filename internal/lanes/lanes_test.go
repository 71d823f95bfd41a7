package lanes

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// TestRunOrder: ordered commits come in sample order from every lane,
// each sample once; unordered ones each sample once too.
func TestRunOrder(t *testing.T) {
	for _, ordered := range []bool{true, false} {
		for _, lanes := range []int{1, 2, 5} {
			var got []int
			seen := map[int]int{}
			err := Run(context.Background(), lanes, 2, 40, ordered, nil, func(lane, i int) error {
				time.Sleep(time.Duration((i*7)%5) * 100 * time.Microsecond) // finish out of order
				return nil
			}, func(lane, i int) {
				got = append(got, i)
				seen[i]++
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 38 || len(seen) != 38 {
				t.Fatalf("ordered %v lanes %d: committed %v", ordered, lanes, got)
			}
			for k, i := range got {
				if ordered && i != k+2 {
					t.Fatalf("lanes %d: commits out of order: %v", lanes, got)
				}
			}
		}
	}
}

// TestRunErrors: the first failing sample's error wins even when a later
// sample fails first in time; a setup error and a cancelled context are
// reported; nothing after a failure is committed out of turn.
func TestRunErrors(t *testing.T) {
	var last int
	err := Run(context.Background(), 3, 0, 30, true, nil, func(lane, i int) error {
		switch i {
		case 9:
			time.Sleep(5 * time.Millisecond)
			return fmt.Errorf("sample %d", i)
		case 10, 11:
			return fmt.Errorf("sample %d", i)
		}
		return nil
	}, func(lane, i int) { last = i })
	if err == nil || err.Error() != "sample 9" || last >= 9 {
		t.Fatalf("error %v, last commit %d; want sample 9 and commits before it", err, last)
	}
	bad := errors.New("no session")
	if err := Run(context.Background(), 2, 0, 10, true, func(lane int) error {
		if lane == 1 {
			return bad
		}
		return nil
	}, func(int, int) error { return nil }, func(int, int) {}); !errors.Is(err, bad) {
		t.Fatalf("setup error: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Run(ctx, 2, 0, 10, false, nil, func(int, int) error { return nil }, func(int, int) {}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
}
