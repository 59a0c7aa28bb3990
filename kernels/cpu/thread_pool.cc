#include "kernels/cpu/thread_pool.h"

#include <algorithm>
#include <chrono>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define FP4LM_CPU_RELAX() _mm_pause()
#else
#define FP4LM_CPU_RELAX() \
  do {                    \
  } while (0)
#endif

namespace engine::kernels {
namespace {

// A decode step issues a few hundred ParallelFor calls of 10-300 us each. Sleeping on a futex
// between them costs a wake-up (tens of microseconds, and a context switch) per call and per
// side, which measured as half of a SmolLM2 decode step. So both sides spin first: workers
// while waiting for the next job, the caller while waiting for the workers. The spin is bounded
// in time, not iterations (a pause costs 10-140 cycles depending on the CPU), so an idle pool
// sleeps after ~100 us and does not steal a core from other processes.
constexpr auto kSpinTime = std::chrono::microseconds(100);

// Spins until done() or the spin time has passed; returns done(). Between rounds of pauses it
// yields, so when there are more runnable threads than cores (two test binaries side by side,
// another program) the thread that has work gets the core instead of a spinner.
template <typename Done>
bool SpinUntil(Done done) {
  const auto deadline = std::chrono::steady_clock::now() + kSpinTime;
  for (;;) {
    for (int i = 0; i < 64; ++i) {
      if (done()) return true;
      FP4LM_CPU_RELAX();
    }
    if (std::chrono::steady_clock::now() >= deadline) return done();
    std::this_thread::yield();
  }
}

}  // namespace

ThreadPool::ThreadPool(int num_threads) {
  if (num_threads <= 0) num_threads = static_cast<int>(std::thread::hardware_concurrency());
  num_threads = std::max(num_threads, 1);
  workers_.reserve(static_cast<size_t>(num_threads - 1));
  for (int i = 1; i < num_threads; ++i) workers_.emplace_back([this, i] { WorkerLoop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
    ++generation_;
    published_generation_.store(generation_, std::memory_order_release);
  }
  wake_.notify_all();
  for (std::thread& t : workers_) t.join();
}

void ThreadPool::RunRange(int thread_index) {
  const int64_t threads = num_threads();
  const int64_t begin = job_size_ * thread_index / threads;
  const int64_t end = job_size_ * (thread_index + 1) / threads;
  if (begin < end) (*job_)(thread_index, begin, end);
}

void ThreadPool::ParallelFor(int64_t n, const RangeFn& fn) {
  if (n <= 0) return;
  if (workers_.empty() || n == 1) {
    fn(0, 0, n);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    job_ = &fn;
    job_size_ = n;
    pending_.store(static_cast<int>(workers_.size()), std::memory_order_relaxed);
    ++generation_;
    published_generation_.store(generation_, std::memory_order_release);
  }
  wake_.notify_all();
  RunRange(0);
  if (SpinUntil([this] { return pending_.load(std::memory_order_acquire) == 0; })) return;
  std::unique_lock<std::mutex> lock(mutex_);
  done_.wait(lock, [this] { return pending_.load(std::memory_order_acquire) == 0; });
}

void ThreadPool::WorkerLoop(int thread_index) {
  uint64_t seen = 0;
  for (;;) {
    SpinUntil([&] { return published_generation_.load(std::memory_order_acquire) != seen; });
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return generation_ != seen; });
      seen = generation_;
      if (stop_) return;
    }
    RunRange(thread_index);
    // The last worker to finish wakes a caller that stopped spinning. Taking the mutex orders
    // the notify after the caller's predicate check, so the wake-up cannot be lost.
    if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      std::lock_guard<std::mutex> lock(mutex_);
      done_.notify_one();
    }
  }
}

}  // namespace engine::kernels
