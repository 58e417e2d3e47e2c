#include "lorahub/demo/synthetic.h"

#include <cmath>
#include <filesystem>
#include <iomanip>
#include <sstream>

#include <torch/torch.h>

#include "lorahub/core/error.h"
#include "lorahub/core/process.h"

namespace lorahub::demo {
namespace fs = std::filesystem;
using core::fail;

namespace {

std::size_t pool_size(std::size_t pool) {
  const auto all = synthetic_words().size();
  if (pool > all) fail("synthetic words: a pool of ", pool, " words asked for, there are ", all);
  return pool == 0 ? all : pool;
}

}  // namespace

const std::vector<std::string>& synthetic_words() {
  static const std::vector<std::string> w = {
      "cat",   "dog",   "cow",  "pig",   "fox",   "owl",   "bee",   "hen",   "red",  "blue",  "green", "pink",
      "apple", "pear",  "plum", "lime",  "cup",   "pen",   "box",   "car",   "river", "stone", "cloud", "train",
      "seven", "three", "left", "right", "north", "south", "small", "large", "true", "false", "open",  "closed"};
  return w;
}

std::string random_sentence(core::Rng& rng, std::size_t count, std::size_t pool) {
  const auto n = pool_size(pool);
  const auto& words = synthetic_words();
  std::string s;
  for (std::size_t i = 0; i < count; ++i) s += (i ? " " : "") + words[rng.below(n)];
  return s;
}

std::vector<std::string> distinct_words(core::Rng& rng, std::size_t count, std::size_t pool) {
  const auto n = pool_size(pool);
  if (count > n) fail("synthetic words: ", count, " distinct words asked for from a pool of ", n);
  std::vector<std::string> words(synthetic_words().begin(), synthetic_words().begin() + static_cast<std::ptrdiff_t>(n));
  for (std::size_t i = 0; i < count; ++i) std::swap(words[i], words[i + rng.below(n - i)]);
  words.resize(count);
  return words;
}

std::string train_t5_tokenizer(const std::string& corpus, const std::string& model_prefix, std::int64_t vocab_size,
                               const std::string& log) {
  if (vocab_size < 8) fail("tokenizer ", model_prefix, ": vocab_size ", vocab_size, " is below 8");
  const auto parent = fs::path(model_prefix).parent_path();
  if (!parent.empty()) fs::create_directories(parent);
  std::error_code ec;
  fs::remove(log, ec);  // spawn_and_wait appends
  core::ChildExit child;
  try {
    child = core::spawn_and_wait({"spm_train", "--input=" + corpus, "--model_prefix=" + model_prefix,
                                  "--vocab_size=" + std::to_string(vocab_size), "--hard_vocab_limit=false",
                                  "--model_type=unigram", "--character_coverage=1.0", "--pad_id=0", "--eos_id=1",
                                  "--unk_id=2", "--bos_id=-1", "--minloglevel=2"},
                                 log);
  } catch (const core::Error& e) {
    fail(e.what(), " (spm_train comes with the Debian package 'sentencepiece')");
  }
  if (!child.ok()) fail("spm_train on ", corpus, " failed (", child.describe(), "); its output: ", log);
  const auto model = model_prefix + ".model";
  if (!fs::exists(model)) fail("spm_train on ", corpus, " wrote no ", model, "; its output: ", log);
  return model;
}

model::T5Config flan_t5_config(const std::string& size) {
  model::T5Config c;
  c.vocab_size = 32128;
  c.d_kv = 64;
  c.relative_attention_num_buckets = 32;
  c.relative_attention_max_distance = 128;
  c.feed_forward_proj = "gated-gelu";
  c.dense_act_fn = "gelu_new";
  c.is_gated_act = true;
  c.tie_word_embeddings = false;
  c.dropout_rate = 0.1;
  if (size == "small") {
    c.d_model = 512, c.num_heads = 6, c.d_ff = 1024, c.num_layers = c.num_decoder_layers = 8;
  } else if (size == "base") {
    c.d_model = 768, c.num_heads = 12, c.d_ff = 2048, c.num_layers = c.num_decoder_layers = 12;
  } else if (size == "large") {
    c.d_model = 1024, c.num_heads = 16, c.d_ff = 2816, c.num_layers = c.num_decoder_layers = 24;
  } else if (size == "tiny") {
    c.d_model = 64, c.d_kv = 16, c.num_heads = 4, c.d_ff = 128, c.num_layers = c.num_decoder_layers = 2;
  } else {
    fail("unknown Flan-T5 shape '", size, "' (small, base, large, tiny)");
  }
  return c;
}

std::vector<lora::LoraAdapter> random_adapters(const model::T5ModelImpl& model, const RandomLibrarySpec& spec) {
  if (spec.modules < 1 || spec.rank < 1) {
    fail("random library: ", spec.modules, " modules of rank ", spec.rank, " asked for (both must be >= 1)");
  }
  torch::manual_seed(spec.seed);
  std::vector<lora::LoraAdapter> out;
  for (std::int64_t i = 0; i < spec.modules; ++i) {
    lora::LoraAdapter a;
    std::ostringstream name;
    name << spec.name_prefix << std::setw(spec.name_digits) << std::setfill('0') << i;
    a.name = name.str();
    a.config.r = spec.rank;
    a.config.lora_alpha = spec.lora_alpha;
    a.config.target_modules = spec.target_modules;
    for (const auto& p_name : model.projection_names()) {
      if (!a.config.targets(p_name)) continue;
      const auto p = model.projection(p_name);
      auto lora_a = torch::randn({spec.rank, p->in_features()});
      lora_a = spec.a_scale ? lora_a * *spec.a_scale : lora_a / std::sqrt(static_cast<double>(p->in_features()));
      auto lora_b = torch::randn({p->out_features(), spec.rank}) * spec.b_scale;
      a.modules[p_name] = {lora_a, lora_b};
    }
    if (a.modules.empty()) fail("random library: target_modules match no projection of the model");
    out.push_back(std::move(a));
  }
  return out;
}

std::vector<std::vector<std::int64_t>> random_token_sequences(core::Rng& rng, std::size_t count, std::int64_t mean,
                                                              std::int64_t spread, std::int64_t vocab) {
  if (vocab < 3 || spread < 0) fail("random sequences: vocab ", vocab, " (>= 3) and spread ", spread, " (>= 0)");
  std::vector<std::vector<std::int64_t>> out;
  for (std::size_t i = 0; i < count; ++i) {
    const auto len = std::max<std::int64_t>(
        2, mean - spread + static_cast<std::int64_t>(rng.below(static_cast<std::uint64_t>(2 * spread + 1))));
    std::vector<std::int64_t> ids;
    for (std::int64_t j = 0; j + 1 < len; ++j) {
      ids.push_back(2 + static_cast<std::int64_t>(rng.below(static_cast<std::uint64_t>(vocab - 2))));
    }
    ids.push_back(1);
    out.push_back(std::move(ids));
  }
  return out;
}

}  // namespace lorahub::demo
