// Matrix NMS: operator schema, input checks and the CPU kernel.
//
// CPU algorithm (N masks of H*W pixels):
//   1. pack every mask into 64-bit words (one bit a pixel), recording its area and the range of
//      words that hold any set bit; parallel over masks;
//   2. for every pair i < j of the same class, intersection = popcount(a & b) over the words both
//      ranges share (exact integer), IoU with the reference's float32 arithmetic; parallel over
//      columns j, the column pairs j and N-1-j sharing a task so that every task does N-1 pairs;
//   3. decay: the exponentials go through at::exp (the very kernel the reference calls, so the
//      values are bit-identical on every CPU capability), then a min over each column.
#include "matrix_nms.h"

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <Python.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace mmdet_solo {

void check_matrix_nms_inputs(const at::Tensor& seg_masks, const at::Tensor& cate_labels,
                             const at::Tensor& cate_scores, const std::string& kernel,
                             const c10::optional<at::Tensor>& sum_masks) {
  TORCH_CHECK_VALUE(kernel == "gaussian" || kernel == "linear",
                    "matrix_nms: kernel must be 'gaussian' or 'linear', got '", kernel, "'");
  TORCH_CHECK_VALUE(seg_masks.dim() == 3, "matrix_nms: seg_masks must be (N, H, W), got shape ",
                    seg_masks.sizes());
  const int64_t n = seg_masks.size(0);
  auto check_vector = [&](const char* name, const at::Tensor& t) {
    TORCH_CHECK_VALUE(t.dim() == 1 && t.size(0) == n, "matrix_nms: ", name, " must have shape (",
                      n, ",) to match seg_masks, got ", t.sizes());
    TORCH_CHECK_VALUE(t.device() == seg_masks.device(), "matrix_nms: ", name, " is on ",
                      t.device(), " but seg_masks is on ", seg_masks.device());
  };
  check_vector("cate_labels", cate_labels);
  check_vector("cate_scores", cate_scores);
  if (sum_masks.has_value()) {
    check_vector("sum_masks", *sum_masks);
    TORCH_CHECK_TYPE(!at::isComplexType(sum_masks->scalar_type()),
                     "matrix_nms: sum_masks must be real, got ", sum_masks->scalar_type());
  }
  TORCH_CHECK_TYPE(at::isFloatingType(cate_scores.scalar_type()),
                   "matrix_nms: cate_scores must be floating point, got ", cate_scores.scalar_type());
  const auto mt = seg_masks.scalar_type();
  TORCH_CHECK_TYPE(mt == at::kBool || mt == at::kByte || at::isFloatingType(mt),
                   "matrix_nms: seg_masks must be bool, uint8 or floating point (binary 0/1), got ",
                   mt);
  TORCH_CHECK_TYPE(at::isIntegralType(cate_labels.scalar_type(), /*includeBool=*/true),
                   "matrix_nms: cate_labels must be an integer tensor, got ",
                   cate_labels.scalar_type());
}

void fail_non_binary_masks() {
  TORCH_CHECK_VALUE(false,
                    "matrix_nms: seg_masks must be binary (every value 0 or 1); the compiled "
                    "operator does not take soft masks (use mmdet_solo.ops.matrix_nms_torch)");
  // Unreachable; TORCH_CHECK_VALUE(false, ...) always throws.
  throw std::logic_error("unreachable");
}

namespace {

// ---------------------------------------------------------------------------------------------
// popcount of a & b over n words. On x86-64 with GCC/Clang there are three builds of the loop
// (AVX-512 VPOPCNTDQ, POPCNT, baseline), chosen once from the CPU's features.
#if defined(__GNUC__) || defined(__clang__)
inline int popcount64(uint64_t x) { return __builtin_popcountll(x); }
#else
inline int popcount64(uint64_t x) {
  x = x - ((x >> 1) & 0x5555555555555555ULL);
  x = (x & 0x3333333333333333ULL) + ((x >> 2) & 0x3333333333333333ULL);
  x = (x + (x >> 4)) & 0x0F0F0F0F0F0F0F0FULL;
  return static_cast<int>((x * 0x0101010101010101ULL) >> 56);
}
#endif

int64_t and_popcount_generic(const uint64_t* a, const uint64_t* b, int64_t n) {
  int64_t s = 0;
  for (int64_t k = 0; k < n; ++k) s += popcount64(a[k] & b[k]);
  return s;
}

#if defined(__x86_64__) && (defined(__clang__) || (defined(__GNUC__) && __GNUC__ >= 8))
#define MMDET_SOLO_X86_DISPATCH 1

__attribute__((target("popcnt"))) int64_t and_popcount_popcnt(const uint64_t* a,
                                                              const uint64_t* b, int64_t n) {
  int64_t s = 0;
  for (int64_t k = 0; k < n; ++k) s += __builtin_popcountll(a[k] & b[k]);
  return s;
}

__attribute__((target("avx512f,avx512vpopcntdq"))) int64_t and_popcount_avx512(
    const uint64_t* a, const uint64_t* b, int64_t n) {
  __m512i acc = _mm512_set1_epi64(0);
  int64_t k = 0;
  for (; k + 8 <= n; k += 8) {
    const __m512i x = _mm512_loadu_si512(a + k);
    const __m512i y = _mm512_loadu_si512(b + k);
    acc = _mm512_add_epi64(acc, _mm512_popcnt_epi64(_mm512_and_si512(x, y)));
  }
  if (k < n) {
    const __mmask8 m = static_cast<__mmask8>((1u << (n - k)) - 1u);
    const __m512i x = _mm512_maskz_loadu_epi64(m, a + k);
    const __m512i y = _mm512_maskz_loadu_epi64(m, b + k);
    acc = _mm512_add_epi64(acc, _mm512_popcnt_epi64(_mm512_and_si512(x, y)));
  }
  return _mm512_reduce_add_epi64(acc);
}
#endif

using AndPopcountFn = int64_t (*)(const uint64_t*, const uint64_t*, int64_t);

AndPopcountFn select_and_popcount() {
#ifdef MMDET_SOLO_X86_DISPATCH
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vpopcntdq"))
    return and_popcount_avx512;
  if (__builtin_cpu_supports("popcnt")) return and_popcount_popcnt;
#endif
  return and_popcount_generic;
}

const AndPopcountFn and_popcount = select_and_popcount();

// ---------------------------------------------------------------------------------------------
// Packing. Bit b of word w of a mask is pixel 64 * w + b (row-major over H, W); the tail of the
// last word is zero.
struct Packed {
  int64_t words = 0;             // words per mask
  std::vector<uint64_t> bits;    // (N, words)
  std::vector<int64_t> area;     // set bits of each mask
  std::vector<int64_t> lo, hi;   // [lo, hi): the words holding set bits (lo == hi: empty mask)
};

constexpr uint64_t kLowBits = 0x0101010101010101ULL;
// (x * kGather) >> 56 moves bit 0 of byte k of x to bit k, for x whose bytes are 0 or 1.
constexpr uint64_t kGather = 0x0102040810204080ULL;

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
constexpr bool kLittleEndian = true;
#else
constexpr bool kLittleEndian = false;
#endif

// Masks stored one byte a pixel (bool, uint8). Returns false on a value other than 0/1.
bool pack_mask_bytes(const uint8_t* p, int64_t hw, int64_t words, uint64_t* out) {
  uint64_t bad = 0;
  for (int64_t w = 0; w < words; ++w) {
    const int64_t base = w * 64;
    const int64_t cnt = std::min<int64_t>(64, hw - base);
    uint64_t word = 0;
    if (kLittleEndian && cnt == 64) {
      for (int b = 0; b < 8; ++b) {
        uint64_t x;
        std::memcpy(&x, p + base + 8 * b, 8);
        bad |= x & ~kLowBits;
        word |= ((x * kGather) >> 56) << (8 * b);
      }
    } else {
      for (int64_t b = 0; b < cnt; ++b) {
        const uint8_t v = p[base + b];
        bad |= v & ~uint64_t{1};
        word |= uint64_t{v != 0} << b;
      }
    }
    out[w] = word;
  }
  return bad == 0;
}

template <typename scalar_t>
bool pack_mask_values(const scalar_t* p, int64_t hw, int64_t words, uint64_t* out) {
  bool ok = true;
  for (int64_t w = 0; w < words; ++w) {
    const int64_t base = w * 64;
    const int64_t cnt = std::min<int64_t>(64, hw - base);
    uint64_t word = 0;
    for (int64_t b = 0; b < cnt; ++b) {
      const float v = static_cast<float>(p[base + b]);  // exact for 0 and 1 (and NaN stays NaN)
      const bool set = v != 0.f;
      ok &= (!set) | (v == 1.f);
      word |= uint64_t{set} << b;
    }
    out[w] = word;
  }
  return ok;
}

template <>
bool pack_mask_values<double>(const double* p, int64_t hw, int64_t words, uint64_t* out) {
  bool ok = true;
  for (int64_t w = 0; w < words; ++w) {
    const int64_t base = w * 64;
    const int64_t cnt = std::min<int64_t>(64, hw - base);
    uint64_t word = 0;
    for (int64_t b = 0; b < cnt; ++b) {
      const double v = p[base + b];
      const bool set = v != 0.0;
      ok &= (!set) | (v == 1.0);
      word |= uint64_t{set} << b;
    }
    out[w] = word;
  }
  return ok;
}

Packed pack_masks(const at::Tensor& masks2d) {
  const int64_t n = masks2d.size(0), hw = masks2d.size(1);
  Packed pk;
  pk.words = (hw + 63) / 64;
  pk.bits.assign(static_cast<size_t>(n * pk.words), 0);
  pk.area.assign(n, 0);
  pk.lo.assign(n, 0);
  pk.hi.assign(n, 0);
  std::atomic<bool> all_binary{true};
  // Threads only pay off for real work (a chunk of about 4 MB of pixels, ~1 ms).
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 22) / std::max<int64_t>(hw, 1));
  const auto st = masks2d.scalar_type();
  auto finish = [&pk](int64_t r) {
    const uint64_t* row = pk.bits.data() + r * pk.words;
    int64_t a = 0, lo = -1, hi = 0;
    for (int64_t w = 0; w < pk.words; ++w) {
      if (row[w]) {
        a += popcount64(row[w]);
        if (lo < 0) lo = w;
        hi = w + 1;
      }
    }
    pk.area[r] = a;
    pk.lo[r] = lo < 0 ? 0 : lo;
    pk.hi[r] = hi;
  };
  if (st == at::kBool || st == at::kByte) {
    const uint8_t* src = static_cast<const uint8_t*>(masks2d.const_data_ptr());
    at::parallel_for(0, n, grain, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        if (!pack_mask_bytes(src + r * hw, hw, pk.words, pk.bits.data() + r * pk.words))
          all_binary.store(false, std::memory_order_relaxed);
        finish(r);
      }
    });
  } else {
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, st, "matrix_nms_pack", [&] {
      const scalar_t* src = masks2d.const_data_ptr<scalar_t>();
      at::parallel_for(0, n, grain, [&](int64_t begin, int64_t end) {
        for (int64_t r = begin; r < end; ++r) {
          if (!pack_mask_values<scalar_t>(src + r * hw, hw, pk.words,
                                          pk.bits.data() + r * pk.words))
            all_binary.store(false, std::memory_order_relaxed);
          finish(r);
        }
      });
    });
  }
  if (!all_binary.load()) fail_non_binary_masks();
  return pk;
}

// ---------------------------------------------------------------------------------------------
at::Tensor matrix_nms_cpu(const at::Tensor& seg_masks, const at::Tensor& cate_labels,
                          const at::Tensor& cate_scores, c10::string_view kernel, double sigma,
                          const c10::optional<at::Tensor>& sum_masks) {
  const std::string kernel_name(kernel);
  check_matrix_nms_inputs(seg_masks, cate_labels, cate_scores, kernel_name, sum_masks);
  const int64_t n = seg_masks.size(0);
  if (n == 0) return at::zeros({0}, cate_scores.options());
  const int64_t hw = seg_masks.size(1) * seg_masks.size(2);

  const Packed pk = pack_masks(seg_masks.reshape({n, hw}).contiguous());
  const at::Tensor labels_t = cate_labels.to(at::kLong).contiguous();
  const int64_t* lab = labels_t.const_data_ptr<int64_t>();

  // Areas entering the union: the caller's sum_masks (as float32, like the reference) or the
  // exact bit counts.
  std::vector<float> area_f(n);
  if (sum_masks.has_value()) {
    const at::Tensor s = sum_masks->to(at::kFloat).contiguous();
    std::memcpy(area_f.data(), s.const_data_ptr<float>(), sizeof(float) * n);
  } else {
    for (int64_t r = 0; r < n; ++r) area_f[r] = static_cast<float>(pk.area[r]);
  }

  // dt[j * n + i]: IoU of mask j with a higher-scored mask i < j of its class (0 elsewhere), i.e.
  // the reference's decay_iou transposed; comp[j]: the largest of row j (compensate_iou).
  std::vector<float> dt(static_cast<size_t>(n * n), 0.f);
  std::vector<float> comp(n, 0.f);
  auto fill_row = [&](int64_t j) {
    float* row = dt.data() + j * n;
    float cmax = 0.f;
    const int64_t lj = lab[j], loj = pk.lo[j], hij = pk.hi[j];
    const uint64_t* bj = pk.bits.data() + j * pk.words;
    if (hij > loj) {
      for (int64_t i = 0; i < j; ++i) {
        if (lab[i] != lj) continue;
        const int64_t wlo = std::max(loj, pk.lo[i]), whi = std::min(hij, pk.hi[i]);
        if (whi <= wlo) continue;  // no overlap: IoU 0 whatever the union
        const int64_t inter = and_popcount(pk.bits.data() + i * pk.words + wlo, bj + wlo, whi - wlo);
        if (inter == 0) continue;
        const float fi = static_cast<float>(inter);
        const float uni = (area_f[i] + area_f[j]) - fi;
        const float iou = uni > 0.f ? fi / std::max(uni, kUnionClampMin) : 0.f;
        row[i] = iou;
        cmax = std::max(cmax, iou);
      }
    }
    comp[j] = cmax;
  };
  const int64_t tasks = (n + 1) / 2;
  // a task compares about n * words word pairs; a chunk of ~8M of them is ~1 ms
  const int64_t pair_grain =
      std::max<int64_t>(1, (int64_t{1} << 23) / std::max<int64_t>(n * (pk.words + 1), 1));
  at::parallel_for(0, tasks, pair_grain, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      fill_row(t);
      if (n - 1 - t != t) fill_row(n - 1 - t);
    }
  });

  at::Tensor decay = at::empty({n}, cate_scores.options().dtype(at::kFloat));
  float* dec = decay.mutable_data_ptr<float>();
  // The decay is O(N^2) cheap arithmetic (N = 500: ~0.5 ms): threads only for N in the
  // thousands, so that a busy machine does not make us wait on extra thread joins.
  const int64_t col_grain = std::max<int64_t>(1, (int64_t{1} << 22) / n);
  // torch.min propagates NaN.
  auto min_nan = [](float m, float v) { return (v < m || std::isnan(v)) ? v : m; };
  if (kernel_name == "gaussian") {
    // exp(-sigma * d**2) / exp(-sigma * comp**2); -sigma is rounded to float32 first, as torch
    // does when a Python float multiplies a float32 tensor.
    const float neg_sigma = static_cast<float>(-sigma);
    at::Tensor args = at::empty({n * n + n}, decay.options());
    float* a = args.mutable_data_ptr<float>();
    at::parallel_for(0, n, col_grain, [&](int64_t begin, int64_t end) {
      for (int64_t k = begin * n; k < end * n; ++k) a[k] = neg_sigma * (dt[k] * dt[k]);
    });
    for (int64_t i = 0; i < n; ++i) a[n * n + i] = neg_sigma * (comp[i] * comp[i]);
    // at::exp on slices below its own parallel grain (32768): serial, and elementwise, so the
    // values are those of a single call (the tests check bit-equality with the reference).
    at::Tensor e = at::empty_like(args);
    const int64_t total = n * n + n;
    const int64_t slice = total >= (int64_t{1} << 22) ? total : 16384;
    for (int64_t k = 0; k < total; k += slice) {
      const int64_t len = std::min(slice, total - k);
      at::Tensor out_slice = e.narrow(0, k, len);
      at::exp_out(out_slice, args.narrow(0, k, len));
    }
    const float* ev = e.const_data_ptr<float>();
    const float* ecomp = ev + n * n;
    at::parallel_for(0, n, col_grain, [&](int64_t begin, int64_t end) {
      for (int64_t j = begin; j < end; ++j) {
        const float* ej = ev + j * n;
        float m = ej[0] / ecomp[0];
        for (int64_t i = 1; i < n; ++i) m = min_nan(m, ej[i] / ecomp[i]);
        dec[j] = m;
      }
    });
  } else {
    // (1 - d) / (1 - comp), then nan_to_num(nan=inf): NaN -> inf, +-inf -> +-float max.
    constexpr float kInf = std::numeric_limits<float>::infinity();
    constexpr float kMax = std::numeric_limits<float>::max();
    at::parallel_for(0, n, col_grain, [&](int64_t begin, int64_t end) {
      for (int64_t j = begin; j < end; ++j) {
        const float* dj = dt.data() + j * n;
        float m = kInf;
        for (int64_t i = 0; i < n; ++i) {
          float r = (1.f - dj[i]) / (1.f - comp[i]);
          if (std::isnan(r)) r = kInf;
          else if (r == kInf) r = kMax;
          else if (r == -kInf) r = -kMax;
          m = std::min(m, r);
        }
        dec[j] = m;
      }
    });
  }
  return cate_scores * decay.to(cate_scores.scalar_type());
}

}  // namespace
}  // namespace mmdet_solo

TORCH_LIBRARY(mmdet_solo, m) {
  m.impl_abstract_pystub("mmdet_solo.ops._ext_loader");
  m.def(
      "matrix_nms(Tensor seg_masks, Tensor cate_labels, Tensor cate_scores, str kernel, "
      "float sigma, Tensor? sum_masks) -> Tensor");
}

TORCH_LIBRARY_IMPL(mmdet_solo, CPU, m) {
  m.impl("matrix_nms", &mmdet_solo::matrix_nms_cpu);
}

// The module is only imported for its side effect: the registrations above.
extern "C" PyObject* PyInit__C(void) {
  static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_C", nullptr, -1, nullptr};
  return PyModule_Create(&module_def);
}
