#pragma once
// Tolerances for comparing this engine's float32 results with Hugging Face's reference fixtures, derived from
// the computation rather than tuned on one machine.
//
// The fixtures were computed by PyTorch on another machine; our results come from whatever BLAS kernels this
// machine selects (OpenBLAS picks them per CPU). Both are float32 computations of the same function that sum in
// different orders, so they differ by their rounding errors, and a fixed number such as 1e-5 is only right for
// the pair of machines it was tuned on. The model of that error, used for every bound below:
//  - one float32 rounding changes a value by at most u = ε/2 of its magnitude (ε = 2^-23); a w-term dot product
//    accumulates about √w such roundings (the probabilistic bound of Higham & Mary, SIAM J. Sci. Comput. 2019);
//  - every residual sublayer (self-attention, cross-attention, feed-forward; a final norm; the LM head) adds such
//    a perturbation to the residual stream, and the sublayers after it carry it on with a gain of about one
//    (RMS norm renormalises the stream), so perturbations add up linearly with the sublayers passed;
//  - two implementations each carry that error, so their difference is bounded by twice it:
//        tol = 2 · u · √w · depth · scale = ε · √w · depth · max|expected|.
// On the fixtures this is 5-10 times the largest difference measured between this engine and HF (e.g. 2.0e-5
// against 1.1e-4 for the gated model's unmerged LoRA logits, where HF's own merged and unmerged results differ by
// 4.7e-5), and more than 100 times smaller than the effect of the smallest wrong composition the tests try
// (LoraReference.ToleranceStillCatchesWrongCompositions: one weight off by 0.1 % moves the logits 146 bounds).
// Where the order of operations is fixed (a table lookup, an argmax over well-separated logits) the tests compare
// bit for bit instead.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include <torch/torch.h>

#include "lorahub/model/t5_config.h"

namespace lorahub::test {

inline constexpr double kF32Epsilon = std::numeric_limits<float>::epsilon();

/// Residual sublayers from the embedding to the encoder's final-norm output: two per block, plus the norm.
inline int encoder_depth(const model::T5Config& c) { return static_cast<int>(2 * c.num_layers + 1); }
/// Sublayers from the embedding to the logits: the encoder, three per decoder block, the final norm, the LM head.
inline int logits_depth(const model::T5Config& c) {
  return encoder_depth(c) + static_cast<int>(3 * c.num_decoder_layers + 2);
}
/// The longest dot product of any sublayer (projection inputs: d_model, d_ff, the attention's inner dim).
inline std::int64_t reduction_width(const model::T5Config& c) {
  return std::max({c.d_model, c.d_ff, c.inner_dim()});
}

/// ε · √width · depth · scale (see the header comment).
inline double f32_tolerance(double scale, int depth, std::int64_t width) {
  return kF32Epsilon * std::sqrt(static_cast<double>(width)) * depth * scale;
}
/// The same bound with the scale of the expected tensor (its largest magnitude).
inline double f32_tolerance(const torch::Tensor& expected, int depth, std::int64_t width) {
  return f32_tolerance(expected.abs().max().item<double>(), depth, width);
}
/// Bound on the logits of `config`'s model with `expected` as reference.
inline double logits_tolerance(const model::T5Config& config, const torch::Tensor& expected) {
  return f32_tolerance(expected, logits_depth(config), reduction_width(config));
}
/// Bound on a token's cross-entropy, from the logits' bound: log-softmax has |∂CE/∂logits|₁ ≤ 2 (the label's
/// logit with gain 1, the softmax weights summing to 1), so a per-token loss (and any mean of them) moves at most
/// twice the logits' error; a sum over n tokens, n times that.
inline double token_loss_tolerance(double logits_tol) { return 2 * logits_tol; }

/// Largest |a - b| (computed in double).
inline double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kDouble) - b.to(torch::kDouble)).abs().max().item<double>();
}

}  // namespace lorahub::test
