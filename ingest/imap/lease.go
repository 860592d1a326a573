package imap

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dmarcd/dmarcd"
)

// DefaultLeaseDuration is how long a daemon's hold on a mailbox lasts
// without renewal: a daemon that dies is replaced by another after at most
// this long. The holder renews it every third of it (before each pass and
// each batch, and while it waits for mail).
const DefaultLeaseDuration = time.Minute

// Lease keeps a mailbox to one reader among the daemons sharing a store
// (dmarcd.LeaseStore): a poller reads the mailbox only while it holds the
// lease, and stands by while another daemon does, taking over when that
// one's lease lapses. Two readers at once would lose nothing (a report is
// stored once, a message moved by another is skipped), but would fetch and
// parse every message twice.
type Lease struct {
	Store dmarcd.LeaseStore
	// Owner names this daemon in the store: unique among the daemons.
	Owner string
	// Duration is how long a hold lasts; DefaultLeaseDuration when 0.
	Duration time.Duration
}

// errLeaseLost ends a session whose lease another daemon took: the lease
// lapsed (the process stalled longer than it lasts, or the store could
// not be reached to renew it).
var errLeaseLost = errors.New("the mailbox's lease was taken by another dmarcd")

// leaseName names the lease of the mailbox: its server and user, so that
// daemons that name the mailbox differently in their configs share it.
func (p *Poller) leaseName() string {
	return fmt.Sprintf("mailbox/%s@%s:%d", p.mb.Username, p.mb.Host, p.mb.Port)
}

func (p *Poller) leaseDuration() time.Duration {
	if p.opts.Lease == nil || p.opts.Lease.Duration <= 0 {
		return DefaultLeaseDuration
	}
	return p.opts.Lease.Duration
}

// renewEvery is how often the holder renews its lease, and a standby
// tries to take it.
func (p *Poller) renewEvery() time.Duration { return p.leaseDuration() / 3 }

// holdLease takes or renews the mailbox's lease: true when this daemon
// may read it (always, without a Lease). A store that cannot be reached
// gives false: the lease lapses, and whoever reaches the store takes it.
func (p *Poller) holdLease(ctx context.Context) bool {
	l := p.opts.Lease
	if l == nil {
		return true
	}
	now := time.Now()
	// The hold is trusted until LeaseMargin before it ends.
	ok, err := l.Store.HoldLease(ctx, p.leaseName(), l.Owner, now, now.Add(p.leaseDuration()+dmarcd.LeaseMargin))
	if err != nil {
		if ctx.Err() == nil {
			p.log.Error("cannot hold the mailbox's lease in the store: not reading it meanwhile", "lease", p.leaseName(), "err", err)
		}
		return false
	}
	if ok != p.leased || !p.leaseTried {
		if ok {
			p.log.Info("reading the mailbox: this dmarcd holds its lease", "lease", p.leaseName(), "owner", l.Owner)
		} else {
			p.log.Info("another dmarcd reads the mailbox: standing by", "lease", p.leaseName())
		}
		p.leased, p.leaseTried = ok, true
	}
	return ok
}

// releaseLease gives the lease up as the daemon stops, so that another
// takes the mailbox over at once.
func (p *Poller) releaseLease() {
	l := p.opts.Lease
	if l == nil || !p.leased {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), CommandTimeout)
	defer cancel()
	if err := l.Store.ReleaseLease(ctx, p.leaseName(), l.Owner, time.Now()); err != nil {
		p.log.Warn("could not give the mailbox's lease up: another dmarcd takes it when it lapses", "lease", p.leaseName(), "err", err)
	}
	p.leased = false
}
