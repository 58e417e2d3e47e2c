#pragma once
#include <cstdint>
#include <string>

#include <nlohmann/json_fwd.hpp>

namespace lorahub::model {

/// The fields of Hugging Face's `T5Config` that define the computation, with HF names.
struct T5Config {
  std::int64_t vocab_size = 32128;
  std::int64_t d_model = 512;
  std::int64_t d_kv = 64;
  std::int64_t d_ff = 2048;
  std::int64_t num_layers = 6;
  std::int64_t num_decoder_layers = 6;
  std::int64_t num_heads = 8;
  std::int64_t relative_attention_num_buckets = 32;
  std::int64_t relative_attention_max_distance = 128;
  double dropout_rate = 0.1;
  double layer_norm_epsilon = 1e-6;
  std::string feed_forward_proj = "relu";
  std::string dense_act_fn = "relu";  ///< derived from feed_forward_proj: "relu" or "gelu_new"
  bool is_gated_act = false;          ///< derived from feed_forward_proj ("gated-*")
  bool tie_word_embeddings = true;
  std::int64_t pad_token_id = 0;
  std::int64_t eos_token_id = 1;
  std::int64_t decoder_start_token_id = 0;

  std::int64_t inner_dim() const { return num_heads * d_kv; }

  /// Parses an HF config.json object; `source` names the file in errors. Derives dense_act_fn and
  /// is_gated_act from feed_forward_proj ("gated-gelu" → gated gelu_new; "gated-X" → gated X; "X" → X)
  /// and rejects activations and values this engine does not implement, wrong types, non-positive dimensions,
  /// and dimensions whose products (shapes, parameter count, bytes) overflow 64-bit integers; errors name the key.
  static T5Config from_json(const nlohmann::json& j, const std::string& source);
  /// Reads `path` (a config.json file, or a folder holding one).
  static T5Config from_file(const std::string& path);
  /// The HF config.json representation (what `from_json` reads back).
  nlohmann::json to_json() const;
  /// Number of parameters the model with this config holds (tied embeddings counted once); cannot overflow
  /// for a config from from_json.
  std::int64_t num_parameters() const;
};

}  // namespace lorahub::model
