// hottext.hpp — where the code of yield's path goes in libgoro.
//
// A yield runs through about ten functions in six files: goro::yield,
// gosched, yield_global (with switch_direct, inlined into it),
// globrunqput_next, globrunqput, globrunqget, runqempty, wakep, getg,
// fiber_switch and goro_switch. Left to the linker,
// each sits wherever its file's .text falls, so an edit to any other
// function in those files moves them against each other and against cache
// lines. That alone cost yield 1.5-2 ns (24 -> 25.5 ns, 6 %) between two
// commits that did not touch its path (bench/README.md, "yield moves with
// the layout").
//
// GORO_YIELD_TEXT puts them in one section, .text.hot.goro_yield. GNU ld's
// default script gathers every .text.hot and .text.hot.* input section,
// from every object file, into one run ahead of the rest of .text, so the
// path is about 2 KiB of contiguous code, each function starting a cache
// line, whatever else changes around it. (lld keeps that order only with
// -z keep-text-section-prefix; the section is then just a name.)
//
// System calls have their own page-aligned section for another reason, the
// TLB (syscall.cpp, GORO_SYSCALL_TEXT).
#pragma once

#define GORO_YIELD_TEXT [[gnu::section(".text.hot.goro_yield"), gnu::aligned(64)]]
