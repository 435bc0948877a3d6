// net.go: the network benchmarks (goro twins in bench/net_bench.cpp). All
// traffic is TCP over 127.0.0.1.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"time"
)

func init() {
	register("net_pingpong", benchNetPingpong)
	register("net_echo", benchNetEcho)
	register("net_accept", benchNetAccept)
	register("net_idle", benchNetIdle)
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}

// echoServer accepts until ln is closed and echoes each connection.
func echoServer(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			buf := make([]byte, 4096)
			for {
				n, err := c.Read(buf)
				if err != nil {
					c.Close()
					return
				}
				if _, err := c.Write(buf[:n]); err != nil {
					c.Close()
					return
				}
			}
		}()
	}
}

// roundTrips writes 64 B and reads the 64 B echo n times.
func roundTrips(c net.Conn, n int) {
	msg := make([]byte, 64)
	back := make([]byte, 64)
	for i := 0; i < n; i++ {
		_, err := c.Write(msg)
		must(err)
		_, err = io.ReadFull(c, back)
		must(err)
	}
}

// net_pingpong: 64 B request and echo over one loopback TCP connection;
// ns per round trip.
// goro twin: goro_bench_net "net_pingpong".
func benchNetPingpong() []result {
	const n = 50_000
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(err)
	defer ln.Close()
	go echoServer(ln)
	c, err := net.Dial("tcp", ln.Addr().String())
	must(err)
	defer c.Close()
	return one("net_pingpong", "ns/op", func() float64 {
		start := time.Now()
		roundTrips(c, n)
		return nsPer(time.Since(start), n)
	})
}

// net_echo: 64 connections, each doing 64 B round trips at once; ns per
// round trip (total time / total round trips).
// goro twin: goro_bench_net "net_echo".
func benchNetEcho() []result {
	const conns, per = 64, 2_000
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(err)
	defer ln.Close()
	go echoServer(ln)
	cs := make([]net.Conn, conns)
	for i := range cs {
		cs[i], err = net.Dial("tcp", ln.Addr().String())
		must(err)
	}
	defer func() {
		for _, c := range cs {
			c.Close()
		}
	}()
	return one("net_echo", "ns/op", func() float64 {
		var wg sync.WaitGroup
		wg.Add(conns)
		start := time.Now()
		for _, c := range cs {
			go func(c net.Conn) {
				roundTrips(c, per)
				wg.Done()
			}(c)
		}
		wg.Wait()
		return nsPer(time.Since(start), conns*per)
	})
}

// net_accept: dial + accept + 1 byte + close, per connection. The server
// accepts, reads the byte and closes first (so TIME_WAIT stays on its side
// and the client's ephemeral ports are not used up); the client dials,
// writes the byte and waits for the server's close.
// goro twin: goro_bench_net "net_accept".
func benchNetAccept() []result {
	const n = 5_000
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(err)
	defer ln.Close()
	go func() {
		b := make([]byte, 1)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				io.ReadFull(c, b[:1])
				c.Close()
			}()
		}
	}()
	addr := ln.Addr().String()
	return one("net_accept", "ns/op", func() float64 {
		start := time.Now()
		b := make([]byte, 1)
		for i := 0; i < n; i++ {
			c, err := net.Dial("tcp", addr)
			must(err)
			_, err = c.Write(b)
			must(err)
			c.Read(b) // EOF: the server closed
			c.Close()
		}
		return nsPer(time.Since(start), n)
	})
}

// net_idle: memory per idle connection. 9,000 loopback connections, a
// goroutine parked reading on each end; the RSS growth divided by 9,000.
// Each run in a fresh process ("net-idle-child"), as "parked" does.
// goro twin: goro_bench_net "net_idle", counter bytes_per_conn.
const netIdleN = 9_000

func benchNetIdle() []result {
	exe, err := os.Executable()
	must(err)
	var rss []float64
	for r := 0; r < runs; r++ {
		out, err := exec.Command(exe, "net-idle-child").Output()
		if err != nil {
			panic(fmt.Sprintf("net-idle-child: %v", err))
		}
		var v struct{ RSS float64 }
		if err := json.Unmarshal(out, &v); err != nil {
			panic(fmt.Sprintf("net-idle-child output %q: %v", out, err))
		}
		rss = append(rss, v.RSS)
	}
	return []result{{"net_idle", median(rss), "B", rss}}
}

func netIdleChild() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(err)
	var parked sync.WaitGroup
	parked.Add(2 * netIdleN)
	reader := func(c net.Conn) {
		b := make([]byte, 1)
		parked.Done()
		c.Read(b)
		c.Close()
	}
	runtime.GC()
	rss0 := rssBytes()
	go func() {
		for i := 0; i < netIdleN; i++ {
			c, err := ln.Accept()
			must(err)
			go reader(c)
		}
	}()
	cs := make([]net.Conn, netIdleN)
	for i := range cs {
		cs[i], err = net.Dial("tcp", ln.Addr().String())
		must(err)
		go reader(cs[i])
	}
	parked.Wait()
	rss1 := rssBytes()
	json.NewEncoder(os.Stdout).Encode(struct{ RSS float64 }{float64(rss1-rss0) / netIdleN})
}
