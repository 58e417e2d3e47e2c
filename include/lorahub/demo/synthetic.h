#pragma once
// Synthetic worlds made on the spot: a word pool and random sentences, a T5-layout SentencePiece model trained
// with spm_train, random LoRA libraries fitting a model, random token sequences. One place for what the tests'
// toy world, `lorahub-bench` and the demo tooling need when no real model or adapter can be downloaded.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "lorahub/core/random.h"
#include "lorahub/lora/adapter.h"
#include "lorahub/model/t5.h"

namespace lorahub::demo {

/// 36 short English words: animals, colours, fruit, objects (the first 20), then nouns, numbers, directions and
/// opposites.
const std::vector<std::string>& synthetic_words();

/// `count` words drawn with replacement from the first `pool` words of synthetic_words() (0: all), space-separated.
std::string random_sentence(core::Rng& rng, std::size_t count, std::size_t pool = 0);

/// `count` distinct words from the first `pool` words of synthetic_words() (0: all), in random order
/// (a partial Fisher–Yates shuffle); count <= pool.
std::vector<std::string> distinct_words(core::Rng& rng, std::size_t count, std::size_t pool = 0);

/// Trains `<model_prefix>.model` (and `.vocab`) with spm_train (Debian package 'sentencepiece') on `corpus`, one
/// sentence per line: unigram, full character coverage, T5's ids (pad 0, eos 1, unk 2, no bos), at most
/// `vocab_size` pieces (fewer when the corpus is too small). spm_train's output goes to `log`; a failure is a
/// core::Error naming it. Returns the path of the .model file.
std::string train_t5_tokenizer(const std::string& corpus, const std::string& model_prefix, std::int64_t vocab_size,
                               const std::string& log);

/// The architecture of google/flan-t5-{small,base,large} as their config.json gives it (gated-GELU, untied head,
/// 32128 ids), or "tiny" (d_model 64, 2 + 2 blocks) for quick runs; for random models of that shape. Another name
/// is a core::Error.
model::T5Config flan_t5_config(const std::string& size);

/// A library of random PEFT-style modules.
struct RandomLibrarySpec {
  std::int64_t modules = 4;
  std::int64_t rank = 4;
  double lora_alpha = 8;  ///< PEFT's scale is lora_alpha / rank
  std::vector<std::string> target_modules = {"q", "v"};
  std::string name_prefix = "module_";
  int name_digits = 0;  ///< zero-padded module numbers (0: plain)
  /// lora_A ~ N(0, 1) × a_scale; unset: × 1/sqrt(in_features), so x·Aᵀ keeps the activations' scale.
  std::optional<double> a_scale;
  double b_scale = 0.1;  ///< lora_B ~ N(0, 1) × b_scale
  std::uint64_t seed = 1;  ///< torch::manual_seed before the first module
};

/// `spec.modules` adapters for every projection of `model` that spec.target_modules names, drawn in module order and,
/// within a module, in the model's projection order with lora_A before lora_B (deterministic in spec.seed).
std::vector<lora::LoraAdapter> random_adapters(const model::T5ModelImpl& model, const RandomLibrarySpec& spec);

/// Token ids of `count` sequences: lengths uniform in [mean − spread, mean + spread] (at least 2), ids uniform in
/// [2, vocab) and EOS (1) last.
std::vector<std::vector<std::int64_t>> random_token_sequences(core::Rng& rng, std::size_t count, std::int64_t mean,
                                                              std::int64_t spread, std::int64_t vocab);

}  // namespace lorahub::demo
