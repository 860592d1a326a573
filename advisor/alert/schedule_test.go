package alert

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/dmarcd/dmarcd/internal/testserver"
)

// fakeClock moves on only when waited on: After returns at once and sets
// the clock to the end of the wait.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	ch := make(chan time.Time, 1)
	ch <- c.now
	return ch
}

// TestWeeklyCatchesUp: a daemon that was down at Monday 08:00 and starts
// on Wednesday runs that Monday's recommendation at once, marked late,
// then each Monday at 08:00 on time.
func TestWeeklyCatchesUp(t *testing.T) {
	s, err := ParseSchedule(DefaultWeeklySpec, "Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	berlin, _ := time.LoadLocation("Europe/Berlin")
	clock := &fakeClock{now: time.Date(2026, 12, 9, 14, 0, 0, 0, berlin)} // a Wednesday
	ctx, cancel := context.WithCancel(context.Background())
	type run struct {
		at   time.Time
		late bool
	}
	var runs []run
	err = s.Run(ctx, clock, func(_ context.Context, at time.Time, late bool) {
		runs = append(runs, run{at, late})
		if len(runs) == 3 {
			cancel()
		}
	})
	if err != context.Canceled {
		t.Fatalf("Run: %v", err)
	}
	want := []run{
		{time.Date(2026, 12, 7, 8, 0, 0, 0, berlin), true},
		{time.Date(2026, 12, 14, 8, 0, 0, 0, berlin), false},
		{time.Date(2026, 12, 21, 8, 0, 0, 0, berlin), false},
	}
	for i, w := range want {
		if !runs[i].at.Equal(w.at) || runs[i].late != w.late {
			t.Errorf("run %d: %v late=%v, want %v late=%v", i, runs[i].at, runs[i].late, w.at, w.late)
		}
	}
	// Queued twice for the same Monday (a restart), it goes out once.
	st := testserver.SQLite(t)
	for range 2 {
		if err := QueueWeekly(context.Background(), st, Weekly{At: want[0].at, Late: true}); err != nil {
			t.Fatal(err)
		}
	}
	if pending, _ := st.PendingNotifications(context.Background()); len(pending) != 1 {
		t.Errorf("%d pending, want 1", len(pending))
	}
}
