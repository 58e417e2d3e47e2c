#include "lorahub/demo/world.h"

#include <algorithm>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "lorahub/core/error.h"
#include "lorahub/core/random.h"
#include "lorahub/demo/tasks.h"
#include "lorahub/model/checkpoint.h"

namespace lorahub::demo {
namespace fs = std::filesystem;
using core::fail;

namespace {

// Each kind of file draws from its own seed, so (for instance) a module's training set does not start with the
// examples the base model was pretrained on.
std::uint64_t purpose_seed(std::uint64_t seed, const char* purpose) {
  return core::Rng::derive(seed, stream_id(purpose)).next_u64();
}

std::ofstream open_for_writing(const std::string& path) {
  auto parent = fs::path(path).parent_path();
  if (!parent.empty()) fs::create_directories(parent);
  std::ofstream out(path, std::ios::binary);
  if (!out) fail(path, ": cannot open for writing");
  return out;
}

void close_checked(std::ofstream& out, const std::string& path) {
  out.close();
  if (!out) fail(path, ": write failed");
}

// A prompted example and its answer on one line: the normaliser turns newlines into spaces anyway, and one
// sentence per line is what spm_train expects.
std::string corpus_line(const data::Example& x) {
  std::string line = x.input + " " + x.target;
  std::replace(line.begin(), line.end(), '\n', ' ');
  return line;
}

}  // namespace

model::T5Config base_model_config(std::int64_t vocab_size) {
  model::T5Config c;
  c.vocab_size = vocab_size;
  c.d_model = 128;
  c.d_kv = 32;
  c.d_ff = 512;
  c.num_layers = 3;
  c.num_decoder_layers = 3;
  c.num_heads = 4;
  c.relative_attention_num_buckets = 32;
  c.relative_attention_max_distance = 64;
  c.dropout_rate = 0.0;
  c.layer_norm_epsilon = 1e-6;
  c.feed_forward_proj = "relu";
  c.dense_act_fn = "relu";
  c.is_gated_act = false;
  c.tie_word_embeddings = true;
  c.pad_token_id = 0;
  c.eos_token_id = 1;
  c.decoder_start_token_id = 0;
  return c;
}

std::vector<std::string> tokenizer_corpus(std::uint64_t seed, const WorldSizes& sizes) {
  std::vector<std::string> lines;
  const auto s = purpose_seed(seed, "corpus");
  for (const auto& spec : task_family()) {
    auto wording = spec.role == TaskRole::kUpstream ? Wording::kAllTemplates : Wording::kCanonical;
    for (const auto& x : prompted_examples(spec.name, sizes.corpus_per_task, s, wording)) {
      lines.push_back(corpus_line(x));
    }
    if (spec.role == TaskRole::kUpstream) {
      for (const auto& instr : spec.instructions) {
        for (std::size_t i = 0; i < sizes.corpus_per_template; ++i) lines.push_back(instr);
      }
      for (const auto& x : prompted_examples(spec.name, sizes.corpus_per_template, s, Wording::kTaskCode)) {
        lines.push_back(corpus_line(x));
      }
    }
  }
  auto rng = core::Rng::derive(s, stream_id("word lists"));
  const auto& vocab = items();
  for (std::size_t i = 0; i < sizes.corpus_word_lists; ++i) {
    const auto n = 1 + rng.below(9);
    std::string line;
    for (std::uint64_t k = 0; k < n; ++k) line += (k ? " " : "") + vocab[rng.below(vocab.size())].word;
    lines.push_back(line);
  }
  return lines;
}

void write_jsonl(const std::string& path, const std::vector<data::Example>& examples) {
  auto out = open_for_writing(path);
  for (const auto& x : examples) out << nlohmann::json{{"input", x.input}, {"target", x.target}}.dump() << "\n";
  close_checked(out, path);
}

void write_lines(const std::string& path, const std::vector<std::string>& lines) {
  auto out = open_for_writing(path);
  for (const auto& l : lines) out << l << "\n";
  close_checked(out, path);
}

void write_bbh_task(const std::string& dir, const std::string& task, const std::string& instruction,
                    const std::vector<data::Example>& examples, const std::string& header) {
  if (instruction.empty() || instruction.find('\n') != std::string::npos) {
    fail("demo task '", task, "': the instruction must be one non-empty line");
  }
  if (header.find('\n') != std::string::npos) fail("demo task '", task, "': the header must be one line");
  const auto json_path = (fs::path(dir) / (task + ".json")).string();
  auto out = open_for_writing(json_path);
  // One example per line: compact, and a regenerated world diffs line by line.
  out << "{\"examples\": [\n";
  for (std::size_t i = 0; i < examples.size(); ++i) {
    out << nlohmann::json{{"input", examples[i].input}, {"target", examples[i].target}}.dump()
        << (i + 1 < examples.size() ? ",\n" : "\n");
  }
  out << "]}\n";
  close_checked(out, json_path);
  const auto txt_path = (fs::path(dir) / (task + ".txt")).string();
  auto txt = open_for_writing(txt_path);
  txt << header << "\n-----\n" << instruction << "\n";
  close_checked(txt, txt_path);
}

std::vector<std::string> write_task_folders(const std::string& held_out_dir, const std::string& upstream_dir,
                                            std::uint64_t seed, const WorldSizes& sizes, Wording base_wording) {
  if (base_wording == Wording::kAllTemplates) fail("demo world: the base model is pretrained on one wording per task");
  std::vector<std::string> written;
  const auto s_held = purpose_seed(seed, "held-out tasks");
  const auto s_up = purpose_seed(seed, "upstream evaluation");
  for (const auto& spec : task_family()) {
    const bool held = spec.role == TaskRole::kHeldOut;
    const auto examples = held ? generate_examples(spec.name, sizes.held_out_examples, s_held, /*unique=*/true)
                               : generate_examples(spec.name, sizes.upstream_eval_examples, s_up, /*unique=*/false);
    const std::string header =
        core::cat("lorahub-hpc demo world, ", held ? "held-out" : "upstream", " task '", spec.name, "': ", spec.skill,
                  ". Generated by `lorahub demo-world` (seed ", seed, "); the first 100 examples are the few-shot pool.");
    const auto instruction = held || base_wording == Wording::kCanonical ? spec.instructions.front() : task_code(spec.name);
    write_bbh_task(held ? held_out_dir : upstream_dir, spec.name, instruction, examples, header);
    written.push_back(spec.name);
  }
  return written;
}

std::vector<std::string> write_training_sets(const std::string& dir, std::uint64_t seed, const WorldSizes& sizes,
                                             Wording base_wording) {
  if (base_wording == Wording::kAllTemplates) fail("demo world: the base model is pretrained on one wording per task");
  std::vector<std::string> files;
  const auto upstream = task_names(TaskRole::kUpstream);
  auto pre = (fs::path(dir) / "pretrain.jsonl").string();
  write_jsonl(pre, mixture_examples(upstream, sizes.pretrain_examples, purpose_seed(seed, "pretrain"), base_wording));
  files.push_back(pre);
  for (const auto& t : upstream) {
    auto path = (fs::path(dir) / "modules" / (t + ".jsonl")).string();
    write_jsonl(path, prompted_examples(t, sizes.module_examples, purpose_seed(seed, "modules"), Wording::kAllTemplates));
    files.push_back(path);
  }
  return files;
}

std::size_t convert_to_bf16(const std::string& path) {
  auto tensors = model::load_tensor_file(path);
  std::size_t converted = 0;
  for (auto& [name, t] : tensors) {
    // Clone: the loaded tensors are views of the file that is about to be replaced.
    if (t.is_floating_point() && t.scalar_type() != torch::kBFloat16) {
      t = t.to(torch::kBFloat16).contiguous().clone();
      ++converted;
    } else {
      t = t.contiguous().clone();
    }
  }
  model::save_safetensors(path, tensors, {{"format", "pt"}});
  return converted;
}

}  // namespace lorahub::demo
