#pragma once
// A tiny, fully self-made world for end-to-end tests: a SentencePiece model trained here with spm_train,
// a random T5 whose vocabulary fits it, random LoRA modules and JSONL tasks.
#include <torch/torch.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "lorahub/core/random.h"
#include "lorahub/demo/synthetic.h"
#include "lorahub/lora/adapter.h"
#include "lorahub/model/t5.h"
#include "lorahub/text/t5_tokenizer.h"

namespace toy {
namespace fs = std::filesystem;

/// The toy world's words: the first 20 of the synthetic pool.
inline constexpr std::size_t kWords = 20;

inline std::string join(const std::vector<std::string>& w) {
  std::string s;
  for (const auto& x : w) s += (s.empty() ? "" : " ") + x;
  return s;
}

/// Writes `n` "last word" examples as JSON Lines.
inline void write_task(const fs::path& path, std::size_t n, std::uint64_t seed) {
  lorahub::core::Rng rng(seed);
  std::ofstream out(path);
  for (std::size_t i = 0; i < n; ++i) {
    auto w = lorahub::demo::distinct_words(rng, 3 + rng.below(3), kWords);
    out << "{\"input\": \"Which word is last? " << join(w) << "\", \"target\": \"" << w.back() << "\"}\n";
  }
}

struct World {
  fs::path root;
  fs::path model_dir, library_dir, train, test;
  std::vector<std::string> module_names;
};

/// Builds the world under `root` (replaced; removed by the caller). `modules` random rank-4 q/v adapters.
inline World make_world_at(const fs::path& root, int modules = 4) {
  World w;
  w.root = root;
  fs::remove_all(w.root);
  fs::create_directories(w.root);
  {
    lorahub::core::Rng rng(7);
    std::ofstream corpus(w.root / "corpus.txt");
    for (int i = 0; i < 2000; ++i) {
      corpus << "Which word is last? " << join(lorahub::demo::distinct_words(rng, 3 + rng.below(4), kWords)) << " A:\n";
    }
  }
  w.model_dir = w.root / "model";
  const auto spiece = lorahub::demo::train_t5_tokenizer((w.root / "corpus.txt").string(),
                                                        (w.model_dir / "spiece").string(), 100,
                                                        (w.root / "spm_train.log").string());
  auto tok = lorahub::text::T5Tokenizer::load(spiece);
  lorahub::model::T5Config cfg;
  cfg.vocab_size = tok.vocab_size();
  cfg.d_model = 32;
  cfg.d_kv = 8;
  cfg.num_heads = 4;
  cfg.d_ff = 64;
  cfg.num_layers = 2;
  cfg.num_decoder_layers = 2;
  cfg.relative_attention_num_buckets = 8;
  cfg.relative_attention_max_distance = 20;
  cfg.dropout_rate = 0.0;
  auto model = lorahub::model::random_t5(cfg, 11);
  lorahub::model::save_t5(model, w.model_dir.string());
  w.library_dir = w.root / "library";
  lorahub::demo::RandomLibrarySpec spec;
  spec.modules = modules;
  spec.rank = 4;
  spec.lora_alpha = 8;
  spec.a_scale = 0.3;
  spec.b_scale = 0.3;
  spec.seed = 5;
  for (const auto& a : lorahub::demo::random_adapters(*model, spec)) {
    lorahub::lora::save_adapter(a, (w.library_dir / a.name).string());
    w.module_names.push_back(a.name);
  }
  w.train = w.root / "train.jsonl";
  w.test = w.root / "test.jsonl";
  write_task(w.train, 20, 1);
  write_task(w.test, 12, 2);
  return w;
}

/// make_world_at in a fresh temp folder named after `tag` and this process.
inline World make_world(const std::string& tag, int modules = 4) {
  return make_world_at(fs::temp_directory_path() / ("lorahub_toy_" + tag + "_" + std::to_string(::getpid())), modules);
}

}  // namespace toy
