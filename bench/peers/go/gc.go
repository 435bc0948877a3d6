// Allocation and garbage-collector benchmarks.
package main

import (
	"runtime"
	"sync"
	"time"
)

func init() {
	register("alloc", benchAlloc)
	register("binarytrees", benchBinarytrees)
	register("gcpause100m", func() []result { return gcpause("gcpause100m", 100<<20, runs) })
	register("gcpause1g", func() []result { return gcpause("gcpause1g", 1<<30, 3) })
}

// obj16 is a 16-byte heap object holding a pointer (so the collector scans
// it, as goro's conservative collector scans everything).
type obj16 struct {
	next *obj16
	v    uintptr
}

// allocSink keeps every allocation escaping to the heap.
var allocSink *obj16

// alloc: small-object allocation speed. One goroutine allocates n 16-byte
// objects, storing each into a global sink; ns per allocation (includes the
// amortised cost of the GC cycles this triggers).
// goro twin: goro::gc::make<T>() of a 16-byte T into a global sink.
func benchAlloc() []result {
	const n = 20_000_000
	return one("alloc", "ns/op", func() float64 {
		start := time.Now()
		for i := 0; i < n; i++ {
			allocSink = &obj16{v: uintptr(i)}
		}
		el := time.Since(start)
		allocSink = nil
		return nsPer(el, n)
	})
}

// treeNode is the binary-trees node (16 bytes).
type treeNode struct{ left, right *treeNode }

func bottomUpTree(depth int) *treeNode {
	if depth <= 0 {
		return &treeNode{}
	}
	return &treeNode{bottomUpTree(depth - 1), bottomUpTree(depth - 1)}
}

func (n *treeNode) check() int {
	if n.left == nil {
		return 1
	}
	return 1 + n.left.check() + n.right.check()
}

// binaryTrees runs the benchmarks-game program ("Go #2" style: one goroutine
// per depth) at the given maximum depth and returns the sum of all checks.
func binaryTrees(maxDepth int) int {
	const minDepth = 4
	total := bottomUpTree(maxDepth + 1).check() // stretch tree
	longLived := bottomUpTree(maxDepth)
	checks := make([]int, maxDepth+1)
	var wg sync.WaitGroup
	for d := minDepth; d <= maxDepth; d += 2 {
		wg.Add(1)
		go func(depth, iterations int) {
			c := 0
			for i := 0; i < iterations; i++ {
				c += bottomUpTree(depth).check()
			}
			checks[depth] = c
			wg.Done()
		}(d, 1<<uint(maxDepth-d+minDepth))
	}
	wg.Wait()
	for _, c := range checks {
		total += c
	}
	return total + longLived.check()
}

// binarytrees: the benchmarks-game binary trees at depth 18; total ms. A
// second line "binarytrees_pause" gives the longest GC pause of the run in ms
// (max of runtime.MemStats.PauseNs over the run's cycles; the ring keeps the
// last 256 cycles, which covers a run).
// goro twin: the same program with goro::go / goro::WaitGroup / gc::make,
// counters "ms" and "max_pause_ms".
func benchBinarytrees() []result {
	const depth = 18
	// sum of the checks: stretch 2^20-1, 2^18-1 long lived, and for each depth
	// d in 4,6..18: 2^(18-d+4) trees of 2^(d+1)-1 nodes.
	want := (1<<20 - 1) + (1<<19 - 1)
	for d := 4; d <= depth; d += 2 {
		want += (1 << (depth - d + 4)) * (1<<(d+1) - 1)
	}
	var pauses []float64
	m, v := measure(runs, func() float64 {
		var m0, m1 runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m0)
		start := time.Now()
		if got := binaryTrees(depth); got != want {
			panic("binarytrees: wrong checksum")
		}
		el := time.Since(start)
		runtime.ReadMemStats(&m1)
		pauses = append(pauses, ms(time.Duration(maxPause(&m0, &m1))))
		return ms(el)
	})
	pauses = pauses[1:] // drop the warm-up
	return []result{
		{"binarytrees", m, "ms", v},
		{"binarytrees_pause", median(pauses), "ms", pauses},
	}
}

// maxPause is the longest stop-the-world pause (ns) among the GC cycles that
// ended between two MemStats snapshots.
func maxPause(m0, m1 *runtime.MemStats) uint64 {
	var max uint64
	for i := m0.NumGC + 1; i <= m1.NumGC && i+256 > m1.NumGC; i++ {
		if p := m1.PauseNs[(i+255)%256]; p > max {
			max = p
		}
	}
	return max
}

// node64 is a 64-byte heap object: one pointer and padding.
type node64 struct {
	next *node64
	_    [56]byte
}

// gcHead keeps the gcpause list alive.
var gcHead *node64

// gcpause100m / gcpause1g: cost of a full collection with a large live heap.
// Builds one singly linked list of 64-byte nodes totalling 100 MiB (1 GiB),
// allocated in order and rooted in a global, then times one runtime.GC()
// (a whole cycle, including its sweep); ms. The list is built once; runs
// (3 for 1 GiB) each time one runtime.GC().
// goro twin: the same list of gc::make<Node64>(), timing goro::gc::collect(),
// counter "ms".
func gcpause(name string, bytes int, n int) []result {
	var head *node64
	for i := 0; i < bytes/64; i++ {
		head = &node64{next: head}
	}
	gcHead = head
	runtime.GC() // finish the cycles the build started
	defer func() { gcHead = nil; runtime.GC() }()
	m, v := measure(n, func() float64 {
		start := time.Now()
		runtime.GC()
		return ms(time.Since(start))
	})
	return []result{{name, m, "ms", v}}
}
