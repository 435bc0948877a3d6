// Allocation and garbage-collector benchmarks.
package main

import (
	"fmt"
	"os"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

func init() {
	register("alloc", benchAlloc)
	register("binarytrees", benchBinarytrees)
	register("gcpause100m", func() []result { return gcpause("gcpause100m", 100<<20, runs) })
	register("gcpause1g", func() []result { return gcpause("gcpause1g", 1<<30, 3) })
	register("gcparked", benchGCParked)
	register("gcmutator", benchGCMutator)
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
// last 256 cycles, which covers a run), a third "binarytrees_p99" the
// nearest-rank 99th percentile of the same pauses (with fewer than 100
// cycles, the longest); each the median over the runs.
// goro twin: the same program with goro::go / goro::WaitGroup / gc::make,
// counters "ms", "max_pause_ms" and "p99_pause_ms".
func benchBinarytrees() []result {
	const depth = 18
	// sum of the checks: stretch 2^20-1, 2^18-1 long lived, and for each depth
	// d in 4,6..18: 2^(18-d+4) trees of 2^(d+1)-1 nodes.
	want := (1<<20 - 1) + (1<<19 - 1)
	for d := 4; d <= depth; d += 2 {
		want += (1 << (depth - d + 4)) * (1<<(d+1) - 1)
	}
	var maxes, p99s []float64
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
		p := pausesBetween(&m0, &m1)
		maxes = append(maxes, ms(time.Duration(maxOf(p))))
		p99s = append(p99s, ms(time.Duration(p99Of(p))))
		return ms(el)
	})
	maxes, p99s = maxes[1:], p99s[1:] // drop the warm-up
	return []result{
		{"binarytrees", m, "ms", v},
		{"binarytrees_pause", median(maxes), "ms", maxes},
		{"binarytrees_p99", median(p99s), "ms", p99s},
	}
}

// pausesBetween returns the stop-the-world pause (ns; both pauses of a cycle
// added) of every GC cycle that ended between two MemStats snapshots, as far
// as the PauseNs ring (the last 256 cycles) still holds them.
func pausesBetween(m0, m1 *runtime.MemStats) []uint64 {
	var p []uint64
	for i := m0.NumGC + 1; i <= m1.NumGC; i++ {
		if i+256 > m1.NumGC {
			p = append(p, m1.PauseNs[(i+255)%256])
		}
	}
	return p
}

func maxOf(p []uint64) uint64 {
	var max uint64
	for _, v := range p {
		if v > max {
			max = v
		}
	}
	return max
}

// p99Of is the nearest-rank 99th percentile: the smallest pause that at least
// 99% of the cycles did not exceed.
func p99Of(p []uint64) uint64 {
	if len(p) == 0 {
		return 0
	}
	s := append([]uint64(nil), p...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[(len(s)*99+99)/100-1]
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
// (3 for 1 GiB) each time one runtime.GC(). Two more lines per size:
// "<name>_pause", the longest stop-the-world pause of that cycle (MemStats
// PauseNs), and "<name>_cpu", the process's CPU time (getrusage user+sys)
// during the runtime.GC() over its wall time, in CPUs.
// goro twin: the same list of gc::make<Node64>(), timing goro::gc::collect(),
// counters "ms", "pause_ms", "cpus".
func gcpause(name string, bytes int, n int) []result {
	gcHead = buildList(bytes)
	runtime.GC() // finish the cycles the build started
	defer func() { gcHead = nil; runtime.GC() }()
	return timeCollects(name, n)
}

// buildList allocates bytes/64 nodes as one singly linked list, each new node
// in front, and returns its head.
func buildList(bytes int) *node64 {
	var head *node64
	for i := 0; i < bytes/64; i++ {
		head = &node64{next: head}
	}
	return head
}

// timeCollects warms up with one runtime.GC() and then times n more, each
// giving its wall time (ms), its longest pause (ms) and CPUs used; it returns
// the lines name, name_pause and name_cpu with their medians.
func timeCollects(name string, n int) []result {
	runtime.GC() // warm-up
	var wall, pause, cpus []float64
	for r := 0; r < n; r++ {
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		c0 := cpuSeconds()
		start := time.Now()
		runtime.GC()
		el := time.Since(start)
		cpu := cpuSeconds() - c0
		runtime.ReadMemStats(&m1)
		wall = append(wall, ms(el))
		pause = append(pause, ms(time.Duration(maxOf(pausesBetween(&m0, &m1)))))
		cpus = append(cpus, cpu/el.Seconds())
	}
	return []result{
		{name, median(wall), "ms", wall},
		{name + "_pause", median(pause), "ms", pause},
		{name + "_cpu", median(cpus), "cpus", cpus},
	}
}

// newObj16 returns a new heap object (not inlined, so it is allocated on the
// heap and only the caller's frame points to it).
//
//go:noinline
func newObj16(v uintptr) *obj16 { return &obj16{v: v} }

// gcparked: a full collection with a heap of 1M parked goroutines. Each
// goroutine allocates a 16-byte object, keeps the only pointer to it in its
// frame and blocks in a receive on one unbuffered channel; then 5 runs (after
// a warm-up) each time one runtime.GC(). Lines "gcparked" (ms),
// "gcparked_pause" (its longest pause, ms), "gcparked_cpu" (CPUs). Closing
// the channel releases the goroutines; each checks its object.
// goro twin: 1M goroutines in Chan::recv() each holding a gc::make'd object;
// each repetition starts them in a fresh run() and times one collect().
func benchGCParked() []result {
	const n = 1_000_000
	ch := make(chan struct{})
	var started, done sync.WaitGroup
	var bad atomic.Int32
	started.Add(n)
	done.Add(n)
	for i := 0; i < n; i++ {
		go func(i uintptr) {
			o := newObj16(i)
			started.Done()
			<-ch
			if o.v != i {
				bad.Add(1)
			}
			done.Done()
		}(uintptr(i))
	}
	started.Wait()
	res := timeCollects("gcparked", runs) // its warm-up lets the last ones reach the receive
	close(ch)
	done.Wait()
	if bad.Load() != 0 {
		panic("gcparked: an object held by a parked goroutine changed")
	}
	return res
}

// gcmutator: how much marking slows the program down. The mutator (the
// benchmark's goroutine) does a fixed amount of pointer writing over a 100 MiB
// live list: mutatorPasses passes, each swapping every pair of nodes after
// the head (3 pointer stores per pair, each a write barrier while marking).
// Each run does that work once with no cycle running, then again while
// another goroutine calls runtime.GC() back to back; the value is the second
// wall time over the first (1.0: marking costs the mutator nothing), median
// of 5 runs after a warm-up run. A second line "gcmutator_cycles" gives the
// number of cycles that ran during the second. The mutator allocates nothing,
// so no cycle starts by itself during the first (it is measured again, up to
// 3 times, if one did); every pass checks the list's length. It needs
// GOMAXPROCS >= 2 (the collecting goroutine has a P of its own) and skips
// itself with fewer: on one P it would measure how the scheduler shares it.
// goro twin: the same list and passes, collect() in a loop on another
// goroutine, counters "ratio" and "cycles".
const mutatorPasses = 64

// swapPairs swaps every pair of nodes after head: head→a→b→c becomes
// head→b→a→c, and so on down the list; it returns the number of pairs.
func swapPairs(head *node64) int {
	pairs := 0
	for p := head; p.next != nil && p.next.next != nil; pairs++ {
		a := p.next
		b := a.next
		a.next = b.next
		b.next = a
		p.next = b
		p = a
	}
	return pairs
}

func benchGCMutator() []result {
	if runtime.GOMAXPROCS(0) < 2 {
		fmt.Fprintln(os.Stderr, "peers: gcmutator needs GOMAXPROCS >= 2: skipped")
		return nil
	}
	const bytes = 100 << 20
	const wantPairs = (bytes/64 - 1) / 2
	gcHead = buildList(bytes)
	defer func() { gcHead = nil; runtime.GC() }()
	head := gcHead
	work := func() time.Duration {
		start := time.Now()
		for i := 0; i < mutatorPasses; i++ {
			if swapPairs(head) != wantPairs {
				panic("gcmutator: the list lost nodes")
			}
		}
		return time.Since(start)
	}
	numGC := func() uint32 {
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.NumGC
	}
	runtime.GC() // finish the cycles the build started
	var cycles []float64
	m, v := measure(runs, func() float64 {
		// The work alone, again if a cycle started anyway (a forced one).
		var alone time.Duration
		for attempt := 0; ; attempt++ {
			n0 := numGC()
			alone = work()
			if numGC() == n0 {
				break
			}
			if attempt == 2 {
				panic("gcmutator: cycles kept running during the work alone")
			}
		}
		var stop atomic.Bool
		running := make(chan struct{})
		finished := make(chan struct{})
		go func() {
			close(running)
			for !stop.Load() {
				runtime.GC()
			}
			close(finished)
		}()
		<-running
		n0 := numGC()
		marked := work()
		n := numGC() - n0
		stop.Store(true)
		<-finished
		if n == 0 {
			panic("gcmutator: no cycle ran during the work")
		}
		cycles = append(cycles, float64(n))
		return float64(marked) / float64(alone)
	})
	cycles = cycles[1:] // drop the warm-up
	return []result{
		{"gcmutator", m, "x", v},
		{"gcmutator_cycles", median(cycles), "cycles", cycles},
	}
}
