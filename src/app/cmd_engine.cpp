// generate, score, forward, inspect: the engine on its own.
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <sstream>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "commands.h"
#include "lorahub/core/error.h"
#include "lorahub/core/hf_cache.h"
#include "lorahub/worker/backend.h"
#include "lorahub/core/log.h"
#include "lorahub/data/example.h"
#include "lorahub/worker/answers.h"
#include "lorahub/io/merge.h"
#include "lorahub/io/result_store.h"
#include "lorahub/lora/adapter.h"
#include "lorahub/lora/library.h"
#include "lorahub/model/checkpoint.h"
#include "lorahub/model/t5.h"
#include "lorahub/text/t5_tokenizer.h"

namespace lorahub::app {
namespace fs = std::filesystem;
using core::fail;

namespace {

struct EngineArgs {
  std::string model;
  std::string tokenizer;
  std::string dtype = "f32";
  std::string device = "cpu";
  std::vector<std::string> adapters;
  std::string weights;
  bool merged = false;
  bool skip_finite_check = false;

  void add(CLI::App* cmd, bool with_adapters) {
    cmd->add_option("--model", model,
                    "HF model folder (config.json + model.safetensors / pytorch_model.bin), or a hub id "
                    "org/name[@revision] from the local Hugging Face cache")
        ->required();
    cmd->add_option("--dtype", dtype, "Compute dtype: f32 (exact) or bf16")->check(CLI::IsMember({"f32", "bf16"}));
    cmd->add_option("--device", device, "cpu or cuda[:N]");
    cmd->add_flag("--skip-finite-check", skip_finite_check, "Do not check the weights for NaN/Inf at load");
    if (with_adapters) {
      cmd->add_option("--adapter", adapters,
                      "PEFT LoRA adapter folder or hub id (repeatable: composed LoraHub-style)");
      cmd->add_option("--weights", weights, "Composition coefficients w1,w2,... (default: 1 for each adapter)");
      cmd->add_flag("--merged", merged, "Merge the composition into the weights instead of the unmerged path");
    }
  }
  std::string model_dir() const { return core::resolve_source(model, "--model").path; }
  model::T5Model load_model() const {
    model::RuntimeOptions rt;
    rt.device = torch::Device(device);
    rt.dtype = model::parse_compute_dtype(dtype);
    rt.check_finite = !skip_finite_check;
    return model::load_t5(model_dir(), rt);
  }
  text::T5Tokenizer load_tokenizer() const {
    return text::T5Tokenizer::load(tokenizer.empty() ? (fs::path(model_dir()) / "spiece.model").string() : tokenizer);
  }
  // Keeps the library alive while its composition is applied.
  std::optional<lora::LoraLibrary> apply(model::T5ModelImpl& m) const {
    if (adapters.empty()) {
      if (!weights.empty()) fail("--weights given without --adapter");
      return std::nullopt;
    }
    std::vector<lora::LoraAdapter> loaded;
    for (const auto& a : adapters) {
      auto r = core::resolve_source(a, "--adapter");
      loaded.push_back(lora::load_adapter(r.path, &m));
      // A hub id names the module by its repository, as in a library.
      if (r.hub) loaded.back().name = r.hub->repo_id.substr(r.hub->repo_id.find('/') + 1);
    }
    auto lib = lora::LoraLibrary::from_adapters(std::move(loaded), "--adapter");
    auto w = weights.empty() ? std::vector<double>(adapters.size(), 1.0) : parse_doubles(weights, "--weights");
    if (w.size() != adapters.size()) fail("--weights has ", w.size(), " values for ", adapters.size(), " adapters");
    auto stack = lib.stack().to(m.runtime().device, torch::kFloat32);
    if (merged) {
      lora::merge(m, lora::compose(stack, w));
    } else {
      lora::apply_unmerged(m, stack, {w}, 0);
    }
    return lib;
  }
};

std::vector<std::string> read_inputs(const std::string& path) {
  auto ext = fs::path(path).extension().string();
  if (ext == ".jsonl" || ext == ".json") {
    std::vector<std::string> out;
    for (const auto& ex : data::load_examples(path)) out.push_back(ex.input);
    return out;
  }
  std::ifstream in(path);
  if (!in) fail(path, ": cannot read input file");
  std::vector<std::string> out;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty()) out.push_back(line);
  }
  if (out.empty()) fail(path, ": no inputs (one prompt per line, or JSONL with \"input\")");
  return out;
}

torch::Tensor int64_tensor(const model::StateDict& d, const std::string& name, const std::string& file, bool required) {
  auto it = d.find(name);
  if (it == d.end()) {
    if (required) fail(file, ": tensor '", name, "' is missing");
    return {};
  }
  if (it->second.dim() != 2) fail(file, ": tensor '", name, "' must be 2-D [batch, length], got ", it->second.sizes());
  if (it->second.scalar_type() != torch::kLong && it->second.scalar_type() != torch::kInt) {
    fail(file, ": tensor '", name, "' must be I64 or I32, got ", it->second.scalar_type());
  }
  return it->second.to(torch::kLong).contiguous();
}

void inspect_path(const std::string& text) {
  // A hub id shows what it resolves to in the local cache, then what is there.
  const auto source = core::resolve_source(text, "inspect");
  if (source.hub) std::cout << core::describe_source(source) << "\n";
  const std::string& path = source.path;
  fs::path p(path);
  if (fs::is_directory(p) && fs::exists(p / "config.json")) {
    auto cfg = model::T5Config::from_file(path);
    std::cout << "T5 model " << path << "\n"
              << "  d_model " << cfg.d_model << ", d_kv " << cfg.d_kv << ", heads " << cfg.num_heads << ", d_ff "
              << cfg.d_ff << ", layers " << cfg.num_layers << "+" << cfg.num_decoder_layers << ", vocab "
              << cfg.vocab_size << "\n"
              << "  feed_forward_proj " << cfg.feed_forward_proj << " (" << (cfg.is_gated_act ? "gated " : "")
              << cfg.dense_act_fn << "), tie_word_embeddings " << (cfg.tie_word_embeddings ? "true" : "false") << "\n"
              << "  relative attention " << cfg.relative_attention_num_buckets << " buckets, max distance "
              << cfg.relative_attention_max_distance << "\n"
              << "  parameters " << cfg.num_parameters() << "\n";
    auto weights = model::load_checkpoint(path);
    std::int64_t bytes = 0;
    for (const auto& [k, t] : weights) bytes += t.numel() * static_cast<std::int64_t>(t.element_size());
    std::cout << "  checkpoint: " << weights.size() << " tensors, " << std::fixed << std::setprecision(1)
              << static_cast<double>(bytes) / (1 << 20) << " MiB\n";
    std::cout << "  tokenizer: " << (fs::exists(p / "spiece.model") ? (p / "spiece.model").string() : "none (spiece.model)")
              << "\n";
    return;
  }
  if (fs::is_directory(p) && fs::exists(p / "adapter_config.json")) {
    auto a = lora::load_adapter(path);
    std::cout << "LoRA adapter " << a.name << " (" << path << ")\n"
              << "  r " << a.config.r << ", lora_alpha " << a.config.lora_alpha << ", scaling " << a.config.scaling()
              << (a.config.use_rslora ? " (rsLoRA)" : "") << ", dropout " << a.config.lora_dropout << "\n"
              << "  base model " << a.config.base_model_name_or_path << "\n"
              << "  " << a.modules.size() << " target modules:\n";
    for (const auto& [name, ab] : a.modules) {
      std::cout << "    " << name << "  A " << ab.first.sizes() << "  B " << ab.second.sizes() << "\n";
    }
    return;
  }
  if (fs::is_directory(p)) {
    fail(path, ": not a model folder (config.json), adapter folder (adapter_config.json) or file");
  }
  auto ext = p.extension().string();
  if (ext == ".h5" || ext == ".hdf5") {
    io::ResultStore store(path, io::ResultStore::Mode::kReadOnly);
    auto attrs = store.job_attrs();
    std::cout << "LoraHub results " << path << " (" << attrs["software_version"] << ")\n";
    auto runs = store.list_runs();
    std::size_t complete = 0;
    for (const auto& k : runs) complete += k.status == "complete";
    std::cout << "  " << runs.size() << " runs, " << complete << " complete\n";
    std::cout << "  " << std::left << std::setw(42) << "run" << std::setw(10) << "status" << std::setw(10) << "accuracy"
              << "best loss\n";
    // Each run is read on its own: a damaged one is shown with HDF5's reason and the others still are.
    std::size_t damaged = 0;
    for (const auto& k : runs) {
      std::string problem = k.problem;
      std::ostringstream row;
      if (k.status == "complete" || k.status == "failed") {
        try {
          auto r = store.read_run(k.task, k.method, k.seed);
          if (k.status == "complete") {
            row << std::setw(10) << std::setprecision(3) << r.accuracy;
            if (!std::isnan(r.best_loss)) row << std::setprecision(4) << r.best_loss;
          } else {
            row << r.failure_reason;
          }
        } catch (const core::Error& e) {
          problem = e.what();
        }
      }
      std::cout << "  " << std::setw(42) << k.group.substr(6) << std::setw(10) << (problem.empty() ? k.status : "damaged")
                << (problem.empty() ? row.str() : problem) << "\n";
      damaged += !problem.empty();
    }
    if (damaged) {
      core::log_warn(core::cat(path, ": ", damaged, " damaged run group(s) cannot be read; ", io::kDamagedRunsAdvice));
    }
    return;
  }
  auto dict = model::load_tensor_file(path);
  std::cout << path << ": " << dict.size() << " tensors\n" << model::describe_state_dict(dict);
}

}  // namespace

void add_engine_commands(CLI::App& app, Globals& globals) {
  {
    auto* cmd = app.add_subcommand("generate", "Greedy answers for prompts (batched, with a key/value cache)");
    auto args = std::make_shared<EngineArgs>();
    auto input = std::make_shared<std::string>();
    auto input_file = std::make_shared<std::string>();
    auto max_new = std::make_shared<std::int64_t>(256);
    auto batch = std::make_shared<std::int64_t>(16);
    args->add(cmd, true);
    cmd->add_option("--tokenizer", args->tokenizer, "spiece.model (default: <model>/spiece.model)");
    auto* in = cmd->add_option("--input", *input, "One prompt");
    auto* inf = cmd->add_option("--input-file", *input_file, "Prompts: one per line, or JSONL/BBH JSON with \"input\"");
    in->excludes(inf);
    cmd->add_option("--max-new-tokens", *max_new, "Most tokens to generate per prompt")->check(CLI::PositiveNumber);
    cmd->add_option("--batch-size", *batch, "Prompts per forward")->check(CLI::PositiveNumber);
    cmd->callback([=, &globals] {
      worker::setup_threads(globals.threads);
      if (input->empty() && input_file->empty()) fail("generate: give --input TEXT or --input-file FILE");
      auto prompts = input_file->empty() ? std::vector<std::string>{*input} : read_inputs(*input_file);
      auto model = args->load_model();
      auto tok = args->load_tokenizer();
      lora::ScopedAdapters scope(*model);
      auto lib = args->apply(*model);
      auto answers = worker::generate_answers(*model, tok, prompts, *max_new, *batch);
      for (const auto& a : answers) std::cout << a << "\n";
    });
  }
  {
    auto* cmd = app.add_subcommand("score", "Teacher-forced loss of a target given a source (HF token mean)");
    auto args = std::make_shared<EngineArgs>();
    auto source = std::make_shared<std::string>();
    auto target = std::make_shared<std::string>();
    args->add(cmd, true);
    cmd->add_option("--tokenizer", args->tokenizer, "spiece.model (default: <model>/spiece.model)");
    cmd->add_option("--source", *source, "Input text")->required();
    cmd->add_option("--target", *target, "Target text")->required();
    cmd->callback([=, &globals] {
      worker::setup_threads(globals.threads);
      auto model = args->load_model();
      auto tok = args->load_tokenizer();
      lora::ScopedAdapters scope(*model);
      auto lib = args->apply(*model);
      c10::InferenceMode guard;
      auto dev = model->runtime().device;
      auto src = tok.encode(*source);
      auto tgt = tok.encode(*target);
      auto ids = torch::tensor(src, torch::kLong).unsqueeze(0).to(dev);
      auto labels = torch::tensor(tgt, torch::kLong).unsqueeze(0).to(dev);
      auto dec = model::shift_right(labels, model->config().decoder_start_token_id, model->config().pad_token_id);
      auto out = model->forward(ids, torch::ones_like(ids), dec);
      auto loss = model::seq2seq_loss(out.logits, labels);
      std::cout << std::setprecision(8) << loss.loss.item<double>() << "\n";
      core::log_info(core::cat("loss ", loss.loss.item<double>(), " over ", tgt.size(), " target tokens (sum ",
                               loss.example_loss_sum.item<double>(), ")"));
    });
  }
  {
    auto* cmd = app.add_subcommand(
        "forward",
        "Exact engine check: read input_ids/attention_mask/labels from a safetensors file, write logits, losses,\n"
        "encoder output and greedy ids under the Hugging Face names (see docs/forward.md)");
    auto args = std::make_shared<EngineArgs>();
    auto inputs = std::make_shared<std::string>();
    auto out_path = std::make_shared<std::string>();
    auto max_new = std::make_shared<std::int64_t>(8);
    args->add(cmd, true);
    cmd->add_option("--inputs", *inputs, "safetensors with input_ids, attention_mask, labels (I64)")->required();
    cmd->add_option("--out", *out_path, "safetensors to write")->required();
    cmd->add_option("--max-new-tokens", *max_new, "Greedy tokens for generated_ids (0: skip generation)");
    cmd->callback([=, &globals] {
      worker::setup_threads(globals.threads);
      auto in = model::load_tensor_file(*inputs);
      auto ids = int64_tensor(in, "input_ids", *inputs, true);
      auto mask = int64_tensor(in, "attention_mask", *inputs, false);
      auto labels = int64_tensor(in, "labels", *inputs, true);
      if (!mask.defined()) mask = torch::ones_like(ids);
      if (mask.sizes() != ids.sizes()) fail(*inputs, ": attention_mask ", mask.sizes(), " must match input_ids ", ids.sizes());
      if (labels.size(0) != ids.size(0)) fail(*inputs, ": labels has ", labels.size(0), " rows, input_ids ", ids.size(0));
      auto model = args->load_model();
      const auto& cfg = model->config();
      if (ids.max().item<std::int64_t>() >= cfg.vocab_size || ids.min().item<std::int64_t>() < 0) {
        fail(*inputs, ": input_ids outside [0, ", cfg.vocab_size, ")");
      }
      lora::ScopedAdapters scope(*model);
      auto lib = args->apply(*model);
      auto dev = model->runtime().device;
      model::StateDict out;
      {
        c10::InferenceMode guard;
        auto dec = model::shift_right(labels, cfg.decoder_start_token_id, cfg.pad_token_id);
        auto fwd = model->forward(ids.to(dev), mask.to(dev), dec.to(dev));
        auto loss = model::seq2seq_loss(fwd.logits, labels.to(dev));
        out["encoder_last_hidden_state"] = fwd.encoder_last_hidden_state.to(torch::kCPU, torch::kFloat);
        out["logits"] = fwd.logits.to(torch::kCPU);
        out["loss"] = loss.loss.reshape({1}).to(torch::kCPU);
        out["token_loss"] = loss.token_loss.to(torch::kCPU);
        out["example_loss_sum"] = loss.example_loss_sum.to(torch::kCPU);
        out["example_loss_mean"] = loss.example_loss_mean.to(torch::kCPU);
      }
      if (*max_new > 0) {
        model::GenerateOptions g;
        g.max_new_tokens = *max_new;
        out["generated_ids"] = model::generate_greedy(*model, ids, mask, g).ids;
      }
      model::save_safetensors(*out_path, out);
      core::log_info(core::cat("wrote ", out.size(), " tensors to ", *out_path, " (loss ", out["loss"].item<double>(), ")"));
    });
  }
  {
    auto* cmd = app.add_subcommand("inspect", "Summarise a model folder, adapter folder, tensor file or results.h5");
    auto path = std::make_shared<std::string>();
    cmd->add_option("path", *path, "What to inspect")->required();
    cmd->callback([=] { inspect_path(*path); });
  }
}

}  // namespace lorahub::app
