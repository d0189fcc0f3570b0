// Mask pasting: soft masks at 1/4 of the padded input -> binary masks at the original size.
//
// The PyTorch path (mmdet_solo.models.heads.postprocess.paste_masks_torch) is
//   F.interpolate(x4, bilinear)[:, :h, :w] -> F.interpolate(out size, bilinear) -> > thr,
// two float images per mask. This kernel gives the same bits without them:
//   * per output axis the source indices and weights are computed as ATen's
//     compute_source_index_and_lambda does (UpSample.h), and each value is blended in the
//     order of ATen's generic upsample kernel (height of width blends); whether that build
//     rounds the index and the blends through fused multiply-adds is a template choice, and the
//     Python side picks the variant that reproduces F.interpolate bit for bit on this machine
//     (mmdet_solo/ops/paste.py), or does not use this kernel at all;
//   * a bilinear value is a convex combination of its taps, so it can exceed the threshold only
//     near a soft value above it: each mask is computed only in the window of output pixels
//     whose taps reach a soft value above thr - kMargin (the rest is false), which is exact as
//     long as kMargin exceeds the few ulps two blends can add (it is ~1e3 times that);
//   * values are thresholded as they are made and written as bool, one mask per task.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <tuple>
#include <utility>
#include <vector>

namespace mmdet_solo {
namespace {

constexpr float kMargin = 1e-4f;

// How PyTorch's bilinear resize maps output positions of one axis to two input positions.
struct Axis {
  std::vector<int64_t> i0, i1;
  std::vector<float> w0, w1;
};

Axis make_axis(int64_t in_size, int64_t out_size, int64_t count, bool fma_index) {
  Axis a;
  a.i0.resize(count);
  a.i1.resize(count);
  a.w0.resize(count);
  a.w1.resize(count);
  const float scale = static_cast<float>(in_size) / static_cast<float>(out_size);
  for (int64_t o = 0; o < count; ++o) {
    if (in_size == out_size) {  // ATen: scale factor 1 copies
      a.i0[o] = a.i1[o] = o;
      a.w0[o] = 1.f;
      a.w1[o] = 0.f;
      continue;
    }
    const float pos = static_cast<float>(o) + 0.5f;
    float src = fma_index ? std::fma(scale, pos, -0.5f) : scale * pos - 0.5f;
    if (src < 0.f) src = 0.f;
    const int64_t idx = std::min(static_cast<int64_t>(std::floor(src)), in_size - 1);
    const float lambda = std::min(std::max(src - static_cast<float>(idx), 0.f), 1.f);
    a.i0[o] = idx;
    a.i1[o] = idx + (idx < in_size - 1 ? 1 : 0);
    a.w1[o] = lambda;
    a.w0[o] = 1.f - lambda;
  }
  return a;
}

// [first, last] of the output positions whose taps i0/i1 reach [lo, hi]; first > last if none.
std::pair<int64_t, int64_t> reach(const Axis& a, int64_t lo, int64_t hi) {
  const int64_t n = static_cast<int64_t>(a.i0.size());
  int64_t first = 0, last = n - 1;
  while (first < n && a.i1[first] < lo) ++first;
  while (last >= 0 && a.i0[last] > hi) --last;
  return {first, last};
}

// t0 * w0 + t1 * w1, rounded as one of the ways a compiler may contract it.
template <int kBlend>
inline __attribute__((always_inline)) float blend(float t0, float w0, float t1, float w1) {
  if constexpr (kBlend == 0) {
    return t0 * w0 + t1 * w1;
  } else if constexpr (kBlend == 1) {
    return __builtin_fmaf(t0, w0, t1 * w1);
  } else {
    return __builtin_fmaf(t1, w1, t0 * w0);
  }
}

struct Job {
  const float* soft;        // (N, h4, w4)
  int64_t h4, w4;
  int64_t img_h, img_w;     // crop of the x4 image
  int64_t out_h, out_w;     // final size (== img size: no second resize)
  float thr;
  bool values;              // write float values everywhere (the self-check) instead of bools
  void* out;                // (N, out_h, out_w) bool or float
  const Axis *ay, *ax;      // x4 resize, rows and columns [0, img)
  const Axis *by, *bx;      // second resize, or nullptr
};

// Width blends of rows [r0, r1] of a (rows, width) image at the columns [x0, x1] of `axis`:
// dst[(r - r0) * (x1 - x0 + 1) + x - x0]; the image's column 0 is the axis's input column
// `first` (a window). ATen blends every output pixel's two rows across the width first, so
// these are its intermediate values, made once per row instead of per pixel.
template <int kBlend>
inline __attribute__((always_inline)) void width_blends(const float* src, int64_t width,
                                                        int64_t first, int64_t r0, int64_t r1,
                                                        const Axis& axis, int64_t x0, int64_t x1,
                                                        float* dst) {
  const int64_t nx = x1 - x0 + 1;
  for (int64_t r = r0; r <= r1; ++r) {
    const float* row = src + r * width - first;
    float* out = dst + (r - r0) * nx - x0;
    for (int64_t x = x0; x <= x1; ++x) {
      out[x] = blend<kBlend>(row[axis.i0[x]], axis.w0[x], row[axis.i1[x]], axis.w1[x]);
    }
  }
}

// The height blend of two width-blended rows: one output row, contiguous.
template <int kBlend>
inline __attribute__((always_inline)) void height_blend(const float* a, float wa, const float* b,
                                                        float wb, int64_t n, float* dst) {
  for (int64_t x = 0; x < n; ++x) dst[x] = blend<kBlend>(a[x], wa, b[x], wb);
}

struct Scratch {
  std::vector<float> wide1, rows1, wide2, row;
};

template <int kBlend>
inline __attribute__((always_inline)) void paste_one(const Job& job, int64_t n, Scratch& buf) {
  const float* soft = job.soft + n * job.h4 * job.w4;
  const int64_t plane = job.out_h * job.out_w;
  // rows/columns of stage-1 values to make
  int64_t y1a = 0, y1b = job.img_h - 1, x1a = 0, x1b = job.img_w - 1;
  if (!job.values) {
    int64_t r0 = job.h4, r1 = -1, c0 = job.w4, c1 = -1;
    const float lo = job.thr - kMargin;
    for (int64_t r = 0; r < job.h4; ++r) {
      const float* row = soft + r * job.w4;
      for (int64_t c = 0; c < job.w4; ++c) {
        if (row[c] > lo) {
          r0 = std::min(r0, r);
          r1 = r;
          c0 = std::min(c0, c);
          c1 = std::max(c1, c);
        }
      }
    }
    if (r1 < 0) return;
    std::tie(y1a, y1b) = reach(*job.ay, r0, r1);
    std::tie(x1a, x1b) = reach(*job.ax, c0, c1);
    if (y1a > y1b || x1a > x1b) return;
  }
  int64_t ya = y1a, yb = y1b, xa = x1a, xb = x1b;  // output window
  if (job.by) {
    std::tie(ya, yb) = reach(*job.by, y1a, y1b);
    std::tie(xa, xb) = reach(*job.bx, x1a, x1b);
    if (ya > yb || xa > xb) return;
    y1a = job.by->i0[ya];
    y1b = job.by->i1[yb];
    x1a = job.bx->i0[xa];
    x1b = job.bx->i1[xb];
  }
  // stage 1: width blends of the soft rows the window reads, then the stage-1 rows
  const Axis &ay = *job.ay, &ax = *job.ax;
  const int64_t s0 = ay.i0[y1a], s1 = ay.i1[y1b], nx1 = x1b - x1a + 1;
  buf.wide1.resize(static_cast<size_t>((s1 - s0 + 1) * nx1));
  width_blends<kBlend>(soft, job.w4, 0, s0, s1, ax, x1a, x1b, buf.wide1.data());
  buf.rows1.resize(static_cast<size_t>((y1b - y1a + 1) * nx1));
  for (int64_t y = y1a; y <= y1b; ++y) {
    height_blend<kBlend>(buf.wide1.data() + (ay.i0[y] - s0) * nx1, ay.w0[y],
                         buf.wide1.data() + (ay.i1[y] - s0) * nx1, ay.w1[y], nx1,
                         buf.rows1.data() + (y - y1a) * nx1);
  }
  float* out_f = static_cast<float*>(job.out) + n * plane;
  bool* out_b = static_cast<bool*>(job.out) + n * plane;
  const int64_t nx = xb - xa + 1;
  auto emit = [&](int64_t y, const float* v) {  // output row y, columns [xa, xb]
    if (job.values) {
      std::copy(v, v + nx, out_f + y * job.out_w + xa);
    } else {
      bool* dst = out_b + y * job.out_w + xa;
      for (int64_t x = 0; x < nx; ++x) dst[x] = v[x] > job.thr;
    }
  };
  if (!job.by) {
    for (int64_t y = ya; y <= yb; ++y) emit(y, buf.rows1.data() + (y - y1a) * nx1 + (xa - x1a));
    return;
  }
  // stage 2: width blends of the stage-1 rows (rows1 starts at column x1a), then output rows
  const Axis &by = *job.by, &bx = *job.bx;
  buf.wide2.resize(static_cast<size_t>((y1b - y1a + 1) * nx));
  width_blends<kBlend>(buf.rows1.data(), nx1, x1a, 0, y1b - y1a, bx, xa, xb, buf.wide2.data());
  buf.row.resize(static_cast<size_t>(nx));
  for (int64_t y = ya; y <= yb; ++y) {
    height_blend<kBlend>(buf.wide2.data() + (by.i0[y] - y1a) * nx, by.w0[y],
                         buf.wide2.data() + (by.i1[y] - y1a) * nx, by.w1[y], nx, buf.row.data());
    emit(y, buf.row.data());
  }
}

template <int kBlend>
inline __attribute__((always_inline)) void paste_range(const Job& job, int64_t begin,
                                                       int64_t end) {
  Scratch buf;
  for (int64_t n = begin; n < end; ++n) paste_one<kBlend>(job, n, buf);
}

void paste_range_plain(const Job& job, int64_t begin, int64_t end) {
  paste_range<0>(job, begin, end);
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
// The fused multiply-add variants need the instruction; only offered where the CPU has it.
__attribute__((target("fma"))) void paste_range_fma1(const Job& job, int64_t b, int64_t e) {
  paste_range<1>(job, b, e);
}
__attribute__((target("fma"))) void paste_range_fma2(const Job& job, int64_t b, int64_t e) {
  paste_range<2>(job, b, e);
}
bool cpu_has_fma() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("fma");
}
#elif defined(__aarch64__)
void paste_range_fma1(const Job& job, int64_t b, int64_t e) { paste_range<1>(job, b, e); }
void paste_range_fma2(const Job& job, int64_t b, int64_t e) { paste_range<2>(job, b, e); }
bool cpu_has_fma() { return true; }
#else
void paste_range_fma1(const Job& job, int64_t b, int64_t e) { paste_range<0>(job, b, e); }
void paste_range_fma2(const Job& job, int64_t b, int64_t e) { paste_range<0>(job, b, e); }
bool cpu_has_fma() { return false; }
#endif

}  // namespace

// variant: bit 0 = the source index through a fused multiply-add; bits 1-2 = the blend
// (0: multiply, multiply, add; 1: fma(t0, w0, t1 * w1); 2: fma(t1, w1, t0 * w0)).
at::Tensor paste_masks_cpu(const at::Tensor& soft, int64_t img_h, int64_t img_w, int64_t out_h,
                           int64_t out_w, double thr, int64_t variant, bool values) {
  TORCH_CHECK_VALUE(soft.dim() == 3, "paste_masks: soft must be (N, h, w), got ", soft.sizes());
  TORCH_CHECK_TYPE(soft.scalar_type() == at::kFloat, "paste_masks: soft must be float32, got ",
                   soft.scalar_type());
  TORCH_CHECK_VALUE(soft.device().is_cpu(), "paste_masks: soft must be on the CPU");
  const int64_t n = soft.size(0), h4 = soft.size(1), w4 = soft.size(2);
  TORCH_CHECK_VALUE(img_h >= 1 && img_w >= 1 && img_h <= 4 * h4 && img_w <= 4 * w4,
                    "paste_masks: image size (", img_h, ", ", img_w,
                    ") must be within the x4 mask size (", 4 * h4, ", ", 4 * w4, ")");
  TORCH_CHECK_VALUE(out_h >= 1 && out_w >= 1, "paste_masks: output size must be positive, got (",
                    out_h, ", ", out_w, ")");
  TORCH_CHECK_VALUE(variant >= 0 && variant < 6, "paste_masks: variant must be in [0, 6), got ",
                    variant);
  const int blend_kind = static_cast<int>(variant >> 1);
  TORCH_CHECK_VALUE(blend_kind == 0 || cpu_has_fma(),
                    "paste_masks: this CPU has no fused multiply-add for variant ", variant);
  const at::Tensor input = soft.contiguous();
  const bool fma_index = (variant & 1) != 0;
  const bool second = !(out_h == img_h && out_w == img_w);
  const Axis ay = make_axis(h4, 4 * h4, img_h, fma_index);
  const Axis ax = make_axis(w4, 4 * w4, img_w, fma_index);
  Axis by, bx;
  if (second) {
    by = make_axis(img_h, out_h, out_h, fma_index);
    bx = make_axis(img_w, out_w, out_w, fma_index);
  }
  at::Tensor out = at::zeros({n, out_h, out_w},
                             input.options().dtype(values ? at::kFloat : at::kBool));
  const Job job{input.data_ptr<float>(), h4, w4, img_h, img_w, out_h, out_w,
                static_cast<float>(thr), values, out.data_ptr(), &ay, &ax,
                second ? &by : nullptr, second ? &bx : nullptr};
  at::parallel_for(0, n, 1, [&](int64_t begin, int64_t end) {
    if (blend_kind == 0) {
      paste_range_plain(job, begin, end);
    } else if (blend_kind == 1) {
      paste_range_fma1(job, begin, end);
    } else {
      paste_range_fma2(job, begin, end);
    }
  });
  return out;
}

bool paste_masks_has_fma() { return cpu_has_fma(); }

}  // namespace mmdet_solo

TORCH_LIBRARY_FRAGMENT(mmdet_solo, m) {
  m.def(
      "paste_masks(Tensor soft, int img_h, int img_w, int out_h, int out_w, float thr, "
      "int variant, bool values=False) -> Tensor");
  m.def("paste_masks_has_fma() -> bool", &mmdet_solo::paste_masks_has_fma);
}

TORCH_LIBRARY_IMPL(mmdet_solo, CPU, m) {
  m.impl("paste_masks", &mmdet_solo::paste_masks_cpu);
}
