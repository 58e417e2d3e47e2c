#pragma once
// Flan-T5 / T5 encoder-decoder on libtorch, numerically matching Hugging Face transformers.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "lorahub/model/t5_config.h"
#include "lorahub/model/t5_layers.h"

namespace lorahub::model {

/// How weights and matmuls are computed. kF32 is exact (the default); kBF16 keeps weights and matmuls in
/// bfloat16 while RMSNorm variance, softmax, logits and loss stay in float32.
enum class ComputeDType { kF32, kBF16 };
ComputeDType parse_compute_dtype(const std::string& name);  ///< "f32" | "bf16"
std::string to_string(ComputeDType dtype);
/// Whether libtorch 1.13 has a fast CPU bfloat16 matmul here: oneDNN, used only where ATen finds AVX-512 BW, VL
/// and DQ; elsewhere bf16 matmuls run a scalar reference loop (~40x slower than f32). True off x86.
bool cpu_has_fast_bf16();

/// Where and how to run a model.
struct RuntimeOptions {
  torch::Device device = torch::kCPU;
  ComputeDType dtype = ComputeDType::kF32;
  /// load_t5: reject weights holding NaN or ±Inf (checked after the dtype conversion). It reads every weight once,
  /// which costs more than 2 % of the load, hence the switch. Measured on a flan-t5-large sized model (783M
  /// parameters, a 3.1 GB model.safetensors in the page cache; 2 cores shared with other work, medians of 5 and 7
  /// runs of tests/model/finite_probe): f32 loads in 0.009-0.013 s without it (the weights stay an unread mapping)
  /// and 0.33-0.50 s with it (mapping and reading all 3.1 GB, which the first forward pass would do anyway); bf16
  /// loads in 1.05-1.37 s without it and 1.28-1.64 s with it (+20 %: 0.20-0.26 s over the 1.6 GB of converted
  /// weights).
  bool check_finite = true;
};

/// Incremental decoding state: per-block self-attention caches and cross-attention keys/values.
struct DecoderState {
  std::vector<KVCache> self_cache;
  std::vector<torch::Tensor> cross_k, cross_v;  ///< [B, H, Le, d_kv] per block
  torch::Tensor cross_bias;                     ///< [B, 1, 1, Le] additive encoder mask
  std::int64_t position = 0;                    ///< decoder positions consumed so far
  /// Keeps only the batch rows in `index` (int64 [B'] on the model's device).
  void select_rows(const torch::Tensor& index);
};

/// One T5 stack (encoder or decoder); the token embedding is owned by the model and passed in.
class T5StackImpl : public torch::nn::Module {
 public:
  T5StackImpl(const T5Config& config, bool is_decoder);
  /// embeds: [B, L, D]; attention_mask: [B, L] (1 token, 0 pad). Returns the final-norm output [B, L, D].
  /// skip_padding (inference without a trace): the position-wise layers run on the real tokens only; real
  /// positions come out as in the padded computation, padding positions are zeros.
  torch::Tensor encode(const torch::Tensor& embeds, const torch::Tensor& attention_mask, LayerOutputs* trace,
                       bool skip_padding = false);
  /// Teacher forcing. embeds: [B, Ld, D]; encoder_hidden: [B, Le, D]; encoder_mask: [B, Le]. Returns [B, Ld, D].
  torch::Tensor decode(const torch::Tensor& embeds, const torch::Tensor& encoder_hidden,
                       const torch::Tensor& encoder_mask, LayerOutputs* trace);
  /// Prepares incremental decoding (cross-attention K/V computed once).
  DecoderState start(const torch::Tensor& encoder_hidden, const torch::Tensor& encoder_mask);
  /// One decoding step. embeds: [B, 1, D] → [B, 1, D] (final-norm output).
  torch::Tensor step(const torch::Tensor& embeds, DecoderState& state);

  torch::nn::ModuleList block{nullptr};
  RMSNorm final_layer_norm{nullptr};
  std::vector<T5Block> blocks;

 private:
  bool is_decoder_;
  double dropout_;
};
TORCH_MODULE(T5Stack);

/// Teacher-forced model outputs (HF names).
struct Seq2SeqOutput {
  torch::Tensor logits;                     ///< [B, Ld, V] float32
  torch::Tensor encoder_last_hidden_state;  ///< [B, Le, D]
  torch::Tensor decoder_last_hidden_state;  ///< [B, Ld, D] after the decoder's final norm
  LayerOutputs encoder_trace, decoder_trace;  ///< filled when requested
};

/// `T5ForConditionalGeneration`: shared embedding, encoder, decoder and LM head.
class T5ModelImpl : public torch::nn::Module {
 public:
  explicit T5ModelImpl(const T5Config& config);
  const T5Config& config() const { return config_; }

  /// input_ids: [B, Le] int64; attention_mask: [B, Le]. Returns the encoder output [B, Le, D]; with
  /// skip_padding, zeros at padding positions (see T5StackImpl::encode) and less work.
  torch::Tensor encode(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                       LayerOutputs* trace = nullptr, bool skip_padding = false);
  /// decoder_input_ids: [B, Ld] int64. Returns the decoder's final-norm output [B, Ld, D].
  torch::Tensor decode(const torch::Tensor& decoder_input_ids, const torch::Tensor& encoder_hidden,
                       const torch::Tensor& encoder_mask, LayerOutputs* trace = nullptr);
  /// LM head: [..., D] → [..., V] float32 (tied models rescale by d_model^-0.5 first).
  torch::Tensor lm_logits(const torch::Tensor& decoder_hidden);
  /// Full teacher-forced pass; traces are collected when `trace` is true. skip_padding: as in encode (the
  /// logits are the same; encoder_last_hidden_state is zero at padding).
  Seq2SeqOutput forward(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                        const torch::Tensor& decoder_input_ids, bool trace = false, bool skip_padding = false);

  /// Incremental decoding: start from the encoder output, then one token per row per step.
  DecoderState start_decoding(const torch::Tensor& encoder_hidden, const torch::Tensor& encoder_mask);
  /// tokens: [B] int64 → next-token logits [B, V] float32.
  torch::Tensor decode_step(const torch::Tensor& tokens, DecoderState& state);

  /// HF state-dict names of every linear projection ("encoder.block.0.layer.0.SelfAttention.q", ...).
  std::vector<std::string> projection_names() const;
  /// The projection with that name; Error naming it (and the expected form) when absent.
  Projection projection(const std::string& name) const;
  /// Removes every low-rank addition.
  void clear_low_rank();
  /// Restores every merged projection to its saved weight.
  void restore_merged();

  /// Moves and converts the weights (bf16: weights in bf16 plus a float32 copy of the LM head).
  void set_runtime(const RuntimeOptions& options);
  const RuntimeOptions& runtime() const { return runtime_; }
  torch::ScalarType weight_dtype() const;

  /// Initialises every weight as HF's T5PreTrainedModel._init_weights does (factor 1), seeded.
  void init_weights(std::uint64_t seed);

  torch::nn::Embedding shared{nullptr};
  T5Stack encoder{nullptr}, decoder{nullptr};
  Projection lm_head{nullptr};  ///< untied models only

 private:
  T5Config config_;
  RuntimeOptions runtime_;
  torch::Tensor lm_head_f32_;  // float32 LM head weight in bf16 mode
  std::map<std::string, Projection> projections_;
};
TORCH_MODULE(T5Model);

/// Loads config.json and the weights from an HF model folder (model.safetensors, sharded index, or
/// pytorch_model.bin). Every parameter must be present with its shape, checked against the config before
/// anything is allocated (errors name the config key that disagrees); unexpected keys are an error (except
/// HF's tied aliases); weights must be finite unless options.check_finite is off. Errors name the folder/file
/// and key. The model is in eval mode.
T5Model load_t5(const std::string& model_dir, const RuntimeOptions& options = {});
/// A model with HF's random initialisation (for benchmarks and pretraining), seeded.
T5Model random_t5(const T5Config& config, std::uint64_t seed, const RuntimeOptions& options = {});
/// Writes config.json and model.safetensors (HF layout, tied keys omitted) into `model_dir`.
void save_t5(T5Model& model, const std::string& model_dir);

/// HF `_shift_right`: [start, labels[:, :-1]] with -100 replaced by pad. labels: [B, Ld] int64.
torch::Tensor shift_right(const torch::Tensor& labels, std::int64_t decoder_start_token_id, std::int64_t pad_token_id);

/// Teacher-forced loss terms.
struct LossTerms {
  torch::Tensor loss;               ///< [] HF loss: token mean over the whole batch, -100 ignored
  torch::Tensor token_loss;         ///< [B, Ld] -log p(label), 0 where ignored
  torch::Tensor example_loss_sum;   ///< [B]
  torch::Tensor example_loss_mean;  ///< [B]
  torch::Tensor token_count;        ///< [B] non-ignored labels per row (int64)
};
/// logits: [B, Ld, V]; labels: [B, Ld] int64 with -100 = ignore. All outputs float32.
LossTerms seq2seq_loss(const torch::Tensor& logits, const torch::Tensor& labels);

struct GenerateOptions {
  std::int64_t max_new_tokens = 256;
  /// Stop computing rows that produced EOS (their output is padding either way). Off reproduces HF's
  /// step logits for finished rows too.
  bool drop_finished_rows = true;
  bool keep_step_logits = false;
};
struct GenerateResult {
  torch::Tensor ids;          ///< [B, 1+n] int64 on CPU: decoder start, tokens, pad after EOS
  torch::Tensor step_logits;  ///< [n, B, V] float32 when kept (rows dropped after EOS are zero)
};
/// Greedy decoding with a key/value cache, batched; each row stops at EOS and is padded after it.
GenerateResult generate_greedy(T5ModelImpl& model, const torch::Tensor& input_ids,
                               const torch::Tensor& attention_mask, const GenerateOptions& options = {});

}  // namespace lorahub::model
