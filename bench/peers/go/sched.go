// Scheduler benchmarks: goroutine creation, yielding, sleeping, mutexes,
// memory per parked goroutine, system calls and idle cost.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

func init() {
	register("spawn", benchSpawn)
	register("yield", benchYield)
	register("sleep_wakeup", benchSleepWakeup)
	register("mutex", benchMutex)
	register("timers", benchTimers)
	register("parked", benchParked)
	register("blocking", benchBlocking)
	register("handoff", benchHandoff)
	register("idle", benchIdle)
}

// spawn: cost of creating, running and finishing a goroutine. 1M × go
// func(){ wg.Done() }, then wg.Wait(); ns per goroutine.
// goro twin: goro::go([&]{ wg.done(); }) ×1M, wg.wait() (goro_bench_sched "spawn").
func benchSpawn() []result {
	const n = 1_000_000
	return one("spawn", "ns/op", func() float64 {
		var wg sync.WaitGroup
		wg.Add(n)
		start := time.Now()
		for i := 0; i < n; i++ {
			go func() { wg.Done() }()
		}
		wg.Wait()
		return nsPer(time.Since(start), n)
	})
}

// yield: one goroutine switch through the run queue. GOMAXPROCS=1, two
// goroutines each call runtime.Gosched() n times; ns per yield (total time /
// total yields).
// goro twin: goro::yield() in the same setup with gomaxprocs(1).
func benchYield() []result {
	const n = 2_000_000 // per goroutine
	return withProcs(1, func() []result {
		return one("yield", "ns/op", func() float64 {
			var wg sync.WaitGroup
			wg.Add(2)
			start := time.Now()
			for g := 0; g < 2; g++ {
				go func() {
					for i := 0; i < n; i++ {
						runtime.Gosched()
					}
					wg.Done()
				}()
			}
			wg.Wait()
			return nsPer(time.Since(start), 2*n)
		})
	})
}

// sleep_wakeup: timer precision under load. 10k goroutines each sleep 1 ms
// once; the value is the mean lateness (actual sleep − 1 ms) in µs. A run
// averages 10 such rounds.
// goro twin: goro::sleep_for(1ms) in 10k goroutines, counter "us".
func benchSleepWakeup() []result {
	const n, rounds = 10_000, 10
	const d = time.Millisecond
	return one("sleep_wakeup", "us", func() float64 {
		late := make([]time.Duration, n)
		var total time.Duration
		for r := 0; r < rounds; r++ {
			var wg sync.WaitGroup
			wg.Add(n)
			for i := 0; i < n; i++ {
				go func(i int) {
					t := time.Now()
					time.Sleep(d)
					late[i] = time.Since(t) - d
					wg.Done()
				}(i)
			}
			wg.Wait()
			for _, l := range late {
				total += l
			}
		}
		return float64(total.Nanoseconds()) / 1e3 / float64(n*rounds)
	})
}

// mutex: contended sync.Mutex. 4 goroutines each do n × (Lock; counter++;
// Unlock); ns per lock/unlock pair over all goroutines (total time / 4n).
// goro twin: goro::Mutex with the same 4 goroutines.
func benchMutex() []result {
	const g, n = 4, 2_000_000
	return one("mutex", "ns/op", func() float64 {
		var mu sync.Mutex
		counter := 0
		var wg sync.WaitGroup
		wg.Add(g)
		start := time.Now()
		for j := 0; j < g; j++ {
			go func() {
				for i := 0; i < n; i++ {
					mu.Lock()
					counter++
					mu.Unlock()
				}
				wg.Done()
			}()
		}
		wg.Wait()
		el := time.Since(start)
		if counter != g*n {
			panic("mutex: lost updates")
		}
		return nsPer(el, g*n)
	})
}

// timers: many short sleeps at once. 10k goroutines each call
// time.Sleep(1ms) 10 times; total ms (the floor is 10 ms).
// goro twin: goro::sleep_for(1ms) ×10 in 10k goroutines, counter "ms".
func benchTimers() []result {
	const n, k = 10_000, 10
	return one("timers", "ms", func() float64 {
		var wg sync.WaitGroup
		wg.Add(n)
		start := time.Now()
		for i := 0; i < n; i++ {
			go func() {
				for j := 0; j < k; j++ {
					time.Sleep(time.Millisecond)
				}
				wg.Done()
			}()
		}
		wg.Wait()
		return ms(time.Since(start))
	})
}

// parked: memory per blocked goroutine. Starts 1M goroutines that each block
// on a channel receive and reports the RSS growth (/proc/self/statm) divided
// by 1M, in bytes; a second line "parked_sys" gives the growth of
// runtime.MemStats.Sys instead. Then it releases them.
// Each run needs a fresh process (a warmed-up runtime reuses its stacks and Gs
// and would show no growth), so every run re-executes this program with the
// hidden argument "parked-child"; there is no warm-up run.
// goro twin: 1M goroutines blocked in Chan::recv(), counter "bytes_per_g".
const parkedN = 1_000_000

func benchParked() []result {
	exe, err := os.Executable()
	if err != nil {
		panic(err)
	}
	var rss, sys []float64
	for r := 0; r < runs; r++ {
		out, err := exec.Command(exe, "parked-child").Output()
		if err != nil {
			panic(fmt.Sprintf("parked-child: %v", err))
		}
		var v struct{ RSS, Sys float64 }
		if err := json.Unmarshal(out, &v); err != nil {
			panic(fmt.Sprintf("parked-child output %q: %v", out, err))
		}
		rss = append(rss, v.RSS)
		sys = append(sys, v.Sys)
	}
	return []result{
		{"parked", median(rss), "B", rss},
		{"parked_sys", median(sys), "B", sys},
	}
}

// parkedChild is one run of "parked", in its own process.
func parkedChild() {
	ch := make(chan struct{})
	var started, done sync.WaitGroup
	started.Add(parkedN)
	done.Add(parkedN)
	runtime.GC()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	rss0 := rssBytes()
	for i := 0; i < parkedN; i++ {
		go func() {
			started.Done()
			<-ch
			done.Done()
		}()
	}
	started.Wait()
	time.Sleep(10 * time.Millisecond) // let the last ones reach the receive
	rss1 := rssBytes()
	runtime.ReadMemStats(&m1)
	close(ch)
	done.Wait()
	json.NewEncoder(os.Stdout).Encode(struct{ RSS, Sys float64 }{
		float64(rss1-rss0) / parkedN,
		float64(m1.Sys-m0.Sys) / parkedN,
	})
}

// rssBytes reads the resident set size from /proc/self/statm.
func rssBytes() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		panic(err)
	}
	f := strings.Fields(string(b))
	pages, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		panic(err)
	}
	return pages * int64(os.Getpagesize())
}

// blocking: cost of a trivial system call. syscall.Getppid() in a loop; ns
// per call. In Go 1.19 syscall.Getppid is a raw system call (no
// entersyscall/exitsyscall), so a second line "blocking_syscall" times
// syscall.Syscall(SYS_GETPPID), which does go through the scheduler's
// syscall bookkeeping like goro's blocking() does.
// goro twin: goro::blocking([]{ return getppid(); }).
func benchBlocking() []result {
	const n = 3_000_000
	r := one("blocking", "ns/op", func() float64 {
		start := time.Now()
		for i := 0; i < n; i++ {
			syscall.Getppid()
		}
		return nsPer(time.Since(start), n)
	})
	return append(r, one("blocking_syscall", "ns/op", func() float64 {
		start := time.Now()
		for i := 0; i < n; i++ {
			syscall.Syscall(syscall.SYS_GETPPID, 0, 0, 0)
		}
		return nsPer(time.Since(start), n)
	})...)
}

// handoff: does a P stuck in a blocking system call get handed off?
// GOMAXPROCS=1. Goroutine B sleeps until deadline = t0+2ms; goroutine A
// enters a real 50 ms nanosleep(2) system call right after t0, so B becomes
// runnable while the only P is held by A's syscall. The value is how late B
// runs after its deadline, in µs (mean of 4 rounds per run).
// goro twin: A in goro::blocking(nanosleep 50ms), B in goro::sleep_until,
// gomaxprocs(1), counter "us".
func benchHandoff() []result {
	const rounds = 4
	const lead = 2 * time.Millisecond
	return withProcs(1, func() []result {
		return one("handoff", "us", func() float64 {
			var total time.Duration
			for r := 0; r < rounds; r++ {
				var wg sync.WaitGroup
				wg.Add(2)
				deadline := time.Now().Add(lead)
				var late time.Duration
				go func() { // B
					time.Sleep(time.Until(deadline))
					late = time.Since(deadline)
					wg.Done()
				}()
				go func() { // A
					ts := syscall.NsecToTimespec(int64(50 * time.Millisecond))
					syscall.Syscall(syscall.SYS_NANOSLEEP, uintptr(unsafe.Pointer(&ts)), 0, 0)
					wg.Done()
				}()
				wg.Wait()
				total += late
			}
			return float64(total.Nanoseconds()) / 1e3 / rounds
		})
	})
}

// idle: CPU burnt by an idle runtime. main blocks in time.Sleep for 5 s
// (PEERS_IDLE_SECONDS overrides) with the default GOMAXPROCS; the value is
// user+sys CPU time from getrusage over that window, in seconds. No warm-up.
// goro twin: the runtime started and main asleep in goro::sleep_for,
// counter "cpu_s".
func benchIdle() []result {
	secs := 5.0
	if s := os.Getenv("PEERS_IDLE_SECONDS"); s != "" {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			panic("PEERS_IDLE_SECONDS: " + err.Error())
		}
		secs = v
	}
	vals := make([]float64, runs)
	for i := range vals {
		c0 := cpuSeconds()
		time.Sleep(time.Duration(secs * float64(time.Second)))
		vals[i] = cpuSeconds() - c0
	}
	return []result{{"idle", median(vals), "s", vals}}
}

// cpuSeconds is the process's user+sys CPU time.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic(err)
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime)
}
