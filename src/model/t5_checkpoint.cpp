#include "model/t5_checkpoint.h"

#include <charconv>
#include <cstdint>
#include <limits>
#include <vector>

#include "lorahub/core/error.h"

namespace lorahub::model::detail {
using core::cat;
using core::fail;

namespace {

// One dimension of an expected shape and the config key(s) it comes from.
struct Dim {
  std::string key;
  std::int64_t value = 0;
};

struct Expected {
  std::string name;
  std::vector<Dim> dims;
};

// The HF state-dict names and shapes of every parameter of T5ForConditionalGeneration with this config, in the
// order load_t5 registers them (T5ModelImpl). Call only once the block counts are known to match the checkpoint:
// the list grows with num_layers.
std::vector<Expected> expected_tensors(const T5Config& c) {
  const Dim vocab{"vocab_size", c.vocab_size};
  const Dim model{"d_model", c.d_model};
  const Dim ff{"d_ff", c.d_ff};
  const Dim heads{"num_heads", c.num_heads};
  const Dim inner{cat("num_heads × d_kv = ", c.num_heads, " × ", c.d_kv), c.num_heads * c.d_kv};
  const Dim buckets{"relative_attention_num_buckets", c.relative_attention_num_buckets};
  std::vector<Expected> out;
  out.push_back({"shared.weight", {vocab, model}});
  for (const bool decoder : {false, true}) {
    const std::string stack = decoder ? "decoder" : "encoder";
    const auto blocks = decoder ? c.num_decoder_layers : c.num_layers;
    for (std::int64_t i = 0; i < blocks; ++i) {
      const std::string layer = cat(stack, ".block.", i, ".layer.");
      auto attention = [&](const std::string& prefix) {
        for (const char* p : {"q", "k", "v"}) out.push_back({prefix + p + ".weight", {inner, model}});
        out.push_back({prefix + "o.weight", {model, inner}});
      };
      attention(layer + "0.SelfAttention.");
      if (i == 0) out.push_back({layer + "0.SelfAttention.relative_attention_bias.weight", {buckets, heads}});
      out.push_back({layer + "0.layer_norm.weight", {model}});
      if (decoder) {
        attention(layer + "1.EncDecAttention.");
        out.push_back({layer + "1.layer_norm.weight", {model}});
      }
      const std::string dense = layer + (decoder ? "2" : "1") + ".DenseReluDense.";
      if (c.is_gated_act) {
        out.push_back({dense + "wi_0.weight", {ff, model}});
        out.push_back({dense + "wi_1.weight", {ff, model}});
      } else {
        out.push_back({dense + "wi.weight", {ff, model}});
      }
      out.push_back({dense + "wo.weight", {model, ff}});
      out.push_back({layer + (decoder ? "2" : "1") + ".layer_norm.weight", {model}});
    }
    out.push_back({stack + ".final_layer_norm.weight", {model}});
  }
  if (!c.tie_word_embeddings) out.push_back({"lm_head.weight", {vocab, model}});
  return out;
}

std::string shape_text(const std::vector<Dim>& dims) {
  std::string s = "[";
  for (std::size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i].value);
  return s + "]";
}

std::string file_of(const KeyFiles& files, const std::string& key) {
  const auto it = files.find(key);
  return it == files.end() ? std::string("the checkpoint") : it->second;
}

// The number of blocks of one stack in the checkpoint: 1 + the highest index in "<stack>.block.<i>." keys, and a
// key holding that index. Keys whose index does not fit in 64 bits are left to the unexpected-key check.
std::pair<std::int64_t, std::string> count_blocks(const StateDict& weights, const std::string& stack) {
  const std::string prefix = stack + ".block.";
  std::int64_t count = 0;
  std::string key;
  for (auto it = weights.lower_bound(prefix); it != weights.end() && it->first.compare(0, prefix.size(), prefix) == 0;
       ++it) {
    const char* begin = it->first.data() + prefix.size();
    const char* end = it->first.data() + it->first.size();
    std::int64_t index = 0;
    const auto [stop, ec] = std::from_chars(begin, end, index);
    if (ec != std::errc() || stop == begin || stop == end || *stop != '.' || index < 0 ||
        index == std::numeric_limits<std::int64_t>::max()) {
      continue;
    }
    if (index + 1 > count) {
      count = index + 1;
      key = it->first;
    }
  }
  return {count, key};
}

}  // namespace

void check_config_against_checkpoint(const T5Config& config, const std::string& config_path,
                                     const StateDict& weights, const KeyFiles& files) {
  for (const bool decoder : {false, true}) {
    const std::string stack = decoder ? "decoder" : "encoder";
    const char* key = decoder ? "num_decoder_layers" : "num_layers";
    const auto expected = decoder ? config.num_decoder_layers : config.num_layers;
    const auto [count, last] = count_blocks(weights, stack);
    if (count == 0) {
      fail(config_path, ": ", key, " = ", expected, " but the checkpoint has no ", stack, ".block.* tensors");
    }
    if (count != expected) {
      fail(config_path, ": ", key, " = ", expected, " but ", file_of(files, last), " has ", count, " ", stack,
           " blocks (", stack, ".block.0 to ", stack, ".block.", count - 1, ")");
    }
  }
  const std::string dense = "encoder.block.0.layer.1.DenseReluDense.";
  if (config.is_gated_act && !weights.count(dense + "wi_0.weight") && weights.count(dense + "wi.weight")) {
    fail(config_path, ": feed_forward_proj = '", config.feed_forward_proj, "' is gated, but ",
         file_of(files, dense + "wi.weight"), " has ", dense, "wi.weight, the key of a non-gated feed-forward");
  }
  if (!config.is_gated_act && !weights.count(dense + "wi.weight") && weights.count(dense + "wi_0.weight")) {
    fail(config_path, ": feed_forward_proj = '", config.feed_forward_proj, "' is not gated, but ",
         file_of(files, dense + "wi_0.weight"), " has ", dense, "wi_0.weight, the key of a gated feed-forward");
  }
  if (!config.tie_word_embeddings && !weights.count("lm_head.weight")) {
    fail(config_path, ": tie_word_embeddings = false but the checkpoint has no lm_head.weight (an untied model has "
                      "its own LM head)");
  }

  for (const auto& e : expected_tensors(config)) {
    auto it = weights.find(e.name);
    if (it == weights.end() && e.name == "shared.weight") {
      it = weights.find("encoder.embed_tokens.weight");  // some converted checkpoints only keep this alias
    }
    if (it == weights.end()) {
      fail(config_path, ": the config implies '", e.name, "' ", shape_text(e.dims), ", which the checkpoint lacks");
    }
    const auto& [name, t] = *it;
    const auto file = file_of(files, name);
    if (!t.is_floating_point()) fail(file, ": key '", name, "' has non-float dtype ", t.scalar_type());
    if (t.dim() != static_cast<std::int64_t>(e.dims.size())) {
      fail(file, ": key '", name, "' has shape ", t.sizes(), ", the config ", config_path, " implies ",
           shape_text(e.dims));
    }
    for (std::size_t d = 0; d < e.dims.size(); ++d) {
      const auto actual = t.size(static_cast<std::int64_t>(d));
      if (actual == e.dims[d].value) continue;
      const char* what = e.dims.size() == 1 ? "entries" : (d == 0 ? "rows" : "columns");
      fail(config_path, ": ", e.dims[d].key, " = ", e.dims[d].value, " but ", name, " in ", file, " has ", actual, " ",
           what, " (shape ", t.sizes(), "; the config implies ", shape_text(e.dims), ")");
    }
    // A strided view (torch.save) may repeat a small storage into a large shape; copying it into the model would
    // allocate far more than the file holds.
    if (t.has_storage() && static_cast<std::size_t>(t.numel()) * t.element_size() > t.storage().nbytes()) {
      fail(file, ": key '", name, "' has shape ", t.sizes(), " (", t.numel(), " elements) but its storage holds only ",
           t.storage().nbytes(), " bytes");
    }
  }
}

}  // namespace lorahub::model::detail
