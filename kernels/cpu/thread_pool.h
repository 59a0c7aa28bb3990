// A fixed pool of worker threads owned by whoever runs CPU kernels (a Model's runtime), never a
// global. ParallelFor splits [0, n) into one contiguous range per thread; the calling thread
// takes the first range, so a pool of 1 thread runs everything inline.
#ifndef FP4LM_KERNELS_CPU_THREAD_POOL_H_
#define FP4LM_KERNELS_CPU_THREAD_POOL_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace engine::kernels {

class ThreadPool {
 public:
  // `num_threads` counts the caller: N means N-1 workers. 0 = std::thread::hardware_concurrency.
  explicit ThreadPool(int num_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int num_threads() const { return static_cast<int>(workers_.size()) + 1; }

  // Calls fn(thread_index, begin, end) on disjoint ranges covering [0, n) and returns when all
  // are done. Ranges are contiguous and in thread order, so results are deterministic. Not
  // re-entrant: fn must not call ParallelFor on the same pool.
  using RangeFn = std::function<void(int thread_index, int64_t begin, int64_t end)>;
  void ParallelFor(int64_t n, const RangeFn& fn);

 private:
  void WorkerLoop(int thread_index);
  void RunRange(int thread_index);

  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable done_;
  const RangeFn* job_ = nullptr;      // guarded by mutex_
  int64_t job_size_ = 0;              // guarded by mutex_
  uint64_t generation_ = 0;           // bumped per job; guarded by mutex_
  std::atomic<uint64_t> published_generation_{0};  // lock-free copy the workers spin on
  std::atomic<int> pending_{0};       // workers still running the current job
  bool stop_ = false;                 // guarded by mutex_
};

}  // namespace engine::kernels

#endif  // FP4LM_KERNELS_CPU_THREAD_POOL_H_
