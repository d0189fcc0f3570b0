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

#include <algorithm>
#include <cstdint>

namespace mmdet_solo {

// Independent float64 accumulators for thresholds below kFixedMin (exact for thr >= 1/32, see
// segm_postprocess), and the fixed-point path for thr >= kFixedMin.
constexpr int kLanes = 8;
constexpr float kFixedMin = 0.5f;
constexpr float kFixedScale = 16777216.f;  // 2**24
constexpr int64_t kBlock = 64;

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define MMDET_SOLO_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define MMDET_SOLO_CLONES
#endif

// One row, thr >= kFixedMin and every value in [0, 1] (probabilities): a value above the
// threshold is a multiple of 2**-24 in (0.5, 1], so the sum is exact in units of 2**-24;
// int32 partial sums of kBlock values (<= 2**30) vectorise.
MMDET_SOLO_CLONES void scan_row_fixed(const float* v, bool* b, int64_t n, float t,
                                      int64_t* count_out, double* sum_out) {
  for (int64_t i = 0; i < n; ++i) b[i] = v[i] > t;
  int64_t count = 0, acc = 0;
  for (int64_t i = 0; i < n; ++i) count += v[i] > t ? 1 : 0;
  for (int64_t start = 0; start < n; start += kBlock) {
    const int64_t stop = std::min(start + kBlock, n);
    int32_t part = 0;
    for (int64_t i = start; i < stop; ++i) {
      const int32_t q = static_cast<int32_t>(v[i] * kFixedScale);  // v in [0, 1]: defined
      part += q & -static_cast<int32_t>(v[i] > t);
    }
    acc += part;
  }
  *count_out += count;
  *sum_out += static_cast<double>(acc) / kFixedScale;
}

// One row, any values: float64 sums in kLanes accumulators.
MMDET_SOLO_CLONES void scan_row_double(const float* v, bool* b, int64_t n, float t,
                                       int64_t* count_out, double* sum_out) {
  int64_t count = 0;
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
  *count_out += count;
  for (int k = 0; k < kLanes; ++k) *sum_out += acc[k];
}

MMDET_SOLO_CLONES bool probabilities(const float* v, int64_t n) {
  bool ok = true;
  for (int64_t i = 0; i < n; ++i) ok &= v[i] >= 0.f && v[i] <= 1.f;  // false for NaN
  return ok;
}

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
  const bool fixed = t >= kFixedMin && t < 1.f;
  at::parallel_for(0, u, 1, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const float* v = src + r * ss;
      // soft masks are probabilities; a row with another value (or NaN) takes float64 sums
      if (fixed && probabilities(v, n)) {
        scan_row_fixed(v, dst + r * bs, n, t, area + r, total + r);
      } else {
        scan_row_double(v, dst + r * bs, n, t, area + r, total + r);
      }
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
