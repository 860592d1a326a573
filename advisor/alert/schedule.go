package alert

import (
	"context"
	"fmt"
	"time"

	"github.com/robfig/cron/v3"
)

// DefaultWeeklySpec is when the weekly recommendation goes out: Monday at
// 08:00 in the configured time zone.
const DefaultWeeklySpec = "0 8 * * 1"

// Clock tells the time and waits; a test injects its own.
type Clock interface {
	Now() time.Time
	// After waits d, like time.After.
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// RealClock is the wall clock.
var RealClock Clock = realClock{}

// Schedule is a cron schedule in a time zone.
type Schedule struct {
	spec     string
	location *time.Location
	sched    cron.Schedule
}

// ParseSchedule reads a standard five-field cron spec (minute hour
// day-of-month month day-of-week) in the named IANA time zone ("" or
// "UTC" for UTC, "Local" for the machine's).
func ParseSchedule(spec, zone string) (*Schedule, error) {
	loc := time.UTC
	if zone != "" {
		var err error
		if loc, err = time.LoadLocation(zone); err != nil {
			return nil, fmt.Errorf("schedule time zone %q: %w", zone, err)
		}
	}
	s, err := cron.ParseStandard(spec)
	if err != nil {
		return nil, fmt.Errorf("schedule %q: %w (want five fields: minute hour day-of-month month day-of-week)", spec, err)
	}
	return &Schedule{spec: spec, location: loc, sched: s}, nil
}

// Next returns the first time after t the schedule fires.
func (s *Schedule) Next(t time.Time) time.Time {
	return s.sched.Next(t.In(s.location))
}

func (s *Schedule) String() string { return s.spec + " " + s.location.String() }

// catchUpWindow bounds how far back Run catches up a missed run: one
// week, the period of the weekly recommendation.
const catchUpWindow = 7 * 24 * time.Hour

// Prev returns the last time at or before t the schedule fired, within
// catchUpWindow before t; the zero time when none.
func (s *Schedule) Prev(t time.Time) time.Time {
	var prev time.Time
	for at := s.Next(t.Add(-catchUpWindow)); !at.After(t); at = s.Next(at) {
		prev = at
	}
	return prev
}

// Run calls fn at each time the schedule fires, until ctx ends. fn gets the
// scheduled time (not the time it woke up), so that what it queues for that
// time is queued once. At start it first calls fn for the last time the
// schedule fired within a week, with late set: a process that was down
// then catches up once (fn's queue, keyed by the time, makes it a no-op
// when that run did happen).
func (s *Schedule) Run(ctx context.Context, clock Clock, fn func(ctx context.Context, at time.Time, late bool)) error {
	if prev := s.Prev(clock.Now()); !prev.IsZero() {
		fn(ctx, prev, true)
	}
	for {
		next := s.Next(clock.Now())
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-clock.After(next.Sub(clock.Now())):
		}
		if ctx.Err() != nil { // both were ready and select chose the timer
			return ctx.Err()
		}
		fn(ctx, next, false)
	}
}
