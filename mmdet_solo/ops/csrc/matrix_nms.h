// Matrix NMS (SOLOv2) as a PyTorch operator: declarations shared by the CPU and CUDA kernels.
//
// The operator ``mmdet_solo::matrix_nms`` reproduces mmdet_solo.ops.matrix_nms.matrix_nms_torch
// (the PyTorch reference) bit for bit on binary masks: intersections are exact integer counts
// (bit-packed masks and popcount instead of a float matmul) and every later step uses the same
// float32 operations in the same order as the reference.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Optional.h>

#include <string>

namespace mmdet_solo {

// ``union`` is clamped to this before the division, as in the reference (clamp(min=1e-12)).
constexpr float kUnionClampMin = 1e-12f;

// Validates shapes, dtypes and devices; throws ValueError / TypeError (via TORCH_CHECK_VALUE /
// TORCH_CHECK_TYPE) with the same wording as the Python checks.
void check_matrix_nms_inputs(const at::Tensor& seg_masks, const at::Tensor& cate_labels,
                             const at::Tensor& cate_scores, const std::string& kernel,
                             const c10::optional<at::Tensor>& sum_masks);

// Error raised when a mask holds a value other than 0 and 1 (the operator only takes binary masks).
[[noreturn]] void fail_non_binary_masks();


}  // namespace mmdet_solo
