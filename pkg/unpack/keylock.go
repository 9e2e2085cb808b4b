package unpack

import (
	"context"
	"sync"
)

// keyLock is a set of mutexes by key that waiters can abandon when their
// context ends. Entries exist only while held or waited for.
type keyLock struct {
	mu    sync.Mutex
	locks map[string]*keyEntry
}

type keyEntry struct {
	ch   chan struct{} // holds one token while locked
	refs int           // holder + waiters
}

func (l *keyLock) lock(ctx context.Context, key string) error {
	l.mu.Lock()
	if l.locks == nil {
		l.locks = map[string]*keyEntry{}
	}
	e := l.locks[key]
	if e == nil {
		e = &keyEntry{ch: make(chan struct{}, 1)}
		l.locks[key] = e
	}
	e.refs++
	l.mu.Unlock()
	select {
	case e.ch <- struct{}{}:
		return nil
	case <-ctx.Done():
		l.release(key, e)
		return ctx.Err()
	}
}

func (l *keyLock) unlock(key string) {
	l.mu.Lock()
	e := l.locks[key]
	l.mu.Unlock()
	<-e.ch
	l.release(key, e)
}

func (l *keyLock) release(key string, e *keyEntry) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e.refs--
	if e.refs == 0 {
		delete(l.locks, key)
	}
}
