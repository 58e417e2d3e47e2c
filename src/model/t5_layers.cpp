#include "lorahub/model/t5_layers.h"

#include <cmath>

#include "lorahub/core/error.h"

namespace lorahub::model {
using core::fail;

namespace {
// Parameters start uninitialised: loading replaces them, and untouched pages of a large empty
// allocation are never resident, so a model is never held twice in memory while it loads.
torch::Tensor empty_parameter(torch::IntArrayRef shape) { return torch::empty(shape, torch::kFloat32); }

torch::Tensor maybe_dropout(const torch::Tensor& x, double p, bool training) {
  return (training && p > 0) ? torch::dropout(x, p, true) : x;
}
}  // namespace

torch::Tensor gelu_new(const torch::Tensor& x) {
  // Same operation order as transformers' NewGELUActivation, so float32 results agree bit for bit.
  auto inner = x + 0.044715 * torch::pow(x, 3.0);
  return 0.5 * x * (1.0 + torch::tanh(std::sqrt(2.0 / M_PI) * inner));
}

torch::Tensor relative_position_bucket(const torch::Tensor& relative_position, bool bidirectional,
                                       std::int64_t num_buckets, std::int64_t max_distance) {
  auto buckets = torch::zeros_like(relative_position);
  torch::Tensor n;
  if (bidirectional) {
    num_buckets /= 2;
    buckets = buckets + (relative_position > 0).to(torch::kLong) * num_buckets;
    n = torch::abs(relative_position);
  } else {
    n = -torch::min(relative_position, torch::zeros_like(relative_position));
  }
  std::int64_t max_exact = num_buckets / 2;
  auto is_small = n < max_exact;
  // float32 log and truncation toward zero, as HF computes it.
  auto large = max_exact + (torch::log(n.to(torch::kFloat) / static_cast<double>(max_exact)) /
                            std::log(static_cast<double>(max_distance) / static_cast<double>(max_exact)) *
                            static_cast<double>(num_buckets - max_exact))
                               .to(torch::kLong);
  large = torch::min(large, torch::full_like(large, num_buckets - 1));
  return buckets + torch::where(is_small, n, large);
}

// ---------------------------------------------------------------------------------------------
RMSNormImpl::RMSNormImpl(std::int64_t dim, double eps) : eps_(eps) {
  weight = register_parameter("weight", torch::ones({dim}));
}

torch::Tensor RMSNormImpl::forward(const torch::Tensor& x) {
  auto variance = x.to(torch::kFloat).pow(2).mean(-1, /*keepdim=*/true);
  auto y = x * torch::rsqrt(variance + eps_);
  if (weight.scalar_type() == torch::kBFloat16 || weight.scalar_type() == torch::kHalf) {
    y = y.to(weight.scalar_type());
  }
  return weight * y;
}

// ---------------------------------------------------------------------------------------------
ProjectionImpl::ProjectionImpl(std::int64_t in_features, std::int64_t out_features)
    : in_features_(in_features), out_features_(out_features) {
  weight = register_parameter("weight", empty_parameter({out_features, in_features}));
}

void ProjectionImpl::set_low_rank(std::optional<LowRankAddition> addition) {
  if (addition) {
    const auto& a = addition->a;
    const auto& b = addition->b;
    if (a.dim() != 3 || b.dim() != 3 || a.size(0) != b.size(0) || a.size(2) != in_features_ ||
        b.size(1) != out_features_ || a.size(1) != b.size(2)) {
      fail("low-rank addition: expected A [S, r, ", in_features_, "] and B [S, ", out_features_,
           ", r], got A ", a.sizes(), " and B ", b.sizes());
    }
    if (!addition->segment_rows.empty() &&
        static_cast<std::int64_t>(addition->segment_rows.size()) != a.size(0)) {
      fail("low-rank addition: ", addition->segment_rows.size(), " segment sizes for ", a.size(0), " segments");
    }
    if (addition->segment_rows.empty() && a.size(0) != 1) {
      fail("low-rank addition: ", a.size(0), " segments need explicit segment_rows");
    }
  }
  low_rank_ = std::move(addition);
}

torch::Tensor ProjectionImpl::forward(const torch::Tensor& x) {
  auto y = at::linear(x, weight);
  if (!low_rank_) return y;
  const auto& lr = *low_rank_;
  auto xin = maybe_dropout(x, lr.dropout, is_training());
  if (xin.scalar_type() != lr.a.scalar_type()) xin = xin.to(lr.a.scalar_type());
  const std::int64_t segments = lr.a.size(0);
  if (segments == 1) {
    // PEFT's order: lora_B(lora_A(x)) * scaling.
    return y + (at::linear(at::linear(xin, lr.a[0]), lr.b[0]) * lr.scale).to(y.scalar_type());
  }
  const std::int64_t batch = x.size(0);
  std::int64_t total = 0;
  bool uniform = true;
  for (auto rows : lr.segment_rows) {
    total += rows;
    uniform = uniform && rows == lr.segment_rows.front();
  }
  // [B, L, in]: the segments cover the batch rows exactly. [T, in], the packed encoder's real tokens: every
  // candidate's copy of the batch has the same tokens, so equal segments take equal shares of the rows.
  if (x.dim() == 2) {
    if (!uniform || batch % segments != 0) {
      fail("low-rank addition: ", batch, " packed rows do not split into ", segments, " equal segments");
    }
  } else if (total != batch) {
    fail("low-rank addition: segments cover ", total, " rows, batch has ", batch);
  }
  if (uniform) {
    // One batched GEMM pair for all segments: [S, rows·L, in] × [S, in, r] × [S, r, out].
    auto xs = xin.reshape({segments, -1, in_features_});
    auto t = torch::bmm(torch::bmm(xs, lr.a.transpose(1, 2)), lr.b.transpose(1, 2)) * lr.scale;
    return y + t.view(y.sizes());
  }
  std::vector<torch::Tensor> parts;
  parts.reserve(static_cast<std::size_t>(segments));
  std::int64_t offset = 0;
  for (std::int64_t s = 0; s < segments; ++s) {
    auto rows = lr.segment_rows[static_cast<std::size_t>(s)];
    auto xs = xin.narrow(0, offset, rows);
    parts.push_back(at::linear(at::linear(xs, lr.a[s]), lr.b[s]) * lr.scale);
    offset += rows;
  }
  return y + torch::cat(parts, 0);
}

void ProjectionImpl::merge(const torch::Tensor& delta) {
  if (delta.sizes() != weight.sizes()) {
    fail("merge: delta shape ", delta.sizes(), " does not match weight ", weight.sizes());
  }
  torch::NoGradGuard no_grad;
  if (!original_.defined()) original_ = weight.detach().clone();
  if (weight.scalar_type() == torch::kFloat) {
    weight.add_(delta.to(weight.device(), torch::kFloat));
  } else {
    weight.copy_(weight.to(torch::kFloat) + delta.to(weight.device(), torch::kFloat));
  }
}

void ProjectionImpl::restore() {
  if (!original_.defined()) return;
  torch::NoGradGuard no_grad;
  weight.copy_(original_);
  original_ = torch::Tensor();
}

// ---------------------------------------------------------------------------------------------
torch::Tensor Packing::unpack(const torch::Tensor& rows) const {
  auto padded = torch::zeros({batch * length, rows.size(-1)}, rows.options());
  return padded.index_copy(0, index, rows).view({batch, length, rows.size(-1)});
}

torch::Tensor Packing::pack(const torch::Tensor& padded) const {
  return padded.reshape({batch * length, padded.size(-1)}).index_select(0, index);
}

// ---------------------------------------------------------------------------------------------
T5AttentionImpl::T5AttentionImpl(const T5Config& config, bool has_relative_attention_bias, bool bidirectional)
    : num_heads_(config.num_heads),
      d_kv_(config.d_kv),
      num_buckets_(config.relative_attention_num_buckets),
      max_distance_(config.relative_attention_max_distance),
      bidirectional_(bidirectional),
      dropout_(config.dropout_rate) {
  const auto inner = config.inner_dim();
  q = register_module("q", Projection(config.d_model, inner));
  k = register_module("k", Projection(config.d_model, inner));
  v = register_module("v", Projection(config.d_model, inner));
  o = register_module("o", Projection(inner, config.d_model));
  if (has_relative_attention_bias) {
    relative_attention_bias = register_module(
        "relative_attention_bias", torch::nn::Embedding(config.relative_attention_num_buckets, config.num_heads));
  }
}

torch::Tensor T5AttentionImpl::compute_bias(std::int64_t q_len, std::int64_t k_len, std::int64_t q_offset) {
  if (relative_attention_bias.is_empty()) fail("compute_bias called on an attention without a bias table");
  auto device = relative_attention_bias->weight.device();
  auto opts = torch::TensorOptions().dtype(torch::kLong).device(device);
  auto context = torch::arange(q_offset, q_offset + q_len, opts).unsqueeze(1);
  auto memory = torch::arange(0, k_len, opts).unsqueeze(0);
  auto buckets = relative_position_bucket(memory - context, bidirectional_, num_buckets_, max_distance_);
  auto values = relative_attention_bias->forward(buckets);  // [q, k, H]
  return values.permute({2, 0, 1}).unsqueeze(0);
}

torch::Tensor T5AttentionImpl::shape_heads(const torch::Tensor& x) {
  return x.view({x.size(0), -1, num_heads_, d_kv_}).transpose(1, 2);
}

std::pair<torch::Tensor, torch::Tensor> T5AttentionImpl::project_kv(const torch::Tensor& key_value) {
  return {shape_heads(k(key_value)), shape_heads(v(key_value))};
}

torch::Tensor T5AttentionImpl::mix(const torch::Tensor& queries, const torch::Tensor& keys,
                                   const torch::Tensor& values, const torch::Tensor& bias, torch::Tensor* probs) {
  auto scores = torch::matmul(queries, keys.transpose(3, 2));  // no 1/sqrt(d_kv): T5 folds it into init
  scores = scores + bias;
  auto weights = torch::softmax(scores.to(torch::kFloat), -1).to(scores.scalar_type());
  if (probs) *probs = weights;
  weights = maybe_dropout(weights, dropout_, is_training());
  auto out = torch::matmul(weights, values);
  return out.transpose(1, 2).contiguous().view({queries.size(0), -1, num_heads_ * d_kv_});
}

torch::Tensor T5AttentionImpl::attend(const torch::Tensor& hidden, const torch::Tensor& keys,
                                      const torch::Tensor& values, const torch::Tensor& bias, torch::Tensor* probs) {
  return o(mix(shape_heads(q(hidden)), keys, values, bias, probs));
}

torch::Tensor T5AttentionImpl::forward(const torch::Tensor& hidden, const torch::Tensor& key_value,
                                       const torch::Tensor& bias, torch::Tensor* probs) {
  auto [keys, values] = project_kv(key_value.defined() ? key_value : hidden);
  return attend(hidden, keys, values, bias, probs);
}

torch::Tensor T5AttentionImpl::forward_packed(const torch::Tensor& x, const Packing& packing, const torch::Tensor& bias) {
  // The projections see the real tokens only; scores, softmax and the weighted sum need the padded layout,
  // where padding keys are masked (weight exactly 0) and padding queries are dropped again by pack().
  auto mixed = mix(shape_heads(packing.unpack(q(x))), shape_heads(packing.unpack(k(x))),
                   shape_heads(packing.unpack(v(x))), bias, nullptr);
  return o(packing.pack(mixed));
}

torch::Tensor T5AttentionImpl::forward_cached(const torch::Tensor& hidden, KVCache& cache, const torch::Tensor& bias) {
  auto [k_new, v_new] = project_kv(hidden);  // [B, H, 1, d_kv]
  const auto step_len = k_new.size(2);
  if (!cache.k.defined() || cache.length + step_len > cache.k.size(2)) {
    std::int64_t capacity = cache.k.defined() ? cache.k.size(2) * 2 : 16;
    while (capacity < cache.length + step_len) capacity *= 2;
    auto grow = [&](const torch::Tensor& old, const torch::Tensor& like) {
      auto t = torch::empty({like.size(0), like.size(1), capacity, like.size(3)}, like.options());
      if (old.defined() && cache.length > 0) t.narrow(2, 0, cache.length).copy_(old.narrow(2, 0, cache.length));
      return t;
    };
    cache.k = grow(cache.k, k_new);
    cache.v = grow(cache.v, v_new);
  }
  cache.k.narrow(2, cache.length, step_len).copy_(k_new);
  cache.v.narrow(2, cache.length, step_len).copy_(v_new);
  cache.length += step_len;
  return attend(hidden, cache.k.narrow(2, 0, cache.length), cache.v.narrow(2, 0, cache.length), bias);
}

T5LayerSelfAttentionImpl::T5LayerSelfAttentionImpl(const T5Config& config, bool has_relative_attention_bias,
                                                   bool is_decoder) {
  SelfAttention = register_module("SelfAttention", T5Attention(config, has_relative_attention_bias, !is_decoder));
  layer_norm = register_module("layer_norm", RMSNorm(config.d_model, config.layer_norm_epsilon));
}

T5LayerCrossAttentionImpl::T5LayerCrossAttentionImpl(const T5Config& config) {
  EncDecAttention = register_module("EncDecAttention", T5Attention(config, false, true));
  layer_norm = register_module("layer_norm", RMSNorm(config.d_model, config.layer_norm_epsilon));
}

// ---------------------------------------------------------------------------------------------
T5DenseImpl::T5DenseImpl(const T5Config& config)
    : gated_(config.is_gated_act), act_(config.dense_act_fn), dropout_(config.dropout_rate) {
  if (gated_) {
    wi_0 = register_module("wi_0", Projection(config.d_model, config.d_ff));
    wi_1 = register_module("wi_1", Projection(config.d_model, config.d_ff));
  } else {
    wi = register_module("wi", Projection(config.d_model, config.d_ff));
  }
  wo = register_module("wo", Projection(config.d_ff, config.d_model));
}

torch::Tensor T5DenseImpl::forward(const torch::Tensor& x) {
  auto act = [this](const torch::Tensor& t) {
    if (act_ == "relu") return torch::relu(t);
    if (act_ == "gelu_new") return gelu_new(t);
    return torch::gelu(t);
  };
  torch::Tensor h = gated_ ? act(wi_0(x)) * wi_1(x) : act(wi(x));
  h = maybe_dropout(h, dropout_, is_training());
  if (h.scalar_type() != wo->weight.scalar_type()) h = h.to(wo->weight.scalar_type());
  return wo(h);
}

T5LayerFFImpl::T5LayerFFImpl(const T5Config& config) : dropout_(config.dropout_rate) {
  DenseReluDense = register_module("DenseReluDense", T5Dense(config));
  layer_norm = register_module("layer_norm", RMSNorm(config.d_model, config.layer_norm_epsilon));
}

torch::Tensor T5LayerFFImpl::forward(const torch::Tensor& x) {
  return x + maybe_dropout(DenseReluDense(layer_norm(x)), dropout_, is_training());
}

// ---------------------------------------------------------------------------------------------
T5BlockImpl::T5BlockImpl(const T5Config& config, bool has_relative_attention_bias, bool is_decoder)
    : dropout_(config.dropout_rate) {
  layer = register_module("layer", torch::nn::ModuleList());
  self_attention = T5LayerSelfAttention(config, has_relative_attention_bias, is_decoder);
  layer->push_back(self_attention);
  if (is_decoder) {
    cross_attention = T5LayerCrossAttention(config);
    layer->push_back(cross_attention);
  }
  ff = T5LayerFF(config);
  layer->push_back(ff);
}

torch::Tensor T5BlockImpl::forward_encoder(const torch::Tensor& h, const torch::Tensor& bias, LayerOutputs* trace) {
  auto& sa = *self_attention;
  torch::Tensor probs;
  auto out = h + maybe_dropout(sa.SelfAttention->forward(sa.layer_norm(h), {}, bias, trace ? &probs : nullptr),
                               dropout_, is_training());
  if (trace) trace->attentions.push_back(probs);
  return ff(out);
}

torch::Tensor T5BlockImpl::forward_encoder_packed(const torch::Tensor& h, const Packing& packing,
                                                  const torch::Tensor& bias) {
  auto& sa = *self_attention;
  auto out = h + maybe_dropout(sa.SelfAttention->forward_packed(sa.layer_norm(h), packing, bias), dropout_, is_training());
  return ff(out);
}

torch::Tensor T5BlockImpl::forward_decoder(const torch::Tensor& h, const torch::Tensor& self_bias,
                                           const torch::Tensor& cross_k, const torch::Tensor& cross_v,
                                           const torch::Tensor& cross_bias, LayerOutputs* trace) {
  auto& sa = *self_attention;
  auto& ca = *cross_attention;
  torch::Tensor probs, cross_probs;
  auto out = h + maybe_dropout(sa.SelfAttention->forward(sa.layer_norm(h), {}, self_bias, trace ? &probs : nullptr),
                               dropout_, is_training());
  out = out + maybe_dropout(ca.EncDecAttention->attend(ca.layer_norm(out), cross_k, cross_v, cross_bias,
                                                       trace ? &cross_probs : nullptr),
                            dropout_, is_training());
  if (trace) {
    trace->attentions.push_back(probs);
    trace->cross_attentions.push_back(cross_probs);
  }
  return ff(out);
}

torch::Tensor T5BlockImpl::step(const torch::Tensor& h, KVCache& cache, const torch::Tensor& self_bias,
                                const torch::Tensor& cross_k, const torch::Tensor& cross_v,
                                const torch::Tensor& cross_bias) {
  auto& sa = *self_attention;
  auto& ca = *cross_attention;
  auto out = h + sa.SelfAttention->forward_cached(sa.layer_norm(h), cache, self_bias);
  out = out + ca.EncDecAttention->attend(ca.layer_norm(out), cross_k, cross_v, cross_bias);
  return ff(out);
}

}  // namespace lorahub::model
