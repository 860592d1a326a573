package clickhouse

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"
)

// The keys of stored reports, remembered by partition. A report is checked
// for a stored copy before it is taken (ErrDuplicate), and asking the
// server costs a query, 1-3 ms here: more than storing a small report in a
// group. So the store asks once for the keys of a whole partition (a table,
// a policy domain and a month: the table's own partition, where every copy
// of a report lands), and answers for the other reports of that partition
// from memory. Reports of a backfill or of a mailbox come in the order they
// were sent, so most of them fall in partitions asked for already.
//
// What is remembered only ever says "maybe stored": a key found there is
// confirmed by a query of its own (so a hash shared by two keys loses
// nothing); a key not found there is taken. Another process may store the
// same report after the partition was read: the group is checked against
// the server again, in one query, before it is written (group.go: drop),
// so that such a report is written once, by whichever process came first,
// as when two writers race today.

// MaxKnownKeys bounds the keys remembered, over all partitions: 8 bytes and
// a map entry each, about 3 MB at the bound. When it is reached everything
// remembered is forgotten, and partitions are read again as they are
// needed; a partition holding more keys than that alone is not remembered
// (each report of it asks the server).
const MaxKnownKeys = 100_000

// partition names the keys of one table, policy domain and month.
type partition struct {
	table  string // aggregate_reports, failure_reports, tlsrpt_reports
	domain string
	month  int // year*100 + month, as toYYYYMM(day)
}

func partitionOf(table, domain string, day time.Time) partition {
	return partition{table: table, domain: domain, month: day.Year()*100 + int(day.Month())}
}

// knownKeys holds the keys of stored reports, by partition.
type knownKeys struct {
	mu    sync.Mutex
	parts map[partition]map[uint64]struct{}
	n     int
}

// keyHash is the first 64 bits of a hex digest (dmarcd.ReportKey.Digest,
// FailureReport.Key, TLSReport.Key are SHA-256 in hex).
func keyHash(digest string) uint64 {
	if len(digest) >= 16 {
		if h, err := strconv.ParseUint(digest[:16], 16, 64); err == nil {
			return h
		}
	}
	// Not a digest: FNV-1a.
	h := uint64(14695981039346656037)
	for i := 0; i < len(digest); i++ {
		h ^= uint64(digest[i])
		h *= 1099511628211
	}
	return h
}

// maybeStored says whether a report with the key may be stored in p:
// false when the keys of p, read from the server once, do not hold it.
// The keys are read when p is not remembered (load lists them).
func (s *Store) maybeStored(ctx context.Context, p partition, key string, load func(context.Context) ([]string, error)) (bool, error) {
	k := &s.known
	k.mu.Lock()
	defer k.mu.Unlock()
	keys, ok := k.parts[p]
	if !ok {
		list, err := load(ctx)
		if err != nil {
			return false, err
		}
		if len(list) > MaxKnownKeys {
			return true, nil // too many to remember: ask for each report
		}
		if k.n+len(list) > MaxKnownKeys || k.parts == nil {
			k.parts, k.n = map[partition]map[uint64]struct{}{}, 0
		}
		keys = make(map[uint64]struct{}, len(list))
		for _, key := range list {
			keys[keyHash(key)] = struct{}{}
		}
		k.parts[p] = keys
		k.n += len(keys)
	}
	_, found := keys[keyHash(key)]
	return found, nil
}

// remember adds the keys of reports just written to the partitions
// remembered (a partition not remembered is read with them when it is
// needed).
func (s *Store) remember(p partition, key string) {
	k := &s.known
	k.mu.Lock()
	defer k.mu.Unlock()
	if keys, ok := k.parts[p]; ok && k.n < MaxKnownKeys {
		if _, dup := keys[keyHash(key)]; !dup {
			keys[keyHash(key)] = struct{}{}
			k.n++
		}
	}
}

// monthRange is the first day of the month of day and of the next month,
// as toDate arguments.
func monthRange(day time.Time) (string, string) {
	first := time.Date(day.Year(), day.Month(), 1, 0, 0, 0, 0, time.UTC)
	return first.Format(time.DateOnly), first.AddDate(0, 1, 0).Format(time.DateOnly)
}

// listKeys returns the report keys of a table's rows of one policy domain
// and month; query selects report_key with the placeholders domain, from,
// to.
func (s *Store) listKeys(ctx context.Context, query, domain string, day time.Time) ([]string, error) {
	from, to := monthRange(day)
	rows, err := s.conn.Query(ctx, query, domain, from, to)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var keys []string
	for rows.Next() {
		var key string
		if err := rows.Scan(&key); err != nil {
			return nil, err
		}
		keys = append(keys, key)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing stored reports of %s: %w", domain, err)
	}
	return keys, nil
}
