// A caching CPU allocator for the scope of mmdet_solo's own inference.
//
// PyTorch's CPU allocator hands every large tensor fresh pages from the OS (glibc maps
// allocations above its mmap threshold, then unmaps them on free), so each feature map of
// every forward pays its page faults again: on a 2-core VM that is ~30 % of a SOLOv2 R50
// forward (BENCHMARKS.md). Like PyTorch's CUDA caching allocator, this one keeps freed blocks
// and hands them out again, but only to allocations made on a thread inside a scope
// (cpu_cache_enter/exit, entered by the detectors' inference): everything else in the
// process is allocated and freed exactly as before (c10::alloc_cpu / c10::free_cpu).
//
// * Blocks of at least kMinBytes are cached, in size classes of a quarter octave (a block
//   serves any request of its class; <= 25 % unused tail, never touched).
// * Freed blocks are kept up to a limit (MMDET_SOLO_CPU_CACHE_MB, default 2048 MB of free
//   blocks); beyond it they go back to the OS. cpu_cache_empty() returns them all.
// * The allocator is installed (c10::SetCPUAllocator) on the first scope entry; every
//   pointer it returns is its own context with one deleter, as the default allocator's.
#include <ATen/ATen.h>
#include <c10/core/CPUAllocator.h>
#include <c10/core/impl/alloc_cpu.h>
#include <torch/library.h>

#include <cstdint>
#include <cstdlib>
#include <mutex>
#ifndef _WIN32
#include <pthread.h>
#endif
#include <unordered_map>
#include <vector>

namespace mmdet_solo {
namespace {

constexpr size_t kMinBytes = size_t(1) << 20;
thread_local int64_t scope_depth = 0;

size_t size_class(size_t n) {
  size_t octave = 1;  // the largest power of 2 <= n
  while (octave <= n / 2) octave *= 2;
  const size_t step = octave / 4;
  return (n + step - 1) / step * step;
}

size_t limit_from_env() {
  const char* env = std::getenv("MMDET_SOLO_CPU_CACHE_MB");
  if (env == nullptr || *env == '\0') return size_t(2048) << 20;
  char* end = nullptr;
  const long long mb = std::strtoll(env, &end, 10);
  TORCH_CHECK_VALUE(end != env && *end == '\0' && mb >= 0,
                    "MMDET_SOLO_CPU_CACHE_MB must be a number of megabytes >= 0, got '", env,
                    "'");
  return static_cast<size_t>(mb) << 20;
}

void delete_block(void* ptr);

class ScopedCachingAllocator final : public c10::Allocator {
 public:
  c10::DataPtr allocate(size_t n) override {
    void* ptr = nullptr;
    if (scope_depth > 0 && n >= kMinBytes) {
      const size_t size = size_class(n);
      {
        std::lock_guard<std::mutex> lock(mu_);
        auto it = free_.find(size);
        if (it != free_.end() && !it->second.empty()) {
          ptr = it->second.back();
          it->second.pop_back();
          free_bytes_ -= size;
          ++hits_;
        } else {
          ++misses_;
        }
      }
      if (ptr == nullptr) ptr = c10::alloc_cpu(size);
      std::lock_guard<std::mutex> lock(mu_);
      live_[ptr] = size;
    } else {
      ptr = c10::alloc_cpu(n);
    }
    c10::profiledCPUMemoryReporter().New(ptr, n);
    return {ptr, ptr, &delete_block, c10::Device(c10::DeviceType::CPU)};
  }

  c10::DeleterFnPtr raw_deleter() const override { return &delete_block; }

  void copy_data(void* dest, const void* src, std::size_t count) const override {
    default_copy_data(dest, src, count);
  }

  void release(void* ptr) {
    if (ptr == nullptr) return;
    c10::profiledCPUMemoryReporter().Delete(ptr);
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = live_.find(ptr);
      if (it != live_.end()) {
        const size_t size = it->second;
        live_.erase(it);
        if (free_bytes_ + size <= limit_) {
          free_[size].push_back(ptr);
          free_bytes_ += size;
          return;
        }
      }
    }
    c10::free_cpu(ptr);
  }

  void empty() {
    std::vector<void*> blocks;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (auto& entry : free_) {
        blocks.insert(blocks.end(), entry.second.begin(), entry.second.end());
      }
      free_.clear();
      free_bytes_ = 0;
    }
    for (void* p : blocks) c10::free_cpu(p);
  }

  std::vector<int64_t> stats() {
    std::lock_guard<std::mutex> lock(mu_);
    int64_t live_bytes = 0;
    for (const auto& entry : live_) live_bytes += static_cast<int64_t>(entry.second);
    return {static_cast<int64_t>(free_bytes_), live_bytes, hits_, misses_,
            static_cast<int64_t>(limit_)};
  }

  void set_limit(size_t limit) {
    std::lock_guard<std::mutex> lock(mu_);
    limit_ = limit;
  }

  // fork(): the child must not inherit the lock held by another thread (pthread_atfork)
  void lock() { mu_.lock(); }
  void unlock() { mu_.unlock(); }

 private:
  std::mutex mu_;
  std::unordered_map<void*, size_t> live_;                 // cached-class blocks in use
  std::unordered_map<size_t, std::vector<void*>> free_;    // size class -> free blocks
  size_t free_bytes_ = 0;
  size_t limit_ = 0;
  int64_t hits_ = 0, misses_ = 0;
};

// Never destroyed: tensors may outlive every static destructor.
ScopedCachingAllocator& cache() {
  static auto* instance = new ScopedCachingAllocator();
  return *instance;
}

void delete_block(void* ptr) { cache().release(ptr); }

bool install() {
  static std::once_flag once;
  std::call_once(once, [] {
    cache().set_limit(limit_from_env());
#ifndef _WIN32
    pthread_atfork([] { cache().lock(); }, [] { cache().unlock(); }, [] { cache().unlock(); });
#endif
    c10::SetCPUAllocator(&cache(), /*priority=*/1);
  });
  return c10::GetCPUAllocator() == &cache();
}

}  // namespace

bool cpu_cache_enter() {
  if (!install()) return false;
  ++scope_depth;
  return true;
}

void cpu_cache_exit() {
  TORCH_CHECK(scope_depth > 0, "cpu_cache_exit: no cpu_cache_enter to close");
  --scope_depth;
}

void cpu_cache_empty() { cache().empty(); }

std::vector<int64_t> cpu_cache_stats() { return cache().stats(); }

}  // namespace mmdet_solo

TORCH_LIBRARY_FRAGMENT(mmdet_solo, m) {
  m.def("cpu_cache_enter() -> bool", &mmdet_solo::cpu_cache_enter);
  m.def("cpu_cache_exit() -> ()", &mmdet_solo::cpu_cache_exit);
  m.def("cpu_cache_empty() -> ()", &mmdet_solo::cpu_cache_empty);
  m.def("cpu_cache_stats() -> int[]", &mmdet_solo::cpu_cache_stats);
}
