// gc_seam.cpp — see gc_seam.hpp: forward to the collector, or (with
// GORO_POOL_HAVE_GC=0) stand in for it.
#include "pool/gc_seam.hpp"

#include <utility>
#include <vector>

#if GORO_POOL_HAVE_GC
#include "goro/gc.hpp"
#endif

namespace goro::detail::poolgc {

#if GORO_POOL_HAVE_GC

bool have_gc() {
  return true;
}
void add_root(const void* p, std::size_t len) {
  detail::gc_add_root(p, len);
}
void remove_root(const void* p) {
  detail::gc_remove_root(p);
}
bool is_object_start(const void* p) {
  return detail::gc_is_object_start(p);
}
std::uint64_t register_cleanup(std::function<void()> hook) {
  return gc::register_cleanup(std::move(hook));
}
void run_cleanup_hooks() {}

#else

namespace {
// hooks is written once (pool.cpp registers its one hook under its lock) and
// read with the world stopped.
std::vector<std::function<void()> >& hooks() {
  static std::vector<std::function<void()> > h;
  return h;
}
}  // namespace

bool have_gc() {
  return false;
}
void add_root(const void*, std::size_t) {}
void remove_root(const void*) {}
bool is_object_start(const void*) {
  return true;
}
std::uint64_t register_cleanup(std::function<void()> hook) {
  hooks().push_back(std::move(hook));
  return hooks().size();
}
void run_cleanup_hooks() {
  for (auto& h : hooks()) h();
}

#endif

}  // namespace goro::detail::poolgc
