//===- Parallel.h - Deterministic parallel loops for CPU kernels -*- C++ -*-===//
//
// parallelFor(n, body) runs body(i) for every i in [0, n) on up to as many
// threads as the machine has (DSFLOW_NUM_THREADS overrides). Each i runs whole
// on one thread, so a kernel whose iterations write disjoint outputs computes
// the same bits whatever the thread count.
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_RUNTIME_BACKENDS_CPU_PARALLEL_H
#define DSFLOW_RUNTIME_BACKENDS_CPU_PARALLEL_H

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <thread>
#include <vector>

namespace dsflow::cpu {

inline int64_t workerThreads() {
  if (const char *env = std::getenv("DSFLOW_NUM_THREADS"))
    if (int64_t n = std::atoll(env); n > 0)
      return n;
  return std::max<int64_t>(1, std::thread::hardware_concurrency());
}

template <typename Body> void parallelFor(int64_t n, Body body) {
  int64_t threads = std::min(n, workerThreads());
  if (threads <= 1) {
    for (int64_t i = 0; i < n; ++i)
      body(i);
    return;
  }
  std::atomic<int64_t> next{0};
  auto work = [&] {
    for (int64_t i = next++; i < n; i = next++)
      body(i);
  };
  std::vector<std::thread> pool;
  for (int64_t t = 1; t < threads; ++t)
    pool.emplace_back(work);
  work();
  for (std::thread &t : pool)
    t.join();
}

} // namespace dsflow::cpu

#endif // DSFLOW_RUNTIME_BACKENDS_CPU_PARALLEL_H
