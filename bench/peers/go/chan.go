// Channel benchmarks: round trips, buffered streaming, select, the thread
// ring, and the skynet tree (which is also a spawn benchmark).
package main

import (
	"runtime"
	"sync"
	"time"
)

func init() {
	register("pingpong", benchPingpong)
	register("prodcons", benchProdcons)
	register("select", benchSelect)
	register("threadring", benchThreadring)
	register("skynet", benchSkynet)
	register("skynet_wg", benchSkynetWG)
	register("chanmake", benchChanmake)
	register("chanmake_int", benchChanmakeInt)
}

// pingpong: unbuffered channel round trip. main sends on ping, the partner
// goroutine receives and answers on pong, main receives; ns per round trip.
// goro twin: two goro::Chan<int>(0) and one partner goroutine.
func benchPingpong() []result {
	const n = 1_000_000
	return one("pingpong", "ns/op", func() float64 {
		ping, pong := make(chan int), make(chan int)
		go func() {
			for v := range ping {
				pong <- v
			}
		}()
		start := time.Now()
		for i := 0; i < n; i++ {
			ping <- i
			<-pong
		}
		el := time.Since(start)
		close(ping)
		return nsPer(el, n)
	})
}

// prodcons: buffered channel streaming. A chan int of capacity 128, one
// producer goroutine sends n items, one consumer goroutine receives them; ns
// per item.
// goro twin: goro::Chan<int>(128), one producer and one consumer goroutine.
func benchProdcons() []result {
	const n = 8_000_000
	return one("prodcons", "ns/op", func() float64 {
		ch := make(chan int, 128)
		var wg sync.WaitGroup
		wg.Add(2)
		start := time.Now()
		go func() {
			for i := 0; i < n; i++ {
				ch <- i
			}
			wg.Done()
		}()
		go func() {
			for i := 0; i < n; i++ {
				<-ch
			}
			wg.Done()
		}()
		wg.Wait()
		return nsPer(time.Since(start), n)
	})
}

// select: 2-case select receive. Two producer goroutines each send n/2 items
// on their own unbuffered channel; one consumer goroutine runs a 2-case
// select over both channels n times; ns per select.
// goro twin: goro::select with two recv cases on two goro::Chan<int>(0).
func benchSelect() []result {
	const n = 2_000_000
	return one("select", "ns/op", func() float64 {
		a, b := make(chan int), make(chan int)
		var wg sync.WaitGroup
		wg.Add(3)
		start := time.Now()
		for _, c := range []chan int{a, b} {
			go func(c chan int) {
				for i := 0; i < n/2; i++ {
					c <- i
				}
				wg.Done()
			}(c)
		}
		go func() {
			for i := 0; i < n; i++ {
				select {
				case <-a:
				case <-b:
				}
			}
			wg.Done()
		}()
		wg.Wait()
		return nsPer(time.Since(start), n)
	})
}

// threadring: 503 goroutines in a ring, each receiving on its own unbuffered
// channel and passing the token (a hop counter) to the next; ns per hop.
// goro twin: 503 goroutines and 503 goro::Chan<int>(0).
func benchThreadring() []result {
	const ring, hops = 503, 3_000_000
	return one("threadring", "ns/op", func() float64 {
		chans := make([]chan int, ring)
		for i := range chans {
			chans[i] = make(chan int)
		}
		done := make(chan struct{})
		for i := 0; i < ring; i++ {
			go func(in, out chan int) {
				for t := range in {
					if t == 0 {
						done <- struct{}{}
						continue
					}
					out <- t - 1
				}
			}(chans[i], chans[(i+1)%ring])
		}
		start := time.Now()
		chans[0] <- hops
		<-done
		el := time.Since(start)
		for _, c := range chans { // nobody is sending now: all goroutines exit
			close(c)
		}
		return nsPer(el, hops)
	})
}

// skynetLeaves is the number of leaves of the skynet tree (10-ary, depth 6,
// 1,111,111 goroutines in all); the leaves' numbers sum to skynetSum.
const skynetLeaves, skynetSum = 1_000_000, 499_999_500_000

// skynet: 1M-leaf 10-ary tree of goroutines. Each leaf sends its number on
// its parent's unbuffered channel, each parent sums its 10 children and sends
// the sum up; total ms.
// goro twin: the same tree with goro::Chan<long>(0), counter "ms".
func benchSkynet() []result {
	return one("skynet", "ms", func() float64 {
		c := make(chan int)
		start := time.Now()
		go skynet(c, 0, skynetLeaves)
		sum := <-c
		el := time.Since(start)
		if sum != skynetSum {
			panic("skynet: wrong sum")
		}
		return ms(el)
	})
}

func skynet(c chan int, num, size int) {
	if size == 1 {
		c <- num
		return
	}
	rc := make(chan int)
	size /= 10
	for i := 0; i < 10; i++ {
		go skynet(rc, num+i*size, size)
	}
	sum := 0
	for i := 0; i < 10; i++ {
		sum += <-rc
	}
	c <- sum
}

// skynet_wg: the skynet tree without channels. Node k (heap order, children
// 10k+1..10k+10) writes its value into a preallocated results array; a parent
// spawns its 10 children, waits on its own sync.WaitGroup, then sums their
// slots; total ms.
// goro twin: the same tree with goro::WaitGroup and a results array, counter
// "ms".
func benchSkynetWG() []result {
	const nodes = 1_111_111
	results := make([]int, nodes) // allocated outside the timing, reused
	return one("skynet_wg", "ms", func() float64 {
		var wg sync.WaitGroup
		wg.Add(1)
		start := time.Now()
		go skynetWG(results, &wg, 0, 0, skynetLeaves)
		wg.Wait()
		el := time.Since(start)
		if results[0] != skynetSum {
			panic("skynet_wg: wrong sum")
		}
		return ms(el)
	})
}

func skynetWG(results []int, parent *sync.WaitGroup, k, num, size int) {
	if size == 1 {
		results[k] = num
		parent.Done()
		return
	}
	var wg sync.WaitGroup
	wg.Add(10)
	size /= 10
	for i := 0; i < 10; i++ {
		go skynetWG(results, &wg, 10*k+1+i, num+i*size, size)
	}
	wg.Wait()
	sum := 0
	for i := 0; i < 10; i++ {
		sum += results[10*k+1+i]
	}
	results[k] = sum
	parent.Done()
}

// chanmake: on GOMAXPROCS goroutines at once, make a buffered channel
// (capacity 16) and drop the one made 16 steps earlier (a ring of 16 per
// goroutine, in a global so the channels escape to the heap, as every Go
// channel does anyway); ns per make+drop = wall time / all channels. The
// element type is a pointer. chanmake_int: int64 elements.
// goro twin: goro::make_chan<std::int64_t*>(16) into a ring of 16 Chan
// values per goroutine (chanmake_int: make_chan<std::int64_t>(16)).
const chanmakeN = 1_000_000 // per goroutine

var chanmakeRings [][16]chan *int64
var chanmakeIntRings [][16]chan int64

func benchChanmake() []result {
	return one("chanmake", "ns/op", func() float64 {
		g := runtime.GOMAXPROCS(0)
		chanmakeRings = make([][16]chan *int64, g)
		var wg sync.WaitGroup
		wg.Add(g)
		start := time.Now()
		for j := 0; j < g; j++ {
			go func(ring *[16]chan *int64) {
				for i := 0; i < chanmakeN; i++ {
					ring[i%16] = make(chan *int64, 16)
				}
				wg.Done()
			}(&chanmakeRings[j])
		}
		wg.Wait()
		return nsPer(time.Since(start), g*chanmakeN)
	})
}

func benchChanmakeInt() []result {
	return one("chanmake_int", "ns/op", func() float64 {
		g := runtime.GOMAXPROCS(0)
		chanmakeIntRings = make([][16]chan int64, g)
		var wg sync.WaitGroup
		wg.Add(g)
		start := time.Now()
		for j := 0; j < g; j++ {
			go func(ring *[16]chan int64) {
				for i := 0; i < chanmakeN; i++ {
					ring[i%16] = make(chan int64, 16)
				}
				wg.Done()
			}(&chanmakeIntRings[j])
		}
		wg.Wait()
		return nsPer(time.Since(start), g*chanmakeN)
	})
}
