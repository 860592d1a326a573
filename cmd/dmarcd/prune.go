package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/dmarcd/dmarcd"
)

type pruneCmd struct {
	Months int `help:"Months kept before the current one (default: retention_months of the config file)." placeholder:"N"`
}

// Run drops the data older than the retention once, as the daemon does
// every day: for cron users of poll --once.
func (c *pruneCmd) Run(e *env) error {
	months := e.cfg.RetentionMonths
	if c.Months != 0 {
		months = c.Months
	}
	if months <= 0 {
		return &exitError{code: exitUsage, err: errors.New("prune: no retention: set retention_months in the config file or --months N (N > 0)")}
	}
	st, err := openDaemonStore(e)
	if err != nil {
		return err
	}
	defer st.Close()
	r, ok := st.(dmarcd.Retainer)
	if !ok {
		return &exitError{code: exitUsage, err: fmt.Errorf("prune: the store %s cannot drop old data", e.cfg.Store)}
	}
	cutoff := dmarcd.RetentionCutoff(e.now(), months)
	n, err := r.DropBefore(e.ctx, cutoff)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "Dropped what was filed before %s (%d months kept before this one): %d.\n", cutoff.Format(time.DateOnly), months, n)
	return nil
}
