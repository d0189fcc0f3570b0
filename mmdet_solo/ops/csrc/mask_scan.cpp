// Mask scan: the per-candidate statistics post-processing needs, in one pass over soft masks.
//
// For a block of pixels of U candidate masks, (U, n) soft values (rows may be strided):
//   binary[:, :n] = soft > thr          (written into the caller's (U, >= n) bool view)
//   areas[u]     += count(soft[u] > thr)                  (int64, exact)
//   sums[u]      += sum of soft[u] where > thr            (float64)
// PyTorch does this with five passes (compare, convert, sum, multiply, sum); here each value
// is read once while it is in cache. Post-processing calls it per block of columns, so the
// (U, H*W) float masks never exist at once.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <cstdint>

namespace mmdet_solo {

// Independent accumulators for thresholds below kFixedMin (the order of float64 additions
// then matters only beyond 1e-16).
constexpr int kLanes = 8;
constexpr float kFixedMin = 1.f / 32.f;
constexpr float kFixedScale = 268435456.f;  // 2**28

void mask_scan_cpu(const at::Tensor& soft, double thr, at::Tensor binary, at::Tensor areas,
                   at::Tensor sums) {
  TORCH_CHECK_VALUE(soft.dim() == 2 && soft.scalar_type() == at::kFloat && soft.stride(1) == 1,
                    "mask_scan: soft must be (U, n) float32 with contiguous rows, got ",
                    soft.sizes(), " ", soft.scalar_type(), " strides ", soft.strides());
  const int64_t u = soft.size(0), n = soft.size(1);
  TORCH_CHECK_VALUE(binary.dim() == 2 && binary.scalar_type() == at::kBool &&
                        binary.size(0) == u && binary.size(1) == n && binary.stride(1) == 1,
                    "mask_scan: binary must be (U, n) bool with contiguous rows, got ",
                    binary.sizes(), " ", binary.scalar_type());
  TORCH_CHECK_VALUE(areas.dim() == 1 && areas.size(0) == u && areas.scalar_type() == at::kLong &&
                        areas.is_contiguous(),
                    "mask_scan: areas must be (U,) int64");
  TORCH_CHECK_VALUE(sums.dim() == 1 && sums.size(0) == u && sums.scalar_type() == at::kDouble &&
                        sums.is_contiguous(),
                    "mask_scan: sums must be (U,) float64");
  TORCH_CHECK_VALUE(soft.device().is_cpu() && binary.device().is_cpu() &&
                        areas.device().is_cpu() && sums.device().is_cpu(),
                    "mask_scan: CPU tensors only");
  const float t = static_cast<float>(thr);
  const float* src = soft.data_ptr<float>();
  bool* dst = binary.data_ptr<bool>();
  int64_t* area = areas.data_ptr<int64_t>();
  double* total = sums.data_ptr<double>();
  const int64_t ss = soft.stride(0), bs = binary.stride(0);
  // With thr >= 1/32 every value summed is a multiple of 2**-28 below 1 (a float32 in
  // [2**-5, 1)), so the sums are exact as integers of 2**-28: vectorisable int64 adds.
  const bool fixed = t >= kFixedMin && t < 1.f;
  at::parallel_for(0, u, 1, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const float* v = src + r * ss;
      bool* b = dst + r * bs;
      int64_t count = 0;
      bool in_range = fixed;
      if (fixed) {  // soft masks are probabilities; a value >= 4 (no int32) takes the other path
        for (int64_t i = 0; i < n; ++i) in_range &= !(v[i] >= 4.f);
      }
      if (in_range) {
        int64_t acc = 0;
        for (int64_t i = 0; i < n; ++i) {
          const float f = v[i];
          const bool on = f > t;
          b[i] = on;
          count += on;
          acc += static_cast<int64_t>(static_cast<int32_t>((on ? f : 0.f) * kFixedScale));
        }
        total[r] += static_cast<double>(acc) / kFixedScale;
      } else {
        double acc[kLanes] = {0.0};
        int64_t i = 0;
        for (; i + kLanes <= n; i += kLanes) {
          for (int k = 0; k < kLanes; ++k) {
            const bool on = v[i + k] > t;
            b[i + k] = on;
            count += on;
            acc[k] += on ? static_cast<double>(v[i + k]) : 0.0;
          }
        }
        for (; i < n; ++i) {
          const bool on = v[i] > t;
          b[i] = on;
          count += on;
          acc[0] += on ? static_cast<double>(v[i]) : 0.0;
        }
        for (int k = 0; k < kLanes; ++k) total[r] += acc[k];
      }
      area[r] += count;
    }
  });
}

}  // namespace mmdet_solo

TORCH_LIBRARY_FRAGMENT(mmdet_solo, m) {
  m.def(
      "mask_scan(Tensor soft, float thr, Tensor(a!) binary, Tensor(b!) areas, "
      "Tensor(c!) sums) -> ()");
}

TORCH_LIBRARY_IMPL(mmdet_solo, CPU, m) {
  m.impl("mask_scan", &mmdet_solo::mask_scan_cpu);
}
