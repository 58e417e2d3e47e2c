#pragma once
// The building blocks of T5, registered under Hugging Face state-dict names so that loading a
// checkpoint is one checked loop over named_parameters().
#include <cstdint>
#include <optional>
#include <vector>

#include <torch/torch.h>

#include "lorahub/model/t5_config.h"

namespace lorahub::model {

/// A low-rank addition to a projection, per contiguous segment of batch rows (Punica's SGMV shape):
/// rows [o_s, o_s + rows_s) get `scale · (x Aₛᵀ) Bₛᵀ`. This is how unmerged LoRA (one composition for the
/// whole batch, S = 1) and batched fitness (k candidates, k segments) reach the model.
struct LowRankAddition {
  torch::Tensor a;                          ///< [S, r, in]
  torch::Tensor b;                          ///< [S, out, r]
  double scale = 1.0;                       ///< lora_alpha / r
  /// Batch rows per segment (sum = batch); empty: one segment, all rows. On packed rows ([T, in], the encoder's
  /// real tokens) equal sizes mean equal shares of T, which lets the packed encoder use the same segments.
  std::vector<std::int64_t> segment_rows;
  double dropout = 0.0;                     ///< dropout on the path's input, training mode only (PEFT's lora_dropout)
};

/// T5 RMS norm ("T5LayerNorm"): y = w · x / sqrt(mean(x²) + eps), variance in float32.
class RMSNormImpl : public torch::nn::Module {
 public:
  RMSNormImpl(std::int64_t dim, double eps);
  /// x: [..., dim] → same shape, in the weight's dtype.
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor weight;  ///< [dim]

 private:
  double eps_;
};
TORCH_MODULE(RMSNorm);

/// A bias-free linear map y = x Wᵀ with an optional low-rank addition and exact merge/restore.
class ProjectionImpl : public torch::nn::Module {
 public:
  ProjectionImpl(std::int64_t in_features, std::int64_t out_features);
  /// x: [B, ..., in] → [B, ..., out].
  torch::Tensor forward(const torch::Tensor& x);
  std::int64_t in_features() const { return in_features_; }
  std::int64_t out_features() const { return out_features_; }

  /// Sets (or with nullopt clears) the low-rank addition; shapes are checked against the weight.
  void set_low_rank(std::optional<LowRankAddition> addition);
  const std::optional<LowRankAddition>& low_rank() const { return low_rank_; }
  /// W ← W + delta (delta [out, in], added in float32 then cast). The first merge keeps a copy of W.
  void merge(const torch::Tensor& delta);
  /// Puts back the weight saved by the first merge, bit for bit; no-op when nothing is merged.
  void restore();
  bool merged() const { return original_.defined(); }

  torch::Tensor weight;  ///< [out, in]

 private:
  std::int64_t in_features_;
  std::int64_t out_features_;
  std::optional<LowRankAddition> low_rank_;
  torch::Tensor original_;
};
TORCH_MODULE(Projection);

/// The real (unpadded) tokens of a padded [batch, length] input: the packed encoder computes every
/// position-wise layer on these rows only and scatters them into the padded layout for attention.
struct Packing {
  torch::Tensor index;        ///< [T] int64: flat positions b · length + l of the real tokens, in order
  std::int64_t batch = 0;
  std::int64_t length = 0;
  /// [T, C] rows → [batch, length, C], zeros at padding.
  torch::Tensor unpack(const torch::Tensor& rows) const;
  /// [batch, length, C] → [T, C].
  torch::Tensor pack(const torch::Tensor& padded) const;
};

/// Cached keys/values of one attention layer during incremental decoding.
struct KVCache {
  torch::Tensor k;           ///< [B, H, capacity, d_kv]
  torch::Tensor v;           ///< [B, H, capacity, d_kv]
  std::int64_t length = 0;   ///< valid positions
};

/// Multi-head attention without score scaling; softmax in float32.
class T5AttentionImpl : public torch::nn::Module {
 public:
  T5AttentionImpl(const T5Config& config, bool has_relative_attention_bias, bool bidirectional);
  /// Relative position bias [1, H, q_len, k_len] for queries at q_offset.. and keys 0..k_len.
  torch::Tensor compute_bias(std::int64_t q_len, std::int64_t k_len, std::int64_t q_offset = 0);
  /// hidden: [B, Lq, D]; key_value: [B, Lk, D] (cross-attention) or undefined (self);
  /// bias: [1|B, H, Lq, Lk] position bias plus additive mask. Returns [B, Lq, D]; fills probs if given.
  torch::Tensor forward(const torch::Tensor& hidden, const torch::Tensor& key_value, const torch::Tensor& bias,
                        torch::Tensor* probs = nullptr);
  /// Self-attention step with a cache: appends this step's k/v, attends over all cached positions.
  torch::Tensor forward_cached(const torch::Tensor& hidden, KVCache& cache, const torch::Tensor& bias);
  /// Cross-attention keys/values computed once from the encoder output: [B, H, Le, d_kv] each.
  std::pair<torch::Tensor, torch::Tensor> project_kv(const torch::Tensor& key_value);
  /// Packed self-attention. x: [T, D] (normed real tokens of `packing`); bias as in forward. Returns [T, D].
  torch::Tensor forward_packed(const torch::Tensor& x, const Packing& packing, const torch::Tensor& bias);
  /// Attention over precomputed keys/values.
  torch::Tensor attend(const torch::Tensor& hidden, const torch::Tensor& k, const torch::Tensor& v,
                       const torch::Tensor& bias, torch::Tensor* probs = nullptr);

  Projection q{nullptr}, k{nullptr}, v{nullptr}, o{nullptr};
  torch::nn::Embedding relative_attention_bias{nullptr};  ///< [num_buckets, H], block 0 only

 private:
  torch::Tensor shape_heads(const torch::Tensor& x);  // [B, L, inner] → [B, H, L, d_kv]
  /// Scores, softmax (fills probs if given) and weighted values: heads [B, H, Lq|Lk, d_kv] → [B, Lq, inner].
  torch::Tensor mix(const torch::Tensor& queries, const torch::Tensor& keys, const torch::Tensor& values,
                    const torch::Tensor& bias, torch::Tensor* probs);
  std::int64_t num_heads_, d_kv_, num_buckets_, max_distance_;
  bool bidirectional_;
  double dropout_;
};
TORCH_MODULE(T5Attention);

class T5LayerSelfAttentionImpl : public torch::nn::Module {
 public:
  T5LayerSelfAttentionImpl(const T5Config& config, bool has_relative_attention_bias, bool is_decoder);
  T5Attention SelfAttention{nullptr};
  RMSNorm layer_norm{nullptr};
};
TORCH_MODULE(T5LayerSelfAttention);

class T5LayerCrossAttentionImpl : public torch::nn::Module {
 public:
  explicit T5LayerCrossAttentionImpl(const T5Config& config);
  T5Attention EncDecAttention{nullptr};
  RMSNorm layer_norm{nullptr};
};
TORCH_MODULE(T5LayerCrossAttention);

/// The feed-forward maps: relu (wi, wo) or gated (wi_0, wi_1, wo); HF's "DenseReluDense".
class T5DenseImpl : public torch::nn::Module {
 public:
  explicit T5DenseImpl(const T5Config& config);
  /// x: [B, L, D] (normed) → [B, L, D].
  torch::Tensor forward(const torch::Tensor& x);
  Projection wi{nullptr}, wi_0{nullptr}, wi_1{nullptr}, wo{nullptr};

 private:
  bool gated_;
  std::string act_;
  double dropout_;
};
TORCH_MODULE(T5Dense);

class T5LayerFFImpl : public torch::nn::Module {
 public:
  explicit T5LayerFFImpl(const T5Config& config);
  /// x: [B, L, D] → x + FF(LN(x)).
  torch::Tensor forward(const torch::Tensor& x);
  T5Dense DenseReluDense{nullptr};
  RMSNorm layer_norm{nullptr};

 private:
  double dropout_;
};
TORCH_MODULE(T5LayerFF);

/// Optional intermediate values, HF `output_hidden_states` / `output_attentions` conventions.
struct LayerOutputs {
  bool want = false;
  std::vector<torch::Tensor> hidden_states;     ///< input of each block, then the final-norm output
  std::vector<torch::Tensor> attentions;        ///< self-attention probabilities per block
  std::vector<torch::Tensor> cross_attentions;  ///< decoder only
};

/// One encoder or decoder block: layer.0 self-attention, [layer.1 cross-attention], last: feed-forward.
class T5BlockImpl : public torch::nn::Module {
 public:
  T5BlockImpl(const T5Config& config, bool has_relative_attention_bias, bool is_decoder);
  /// Encoder block. h: [B, L, D]; bias: [1|B, H, L, L] (position bias + mask).
  torch::Tensor forward_encoder(const torch::Tensor& h, const torch::Tensor& bias, LayerOutputs* trace);
  /// Encoder block on packed rows. h: [T, D]; bias as in forward_encoder.
  torch::Tensor forward_encoder_packed(const torch::Tensor& h, const Packing& packing, const torch::Tensor& bias);
  /// Decoder block, teacher forcing. cross_k/v: [B, H, Le, d_kv]; cross_bias: [B, 1|H, 1|Ld, Le].
  torch::Tensor forward_decoder(const torch::Tensor& h, const torch::Tensor& self_bias,
                                const torch::Tensor& cross_k, const torch::Tensor& cross_v,
                                const torch::Tensor& cross_bias, LayerOutputs* trace);
  /// Decoder block, one incremental step with a self-attention cache. h: [B, 1, D].
  torch::Tensor step(const torch::Tensor& h, KVCache& cache, const torch::Tensor& self_bias,
                     const torch::Tensor& cross_k, const torch::Tensor& cross_v, const torch::Tensor& cross_bias);

  T5LayerSelfAttention self_attention{nullptr};
  T5LayerCrossAttention cross_attention{nullptr};  ///< decoder only
  T5LayerFF ff{nullptr};
  torch::nn::ModuleList layer{nullptr};

 private:
  double dropout_;
};
TORCH_MODULE(T5Block);

/// Bucket of each relative position (key − query), HF `_relative_position_bucket`. int64 in, int64 out.
torch::Tensor relative_position_bucket(const torch::Tensor& relative_position, bool bidirectional,
                                       std::int64_t num_buckets, std::int64_t max_distance);

/// HF's `gelu_new` (tanh approximation), same operation order as transformers.
torch::Tensor gelu_new(const torch::Tensor& x);

}  // namespace lorahub::model
