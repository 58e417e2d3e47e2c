// train-lora: LoRA fine-tuning that writes a PEFT adapter folder (and the paper's lora-ft baseline).
#include <filesystem>
#include <iostream>

#include <torch/torch.h>

#include "commands.h"
#include "lorahub/core/error.h"
#include "lorahub/core/hf_cache.h"
#include "lorahub/worker/backend.h"
#include "lorahub/core/log.h"
#include "lorahub/data/example.h"
#include "lorahub/data/prompt.h"
#include "lorahub/train/lora_training.h"
#include "lorahub/lora/adapter.h"
#include "lorahub/model/t5.h"
#include "lorahub/text/t5_tokenizer.h"

namespace lorahub::app {
namespace fs = std::filesystem;

void add_train_commands(CLI::App& app, Globals& globals) {
  auto* cmd = app.add_subcommand("train-lora", "Fine-tune a LoRA on examples (base frozen); writes a PEFT adapter folder");
  struct Args {
    std::string model, tokenizer, train, out, targets = "q,v", description, dtype = "f32";
    train::TrainOptions options;
    std::int64_t log_every = 50;
    std::int64_t init_seed = -1;
    std::string autocast = "off";
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("--model", a->model, "HF model folder, or a hub id from the local Hugging Face cache")->required();
  cmd->add_option("--tokenizer", a->tokenizer, "spiece.model (default: <model>/spiece.model)");
  cmd->add_option("--train", a->train, "Training examples: JSONL {input,target}/{context,completion} or BBH JSON")->required();
  cmd->add_option("--description", a->description, "Wrap inputs in the zero-shot prompt with this task description");
  cmd->add_option("--out", a->out, "Adapter folder to write")->required();
  cmd->add_option("--r", a->options.lora.r, "LoRA rank")->check(CLI::PositiveNumber);
  cmd->add_option("--alpha", a->options.lora.alpha, "lora_alpha (scaling = alpha / r)");
  cmd->add_option("--targets", a->targets, "Target modules, e.g. q,v");
  cmd->add_option("--lr", a->options.lora.lr, "AdamW learning rate");
  cmd->add_option("--epochs", a->options.lora.epochs, "Passes over the examples")->check(CLI::PositiveNumber);
  cmd->add_option("--max-steps", a->options.max_steps, "Stop after this many steps (overrides --epochs)");
  cmd->add_option("--batch-size", a->options.lora.batch_size, "Examples per step")->check(CLI::PositiveNumber);
  cmd->add_option("--dropout", a->options.lora.dropout, "LoRA dropout");
  cmd->add_option("--weight-decay", a->options.lora.weight_decay, "AdamW weight decay");
  cmd->add_option("--max-grad-norm", a->options.lora.max_grad_norm, "Gradient clipping (0: off)");
  cmd->add_option("--warmup-ratio", a->options.warmup_ratio, "Linear warm-up share of the steps");
  cmd->add_option("--seed", a->options.seed, "Seed of initialisation, dropout and example order");
  cmd->add_option("--init-seed", a->init_seed, "Seed of A's initialisation alone (-1: --seed)");
  cmd->add_option("--autocast", a->autocast, "bf16: CPU bfloat16 autocast for the forward; off: float32")
      ->check(CLI::IsMember({"bf16", "off"}));
  cmd->add_option("--log-every", a->log_every, "Print the loss every N steps");
  cmd->callback([a, &globals] {
    worker::setup_threads(globals.threads);
    a->options.lora.targets = split_list(a->targets);
    if (a->init_seed >= 0) a->options.init_seed = static_cast<std::uint64_t>(a->init_seed);
    a->options.autocast_bf16 = a->autocast == "bf16";
    model::RuntimeOptions rt;
    rt.dtype = model::parse_compute_dtype(a->dtype);
    const auto model_dir = core::resolve_source(a->model, "--model").path;
    auto model = model::load_t5(model_dir, rt);
    auto tok = text::T5Tokenizer::load(a->tokenizer.empty() ? (fs::path(model_dir) / "spiece.model").string() : a->tokenizer);
    auto examples = data::load_examples(a->train);
    if (!a->description.empty()) examples = data::make_prompts(data::PromptMode::kZeroShot, a->description, {}, examples);
    core::log_info(core::cat("train-lora: ", examples.size(), " examples, r ", a->options.lora.r, ", alpha ",
                             a->options.lora.alpha, ", lr ", a->options.lora.lr));
    double last = 0;
    auto adapter = train::train_lora(*model, tok, examples, a->options, [&](std::int64_t step, double loss) {
      last = loss;
      if (a->log_every > 0 && step % a->log_every == 0) core::log_info(core::cat("step ", step, " loss ", loss));
    });
    adapter.name = fs::path(a->out).filename().string();
    adapter.config.base_model_name_or_path = a->model;
    lora::save_adapter(adapter, a->out);
    std::cout << "wrote " << a->out << " (" << adapter.modules.size() << " target modules, final loss " << last << ")\n";
  });
}

}  // namespace lorahub::app
