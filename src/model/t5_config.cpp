#include "lorahub/model/t5_config.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>

#include <nlohmann/json.hpp>

#include "lorahub/core/error.h"
#include "lorahub/core/json_excerpt.h"

namespace lorahub::model {
namespace fs = std::filesystem;
using core::fail;

namespace {

using core::json_excerpt;

constexpr std::int64_t kInt64Max = std::numeric_limits<std::int64_t>::max();
// config.json is about a kilobyte; anything this large is not one (and would be read into memory).
constexpr std::uintmax_t kMaxConfigBytes = 16 << 20;

std::int64_t get_int(const nlohmann::json& j, const char* key, std::int64_t fallback,
                     const std::string& source, std::int64_t min_value) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  const auto& v = j[key];
  if (!v.is_number_integer()) fail(source, ": key '", key, "' must be an integer, got ", json_excerpt(v));
  // An unsigned JSON integer above INT64_MAX would wrap if read as int64_t.
  if (v.is_number_unsigned() && v.get<std::uint64_t>() > static_cast<std::uint64_t>(kInt64Max)) {
    fail(source, ": key '", key, "' = ", json_excerpt(v), " does not fit in a 64-bit integer");
  }
  auto x = v.get<std::int64_t>();
  if (x < min_value) fail(source, ": key '", key, "' must be >= ", min_value, ", got ", x);
  return x;
}

double get_double(const nlohmann::json& j, const char* key, double fallback, const std::string& source) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  if (!j[key].is_number()) fail(source, ": key '", key, "' must be a number, got ", json_excerpt(j[key]));
  const double x = j[key].get<double>();
  // The JSON reader rejects NaN and 1e400, but a json built in code may hold either.
  if (!std::isfinite(x)) fail(source, ": key '", key, "' must be finite, got ", json_excerpt(j[key]));
  return x;
}

// a × b, or an Error naming the keys when the product does not fit in 64 bits.
std::int64_t checked_mul(std::int64_t a, std::int64_t b, const char* what, const std::string& source) {
  std::int64_t out = 0;
  if (__builtin_mul_overflow(a, b, &out)) {
    fail(source, ": ", what, " = ", a, " × ", b, " overflows a 64-bit integer");
  }
  return out;
}

std::int64_t checked_add(std::int64_t a, std::int64_t b, const std::string& source) {
  std::int64_t out = 0;
  if (__builtin_add_overflow(a, b, &out)) fail(source, ": the parameter count overflows a 64-bit integer");
  return out;
}

// Every product the model derives from the dimensions (shapes, parameter count, bytes) must fit in 64 bits, so
// that num_parameters() and the shape checks against a checkpoint never overflow.
void check_sizes(const T5Config& c, const std::string& source) {
  const auto inner = checked_mul(c.num_heads, c.d_kv, "num_heads × d_kv", source);
  const auto attn = checked_mul(4, checked_mul(inner, c.d_model, "num_heads × d_kv × d_model", source),
                                "4 × num_heads × d_kv × d_model", source);
  const auto ff = checked_mul(c.is_gated_act ? 3 : 2, checked_mul(c.d_model, c.d_ff, "d_model × d_ff", source),
                              "d_model × d_ff × matrices", source);
  const auto bias = checked_mul(c.relative_attention_num_buckets, c.num_heads,
                                "relative_attention_num_buckets × num_heads", source);
  const auto emb = checked_mul(c.vocab_size, c.d_model, "vocab_size × d_model", source);
  const auto enc_block = checked_add(checked_add(attn, ff, source), 2 * c.d_model, source);
  const auto dec_block = checked_add(checked_add(checked_mul(2, attn, "2 × attention", source), ff, source),
                                     3 * c.d_model, source);
  auto total = checked_add(emb, checked_mul(c.num_layers, enc_block, "num_layers × block parameters", source), source);
  total = checked_add(
      total, checked_mul(c.num_decoder_layers, dec_block, "num_decoder_layers × block parameters", source), source);
  total = checked_add(total, checked_add(2 * bias, 2 * c.d_model, source), source);
  if (!c.tie_word_embeddings) total = checked_add(total, emb, source);
  // Room for the bytes of float64 copies.
  checked_mul(total, 8, "parameters × 8 bytes", source);
}

}  // namespace

T5Config T5Config::from_json(const nlohmann::json& j, const std::string& source) {
  if (!j.is_object()) fail(source, ": expected a JSON object");
  if (j.contains("model_type") && j["model_type"] != "t5") {
    fail(source, ": model_type is ", json_excerpt(j["model_type"]), ", this engine runs \"t5\" models only");
  }
  T5Config c;
  c.vocab_size = get_int(j, "vocab_size", c.vocab_size, source, 1);
  c.d_model = get_int(j, "d_model", c.d_model, source, 1);
  c.d_kv = get_int(j, "d_kv", c.d_kv, source, 1);
  c.d_ff = get_int(j, "d_ff", c.d_ff, source, 1);
  c.num_layers = get_int(j, "num_layers", c.num_layers, source, 1);
  // HF: num_decoder_layers defaults to num_layers ("symmetry").
  c.num_decoder_layers = get_int(j, "num_decoder_layers", c.num_layers, source, 1);
  c.num_heads = get_int(j, "num_heads", c.num_heads, source, 1);
  // At least 4, so that both the encoder's (num_buckets / 4) and the decoder's (num_buckets / 2) exact ranges are
  // non-empty: HF's bucket formula divides by log(max_distance / max_exact).
  c.relative_attention_num_buckets =
      get_int(j, "relative_attention_num_buckets", c.relative_attention_num_buckets, source, 4);
  c.relative_attention_max_distance =
      get_int(j, "relative_attention_max_distance", c.relative_attention_max_distance, source, 1);
  c.dropout_rate = get_double(j, "dropout_rate", c.dropout_rate, source);
  c.layer_norm_epsilon = get_double(j, "layer_norm_epsilon", c.layer_norm_epsilon, source);
  c.pad_token_id = get_int(j, "pad_token_id", c.pad_token_id, source, 0);
  c.eos_token_id = get_int(j, "eos_token_id", c.eos_token_id, source, 0);
  c.decoder_start_token_id = get_int(j, "decoder_start_token_id", c.pad_token_id, source, 0);
  if (j.contains("tie_word_embeddings")) {
    if (!j["tie_word_embeddings"].is_boolean()) {
      fail(source, ": key 'tie_word_embeddings' must be a boolean, got ", json_excerpt(j["tie_word_embeddings"]));
    }
    c.tie_word_embeddings = j["tie_word_embeddings"].get<bool>();
  }
  if (j.contains("feed_forward_proj")) {
    if (!j["feed_forward_proj"].is_string()) {
      fail(source, ": key 'feed_forward_proj' must be a string, got ", json_excerpt(j["feed_forward_proj"]));
    }
    c.feed_forward_proj = j["feed_forward_proj"].get<std::string>();
  }
  // Derived exactly as HF's T5Config.__init__ does.
  std::string act = c.feed_forward_proj;
  c.is_gated_act = false;
  if (act.rfind("gated-", 0) == 0) {
    c.is_gated_act = true;
    act = act.substr(6);
  }
  if (act.empty() || act.find('-') != std::string::npos) {
    fail(source, ": feed_forward_proj ", json_excerpt(nlohmann::json(c.feed_forward_proj)),
         " is not valid; expected 'relu', 'gelu', 'gated-gelu', 'gated-relu', 'gelu_new' or 'gated-gelu_new'");
  }
  if (c.feed_forward_proj == "gated-gelu") act = "gelu_new";  // HF's backwards-compatibility rule
  if (act != "relu" && act != "gelu_new" && act != "gelu") {
    fail(source, ": activation ", json_excerpt(nlohmann::json(act)), " (from feed_forward_proj ",
         json_excerpt(nlohmann::json(c.feed_forward_proj)), ") is not implemented; supported: relu, gelu, gelu_new");
  }
  c.dense_act_fn = act;
  if (c.vocab_size <= c.eos_token_id || c.vocab_size <= c.pad_token_id ||
      c.vocab_size <= c.decoder_start_token_id) {
    fail(source, ": special token ids must be below vocab_size ", c.vocab_size);
  }
  if (c.relative_attention_max_distance <= c.relative_attention_num_buckets / 2) {
    fail(source, ": relative_attention_max_distance = ", c.relative_attention_max_distance,
         " must exceed relative_attention_num_buckets / 2 = ", c.relative_attention_num_buckets / 2,
         " (the buckets' logarithmic range starts there)");
  }
  if (c.dropout_rate < 0 || c.dropout_rate >= 1) fail(source, ": dropout_rate must be in [0, 1), got ", c.dropout_rate);
  if (!(c.layer_norm_epsilon > 0)) fail(source, ": layer_norm_epsilon must be positive, got ", c.layer_norm_epsilon);
  check_sizes(c, source);
  return c;
}

T5Config T5Config::from_file(const std::string& path) {
  fs::path p(path);
  if (fs::is_directory(p)) p /= "config.json";
  std::error_code ec;
  const auto size = fs::file_size(p, ec);
  if (!ec && size > kMaxConfigBytes) {
    fail(p.string(), ": is ", size, " bytes; a config.json is at most ", kMaxConfigBytes);
  }
  std::ifstream in(p);
  if (!in) fail(p.string(), ": cannot open model config (expected an HF config.json)");
  nlohmann::json j;
  try {
    in >> j;
  } catch (const nlohmann::json::exception& e) {
    fail(p.string(), ": invalid JSON: ", e.what());
  }
  return from_json(j, p.string());
}

nlohmann::json T5Config::to_json() const {
  return {{"architectures", {"T5ForConditionalGeneration"}},
          {"model_type", "t5"},
          {"vocab_size", vocab_size},
          {"d_model", d_model},
          {"d_kv", d_kv},
          {"d_ff", d_ff},
          {"num_layers", num_layers},
          {"num_decoder_layers", num_decoder_layers},
          {"num_heads", num_heads},
          {"relative_attention_num_buckets", relative_attention_num_buckets},
          {"relative_attention_max_distance", relative_attention_max_distance},
          {"dropout_rate", dropout_rate},
          {"layer_norm_epsilon", layer_norm_epsilon},
          {"feed_forward_proj", feed_forward_proj},
          {"dense_act_fn", dense_act_fn},
          {"is_gated_act", is_gated_act},
          {"tie_word_embeddings", tie_word_embeddings},
          {"pad_token_id", pad_token_id},
          {"eos_token_id", eos_token_id},
          {"decoder_start_token_id", decoder_start_token_id},
          {"is_encoder_decoder", true},
          {"use_cache", true},
          {"initializer_factor", 1.0}};
}

std::int64_t T5Config::num_parameters() const {
  std::int64_t inner = inner_dim();
  std::int64_t attn = 4 * inner * d_model;
  std::int64_t ff = (is_gated_act ? 3 : 2) * d_model * d_ff;
  std::int64_t bias = relative_attention_num_buckets * num_heads;
  std::int64_t enc = num_layers * (attn + ff + 2 * d_model) + bias + d_model;
  std::int64_t dec = num_decoder_layers * (2 * attn + ff + 3 * d_model) + bias + d_model;
  std::int64_t emb = vocab_size * d_model;
  return emb + enc + dec + (tie_word_embeddings ? 0 : emb);
}

}  // namespace lorahub::model
