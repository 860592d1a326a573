package web

import (
	"sync"
	"time"
)

// cache keeps the answers that ask DNS (recommendations, key advice, record
// plans) for a while, so that reloading a page does not ask again. It is
// small: past max entries it is emptied.
type cache struct {
	ttl time.Duration
	max int

	mu      sync.Mutex
	entries map[string]cacheEntry
	// calls holds the work in flight per key, so that concurrent requests
	// for the same key wait for one answer.
	calls map[string]*cacheCall
}

type cacheEntry struct {
	value   any
	err     error
	expires time.Time
}

type cacheCall struct {
	done  chan struct{}
	value any
	err   error
}

func newCache(ttl time.Duration, max int) *cache {
	return &cache{ttl: ttl, max: max, entries: map[string]cacheEntry{}, calls: map[string]*cacheCall{}}
}

// get returns the answer for key, computing it with f when none is kept.
// Errors are kept for a fifth of the time.
func (c *cache) get(key string, now time.Time, f func() (any, error)) (any, error) {
	if c.ttl < 0 {
		return f()
	}
	c.mu.Lock()
	if e, ok := c.entries[key]; ok && now.Before(e.expires) {
		c.mu.Unlock()
		return e.value, e.err
	}
	if call, ok := c.calls[key]; ok {
		c.mu.Unlock()
		<-call.done
		return call.value, call.err
	}
	call := &cacheCall{done: make(chan struct{})}
	c.calls[key] = call
	c.mu.Unlock()

	call.value, call.err = f()

	c.mu.Lock()
	delete(c.calls, key)
	if len(c.entries) >= c.max {
		clear(c.entries)
	}
	ttl := c.ttl
	if call.err != nil {
		ttl /= 5
	}
	c.entries[key] = cacheEntry{value: call.value, err: call.err, expires: now.Add(ttl)}
	c.mu.Unlock()
	close(call.done)
	return call.value, call.err
}

// clear forgets every answer: after a change made through the page (a
// domain's settings, a step published), the next page asks again.
func (c *cache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entries = map[string]cacheEntry{}
}

// forget forgets the answer of one key.
func (c *cache) forget(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.entries, key)
}
