#pragma once
// The files of the demo world that are made from the task family: the tokenizer corpus, the base model's
// architecture, the training sets of the base model and of every module, and BBH-layout task folders.
// Training itself is done by `lorahub pretrain` / `lorahub train-lora`; tools/make-demo-world.sh runs it all.
#include <cstdint>
#include <string>
#include <vector>

#include "lorahub/data/example.h"
#include "lorahub/demo/tasks.h"
#include "lorahub/model/t5_config.h"

namespace lorahub::demo {

/// The seed the shipped world was generated with (tools/make-demo-world.sh passes it explicitly too).
inline constexpr std::uint64_t kWorldSeed = 2024;

/// The demo base model: T5 v1.0 style (relu, tied embeddings, no dropout), d_model 128, d_kv 32, 4 heads,
/// d_ff 512, 3 + 3 blocks, 32 relative-position buckets up to distance 64; `vocab_size` ids (pieces + extra ids).
model::T5Config base_model_config(std::int64_t vocab_size);

/// What `write_training_sets` writes and how much.
struct WorldSizes {
  std::size_t pretrain_examples = 192000;  ///< canonical-wording mixture of the upstream tasks (3000 × 64)
  std::size_t module_examples = 19200;     ///< per module, all wordings (300 × 64)
  std::size_t held_out_examples = 200;     ///< per held-out BBH task: 100 pool + 100 test
  std::size_t upstream_eval_examples = 150;  ///< per upstream BBH task (canonical wording): 100 pool + 50 test
  std::size_t corpus_per_task = 300;       ///< tokenizer corpus: prompted examples with answers per task
  std::size_t corpus_per_template = 60;    ///< tokenizer corpus: lines per upstream wording
  std::size_t corpus_word_lists = 2000;    ///< tokenizer corpus: extra random word lists
};

/// Lines of the sentencepiece training corpus (one sentence per line, no empty lines): prompted examples with
/// their answers for every task (upstream and held out, so every instruction's characters are covered), each
/// upstream wording and task code on its own, and random word lists. Deterministic in (seed, sizes).
std::vector<std::string> tokenizer_corpus(std::uint64_t seed, const WorldSizes& sizes = {});

/// Writes `examples` as JSON Lines {"input","target"} (the format load_examples reads). core::Error naming the
/// file when it cannot be written.
void write_jsonl(const std::string& path, const std::vector<data::Example>& examples);

/// Writes `lines`, each followed by "\n". core::Error naming the file when it cannot be written.
void write_lines(const std::string& path, const std::vector<std::string>& lines);

/// Writes task `task` in the BBH layout data::load_bbh_task reads: <dir>/<task>.json {"examples":[...]} with
/// bare inputs, and <dir>/<task>.txt whose line 1 is `header`, line 2 "-----", line 3 `instruction`.
void write_bbh_task(const std::string& dir, const std::string& task, const std::string& instruction,
                    const std::vector<data::Example>& examples, const std::string& header);

/// Writes every held-out task into `held_out_dir` (distinct inputs, its one instruction) and every upstream
/// task into `upstream_dir` (with the instruction the base model was pretrained on: its task code, or its
/// canonical wording) in the BBH layout. Returns the names written.
std::vector<std::string> write_task_folders(const std::string& held_out_dir, const std::string& upstream_dir,
                                            std::uint64_t seed, const WorldSizes& sizes = {},
                                            Wording base_wording = Wording::kTaskCode);

/// Writes the training sets into `dir`: pretrain.jsonl (the upstream mixture with `base_wording`) and
/// modules/<task>.jsonl per upstream task (all its English wordings), prompts already formatted. Returns the
/// files written.
std::vector<std::string> write_training_sets(const std::string& dir, std::uint64_t seed, const WorldSizes& sizes = {},
                                             Wording base_wording = Wording::kTaskCode);

/// Rewrites the safetensors file `path` with every floating-point tensor stored as bfloat16 (names, shapes and
/// metadata kept): how the demo world ships its weights, at half the size. Loaders convert back to float32.
/// Returns the number of tensors converted. core::Error naming the file when it cannot be read or written.
std::size_t convert_to_bf16(const std::string& path);

}  // namespace lorahub::demo
