// Matrix NMS: the CUDA kernel (registered for the CUDA dispatch key of mmdet_solo::matrix_nms).
//
//   1. pack_masks_kernel: one thread a pixel, a warp ballot makes each 32-bit word; the area and
//      the range of non-empty words of every mask come from atomics on the words;
//   2. pair_iou_kernel: one block per mask j, a warp per higher-scored mask i < j of the same
//      class: popcount of the AND over the shared word range, reduced across the warp; the IoU
//      uses the reference's float32 arithmetic (explicit _rn intrinsics: no FMA contraction);
//      the block's max is compensate_iou[j];
//   3. decay_kernel: one block per column j, min over i of the decay ratio. expf is the function
//      torch's own CUDA exp calls, so the decay is bit-identical to the reference on the GPU.
#include "matrix_nms.h"

#include <ATen/ATen.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <algorithm>
#include <cstdint>
#include <string>

namespace mmdet_solo {
namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr int kMaxGridY = 65535;

template <typename scalar_t>
__device__ __forceinline__ float mask_value(const scalar_t* p, int64_t k) {
  return static_cast<float>(p[k]);
}
template <>
__device__ __forceinline__ float mask_value<bool>(const bool* p, int64_t k) {
  return static_cast<float>(reinterpret_cast<const uint8_t*>(p)[k]);
}
template <>
__device__ __forceinline__ float mask_value<double>(const double* p, int64_t k) {
  // Only compared with 0 and 1: narrowing keeps 0, 1 and "neither" apart except for doubles
  // within float rounding of 1, which the second comparison below catches.
  const double v = p[k];
  return v == 0.0 ? 0.f : (v == 1.0 ? 1.f : 2.f);
}

// grid: (ceil(hw / kThreads), min(n, kMaxGridY)); masks (n, hw) contiguous.
template <typename scalar_t>
__global__ void pack_masks_kernel(const scalar_t* __restrict__ masks, int64_t n, int64_t hw,
                                  int64_t words, uint32_t* __restrict__ bits,
                                  int* __restrict__ area, int* __restrict__ lo,
                                  int* __restrict__ hi, int* __restrict__ non_binary) {
  const int64_t e = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  const int lane = threadIdx.x & 31;
  for (int64_t r = blockIdx.y; r < n; r += gridDim.y) {
    bool set = false;
    if (e < hw) {
      const float v = mask_value<scalar_t>(masks + r * hw, e);
      set = v != 0.f;
      if (set && v != 1.f) *non_binary = 1;
    }
    const uint32_t word = __ballot_sync(0xffffffffu, set);
    const int64_t w = e >> 5;
    if (lane == 0 && w < words) {
      bits[r * words + w] = word;
      if (word) {
        atomicAdd(area + r, __popc(word));
        atomicMin(lo + r, static_cast<int>(w));
        atomicMax(hi + r, static_cast<int>(w + 1));
      }
    }
  }
}

__device__ __forceinline__ int warp_sum(int v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  return v;
}

// grid: n blocks (mask j); dt (n, n) zero-initialised; dt[j, i] = IoU(i, j) for i < j, same class.
__global__ void pair_iou_kernel(const uint32_t* __restrict__ bits, int64_t n, int64_t words,
                                const int64_t* __restrict__ labels,
                                const float* __restrict__ area_f, const int* __restrict__ lo,
                                const int* __restrict__ hi, float* __restrict__ dt,
                                float* __restrict__ comp) {
  __shared__ float warp_max[kWarps];
  const int64_t j = blockIdx.x;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int64_t lj = labels[j];
  const int loj = lo[j], hij = hi[j];
  const float aj = area_f[j];
  const uint32_t* bj = bits + j * words;
  float cmax = 0.f;
  if (hij > loj) {
    for (int64_t i = warp; i < j; i += kWarps) {
      if (labels[i] != lj) continue;
      const int wlo = max(loj, lo[i]), whi = min(hij, hi[i]);
      if (whi <= wlo) continue;
      const uint32_t* bi = bits + i * words;
      int inter = 0;
      for (int w = wlo + lane; w < whi; w += 32) inter += __popc(__ldg(bi + w) & __ldg(bj + w));
      inter = warp_sum(inter);
      if (lane == 0 && inter > 0) {
        const float fi = __int2float_rn(inter);
        const float uni = __fsub_rn(__fadd_rn(area_f[i], aj), fi);
        const float iou = uni > 0.f ? __fdiv_rn(fi, fmaxf(uni, kUnionClampMin)) : 0.f;
        dt[j * n + i] = iou;
        cmax = fmaxf(cmax, iou);
      }
    }
  }
  if (lane == 0) warp_max[warp] = cmax;
  __syncthreads();
  if (threadIdx.x == 0) {
    float m = warp_max[0];
    for (int k = 1; k < kWarps; ++k) m = fmaxf(m, warp_max[k]);
    comp[j] = m;
  }
}

__device__ __forceinline__ float min_nan(float m, float v) {
  return (v < m || isnan(v)) ? v : m;  // torch.min propagates NaN
}

// grid: n blocks (column j). gaussian: exp(-sigma d^2) / exp(-sigma c_i^2); linear:
// nan_to_num((1 - d) / (1 - c_i), nan=inf).
__global__ void decay_kernel(const float* __restrict__ dt, const float* __restrict__ comp,
                             int64_t n, bool gaussian, float neg_sigma,
                             float* __restrict__ decay) {
  __shared__ float warp_min[kWarps];
  const int64_t j = blockIdx.x;
  const float* dj = dt + j * n;
  const float inf = __int_as_float(0x7f800000);
  const float fmax_ = __int_as_float(0x7f7fffff);
  float m = inf;
  for (int64_t i = threadIdx.x; i < n; i += kThreads) {
    const float d = dj[i], c = comp[i];
    float r;
    if (gaussian) {
      r = __fdiv_rn(expf(__fmul_rn(neg_sigma, __fmul_rn(d, d))),
                    expf(__fmul_rn(neg_sigma, __fmul_rn(c, c))));
    } else {
      r = __fdiv_rn(__fsub_rn(1.f, d), __fsub_rn(1.f, c));
      if (isnan(r)) r = inf;
      else if (r == inf) r = fmax_;
      else if (r == -inf) r = -fmax_;
    }
    m = min_nan(m, r);
  }
  for (int o = 16; o > 0; o >>= 1) m = min_nan(m, __shfl_down_sync(0xffffffffu, m, o));
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  if (lane == 0) warp_min[warp] = m;
  __syncthreads();
  if (threadIdx.x == 0) {
    float v = warp_min[0];
    for (int k = 1; k < kWarps; ++k) v = min_nan(v, warp_min[k]);
    decay[j] = v;
  }
}

at::Tensor matrix_nms_cuda(const at::Tensor& seg_masks, const at::Tensor& cate_labels,
                           const at::Tensor& cate_scores, c10::string_view kernel, double sigma,
                           const c10::optional<at::Tensor>& sum_masks) {
  const std::string kernel_name(kernel);
  check_matrix_nms_inputs(seg_masks, cate_labels, cate_scores, kernel_name, sum_masks);
  const c10::cuda::CUDAGuard guard(seg_masks.device());
  const int64_t n = seg_masks.size(0);
  if (n == 0) return at::zeros({0}, cate_scores.options());
  const int64_t hw = seg_masks.size(1) * seg_masks.size(2);
  const int64_t words = (hw + 31) / 32;
  TORCH_CHECK_VALUE(words < (int64_t{1} << 30) && n < (int64_t{1} << 31),
                    "matrix_nms: masks too large for the CUDA kernel");
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream();

  const at::Tensor masks2d = seg_masks.reshape({n, hw}).contiguous();
  const auto iopt = seg_masks.options().dtype(at::kInt);
  at::Tensor bits = at::empty({n, words}, iopt);  // uint32 words stored in an int32 tensor
  at::Tensor area = at::zeros({n}, iopt);
  at::Tensor lo = at::full({n}, static_cast<int>(words), iopt);
  at::Tensor hi = at::zeros({n}, iopt);
  at::Tensor non_binary = at::zeros({1}, iopt);
  if (hw > 0) {
    const dim3 grid(static_cast<unsigned>((hw + kThreads - 1) / kThreads),
                    static_cast<unsigned>(std::min<int64_t>(n, kMaxGridY)));
    AT_DISPATCH_FLOATING_TYPES_AND4(
        at::kHalf, at::kBFloat16, at::kBool, at::kByte, masks2d.scalar_type(), "matrix_nms_pack_cuda", [&] {
          pack_masks_kernel<scalar_t><<<grid, kThreads, 0, stream>>>(
              masks2d.const_data_ptr<scalar_t>(), n, hw, words,
              reinterpret_cast<uint32_t*>(bits.mutable_data_ptr<int>()),
              area.mutable_data_ptr<int>(), lo.mutable_data_ptr<int>(),
              hi.mutable_data_ptr<int>(), non_binary.mutable_data_ptr<int>());
        });
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    // bool masks are binary by construction; other dtypes need a (synchronising) check.
    if (masks2d.scalar_type() != at::kBool && non_binary.item<int>() != 0) fail_non_binary_masks();
  }

  const at::Tensor labels = cate_labels.to(at::kLong).contiguous();
  const at::Tensor area_f =
      (sum_masks.has_value() ? sum_masks->to(at::kFloat) : area.to(at::kFloat)).contiguous();
  const auto fopt = seg_masks.options().dtype(at::kFloat);
  at::Tensor dt = at::zeros({n, n}, fopt);
  at::Tensor comp = at::empty({n}, fopt);
  at::Tensor decay = at::empty({n}, fopt);
  pair_iou_kernel<<<static_cast<unsigned>(n), kThreads, 0, stream>>>(
      reinterpret_cast<const uint32_t*>(bits.const_data_ptr<int>()), n, words,
      labels.const_data_ptr<int64_t>(), area_f.const_data_ptr<float>(),
      lo.const_data_ptr<int>(), hi.const_data_ptr<int>(), dt.mutable_data_ptr<float>(),
      comp.mutable_data_ptr<float>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  decay_kernel<<<static_cast<unsigned>(n), kThreads, 0, stream>>>(
      dt.const_data_ptr<float>(), comp.const_data_ptr<float>(), n, kernel_name == "gaussian",
      static_cast<float>(-sigma), decay.mutable_data_ptr<float>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return cate_scores * decay.to(cate_scores.scalar_type());
}

}  // namespace
}  // namespace mmdet_solo

TORCH_LIBRARY_IMPL(mmdet_solo, CUDA, m) {
  m.impl("matrix_nms", &mmdet_solo::matrix_nms_cuda);
}
