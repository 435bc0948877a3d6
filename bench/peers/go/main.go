// Command peers runs the Go side of goro's side-by-side benchmarks
// (see /work/shared/spec/BENCH.md and bench/README.md).
//
// Usage: peers <benchmark> [<benchmark>...]   (or "peers list")
//
// Each benchmark warms up once, measures 5 runs (3 for gcpause1g) and prints
// one JSON line per result on stdout:
//
//	{"name":"spawn","value":112.3,"unit":"ns/op","runs":[...]}
//
// value is the median of runs. GOMAXPROCS is taken from the environment
// except for the benchmarks that BENCH.md defines with GOMAXPROCS=1.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"sort"
	"time"
)

// result is one output line.
type result struct {
	Name  string    `json:"name"`
	Value float64   `json:"value"`
	Unit  string    `json:"unit"`
	Runs  []float64 `json:"runs"`
}

// bench is one named benchmark. run performs the warm-up and the measured
// runs and returns its result lines (most return one).
type bench struct {
	name string
	run  func() []result
}

// benches lists every benchmark; each file registers its own in init().
var benches []bench

func register(name string, run func() []result) {
	benches = append(benches, bench{name, run})
}

// runs is the number of measured repetitions (after one warm-up).
const runs = 5

// measure calls f once to warm up, then n more times, and returns the median
// of the n measured values along with all of them.
func measure(n int, f func() float64) (float64, []float64) {
	f()
	vals := make([]float64, n)
	for i := range vals {
		vals[i] = f()
	}
	return median(vals), vals
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// one is the common case: a single result line measured with measure(runs, f).
func one(name, unit string, f func() float64) []result {
	m, v := measure(runs, f)
	return []result{{name, m, unit, v}}
}

// nsPer returns the nanoseconds per op of a duration over n ops.
func nsPer(d time.Duration, n int) float64 { return float64(d.Nanoseconds()) / float64(n) }

// ms converts a duration to milliseconds.
func ms(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }

// withProcs runs f with GOMAXPROCS set to n and restores the previous value.
func withProcs(n int, f func() []result) []result {
	prev := runtime.GOMAXPROCS(n)
	defer runtime.GOMAXPROCS(prev)
	return f()
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: peers <benchmark>... | list | all")
	fmt.Fprint(os.Stderr, "benchmarks:")
	for _, b := range benches {
		fmt.Fprint(os.Stderr, " ", b.name)
	}
	fmt.Fprintln(os.Stderr)
	os.Exit(2)
}

func main() {
	sort.SliceStable(benches, func(i, j int) bool { return order(benches[i].name) < order(benches[j].name) })
	if len(os.Args) < 2 {
		usage()
	}
	if os.Args[1] == "parked-child" { // one run of "parked", see sched.go
		parkedChild()
		return
	}
	if os.Args[1] == "net-idle-child" { // one run of "net_idle", see net.go
		netIdleChild()
		return
	}
	enc := json.NewEncoder(os.Stdout)
	for _, arg := range os.Args[1:] {
		if arg == "list" {
			for _, b := range benches {
				fmt.Println(b.name)
			}
			continue
		}
		found := false
		for _, b := range benches {
			if arg == "all" || arg == b.name {
				found = true
				for _, r := range b.run() {
					if err := enc.Encode(r); err != nil {
						fmt.Fprintln(os.Stderr, err)
						os.Exit(1)
					}
				}
				runtime.GC() // leave a clean heap for the next one
			}
		}
		if !found {
			fmt.Fprintf(os.Stderr, "peers: unknown benchmark %q\n", arg)
			usage()
		}
	}
}

// order keeps "list" and "all" in BENCH.md's order.
func order(name string) int {
	for i, n := range []string{
		"spawn", "yield", "sleep_wakeup", "pingpong", "prodcons", "select", "threadring",
		"skynet", "skynet_wg", "mutex", "timers", "parked", "blocking", "handoff", "idle",
		"alloc", "binarytrees", "gcpause100m", "gcpause1g", "gcparked", "gcmutator",
		"pool", "pool_parallel", "pool_overflow", "pool_steal", "pool_expensive_new",
		"net_pingpong", "net_echo", "net_accept", "net_idle",
	} {
		if n == name {
			return i
		}
	}
	return 1 << 30
}
