// sync.Pool benchmarks (after Go's own BenchmarkPool* in sync/pool_test.go).
package main

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

func init() {
	register("pool", benchPool)
	register("pool_parallel", benchPoolParallel)
	register("pool_overflow", benchPoolOverflow)
	register("pool_steal", benchPoolSteal)
	register("pool_expensive_new", benchPoolExpensiveNew)
}

// poolObj is what the pools hold.
type poolObj struct{ buf [64]byte }

func newPool() *sync.Pool {
	return &sync.Pool{New: func() any { return new(poolObj) }}
}

// procs is the number of goroutines the parallel pool benchmarks run: one
// per P, like testing.B.RunParallel.
func procs() int { return runtime.GOMAXPROCS(0) }

// pool: uncontended Get+Put pair on one goroutine; ns per pair.
// goro twin: goro::Pool<T>::get() + put() on one goroutine.
func benchPool() []result {
	const n = 30_000_000
	return one("pool", "ns/op", func() float64 {
		p := newPool()
		start := time.Now()
		for i := 0; i < n; i++ {
			p.Put(p.Get())
		}
		return nsPer(time.Since(start), n)
	})
}

// pool_parallel: Get+Put pairs on GOMAXPROCS goroutines at once (Go's
// BenchmarkPool with RunParallel); ns per pair = wall time / all pairs.
// goro twin: the same on gomaxprocs() goroutines.
func benchPoolParallel() []result {
	const n = 15_000_000 // per goroutine
	return one("pool_parallel", "ns/op", func() float64 {
		p := newPool()
		g := procs()
		var wg sync.WaitGroup
		wg.Add(g)
		start := time.Now()
		for j := 0; j < g; j++ {
			go func() {
				for i := 0; i < n; i++ {
					p.Put(p.Get())
				}
				wg.Done()
			}()
		}
		wg.Wait()
		return nsPer(time.Since(start), g*n)
	})
}

// pool_overflow: more items than the per-P private slot holds (Go's
// BenchmarkPoolOverflow). On GOMAXPROCS goroutines, each iteration Puts 100
// objects then Gets 100; ns per op, where an op is one Put or one Get
// (wall time / all Puts and Gets).
// goro twin: the same on gomaxprocs() goroutines.
func benchPoolOverflow() []result {
	const iters = 60_000 // per goroutine, × 200 ops
	return one("pool_overflow", "ns/op", func() float64 {
		p := newPool()
		g := procs()
		var wg sync.WaitGroup
		wg.Add(g)
		start := time.Now()
		for j := 0; j < g; j++ {
			go func() {
				items := make([]*poolObj, 100)
				for i := range items {
					items[i] = new(poolObj)
				}
				for i := 0; i < iters; i++ {
					for _, x := range items {
						p.Put(x)
					}
					for k := range items {
						if x, ok := p.Get().(*poolObj); ok {
							items[k] = x
						}
					}
				}
				wg.Done()
			}()
		}
		wg.Wait()
		return nsPer(time.Since(start), g*iters*200)
	})
}

// pool_steal: Gets that must steal from another P. One goroutine keeps
// Putting objects; max(1, GOMAXPROCS-1) others Get n times each from a Pool
// without New (a Get may come back empty); ns per Get = wall time of the
// getters / all Gets.
// goro twin: the same, one putter and gomaxprocs()-1 getters.
func benchPoolSteal() []result {
	const n = 10_000_000 // Gets per getter
	return one("pool_steal", "ns/op", func() float64 {
		var p sync.Pool
		getters := procs() - 1
		if getters < 1 {
			getters = 1
		}
		var stop atomic.Bool
		putterDone := make(chan struct{})
		go func() {
			objs := make([]*poolObj, 1024)
			for i := range objs {
				objs[i] = new(poolObj)
			}
			for i := 0; !stop.Load(); i++ {
				p.Put(objs[i%len(objs)])
			}
			close(putterDone)
		}()
		var wg sync.WaitGroup
		wg.Add(getters)
		start := time.Now()
		for j := 0; j < getters; j++ {
			go func() {
				for i := 0; i < n; i++ {
					p.Get()
				}
				wg.Done()
			}()
		}
		wg.Wait()
		el := time.Since(start)
		stop.Store(true)
		<-putterDone
		return nsPer(el, getters*n)
	})
}

// pool_expensive_new: how well a Pool survives collections (Go's
// BenchmarkPoolExpensiveNew idea). One goroutine does 1M Get+Put pairs,
// holding 100 objects checked out at a time (Get ×100 then Put ×100), and
// forces runtime.GC() every 100k pairs; the value is how many times New ran
// (≈100 if the victim cache carries the objects across each GC).
// goro twin: goro::Pool with a counting new_fn and goro::gc::collect() every
// 100k pairs, counter "news".
func benchPoolExpensiveNew() []result {
	const n, batch, gcEvery = 1_000_000, 100, 100_000
	return one("pool_expensive_new", "news", func() float64 {
		news := 0
		p := sync.Pool{New: func() any { news++; return new(poolObj) }}
		items := make([]any, batch)
		for done := 0; done < n; done += batch {
			if done%gcEvery == 0 && done > 0 {
				runtime.GC()
			}
			for i := range items {
				items[i] = p.Get()
			}
			for i, x := range items {
				p.Put(x)
				items[i] = nil
			}
		}
		return float64(news)
	})
}
