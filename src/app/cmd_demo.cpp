// pretrain, demo-world: the commands that make the self-made demo world (tools/make-demo-world.sh runs them).
#include <filesystem>
#include <iomanip>
#include <iostream>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "commands.h"
#include "lorahub/core/error.h"
#include "lorahub/worker/backend.h"
#include "lorahub/core/log.h"
#include "lorahub/data/example.h"
#include "lorahub/demo/tasks.h"
#include "lorahub/demo/world.h"
#include "lorahub/demo/pretrain.h"
#include "lorahub/model/t5.h"
#include "lorahub/text/t5_tokenizer.h"

namespace lorahub::app {
namespace fs = std::filesystem;
using core::fail;

namespace {

void add_pretrain(CLI::App& app, Globals& globals) {
  auto* cmd = app.add_subcommand(
      "pretrain", "Train a whole T5 from random initialisation on input/target examples; writes an HF model folder");
  struct Args {
    std::string config, tokenizer, train, out, autocast = "off";
    std::int64_t vocab_size = -1;
    std::uint64_t init_seed = 0;
    demo::PretrainOptions options;
    std::int64_t log_every = 100;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("--config", a->config, "HF config.json of the architecture (`demo-world files` writes the demo's)")
      ->required();
  cmd->add_option("--tokenizer", a->tokenizer, "spiece.model; copied into --out")->required();
  cmd->add_option("--train", a->train, "Examples: JSONL {input,target} or BBH JSON, prompts formatted")->required();
  cmd->add_option("--out", a->out, "Model folder to write (config.json, model.safetensors, spiece.model)")->required();
  cmd->add_option("--vocab-size", a->vocab_size, "vocab_size of the model (-1: the tokenizer's pieces + extra ids)");
  cmd->add_option("--steps", a->options.steps, "Optimizer steps")->check(CLI::PositiveNumber);
  cmd->add_option("--batch-size", a->options.batch_size, "Examples per step")->check(CLI::PositiveNumber);
  cmd->add_option("--lr", a->options.lr, "AdamW peak learning rate");
  cmd->add_option("--bias-lr-factor", a->options.relative_bias_lr_factor,
                  "Learning-rate multiplier of the relative_attention_bias tables");
  cmd->add_option("--warmup-ratio", a->options.warmup_ratio, "Linear warm-up share of the steps (then linear decay)");
  cmd->add_option("--weight-decay", a->options.weight_decay, "AdamW weight decay");
  cmd->add_option("--max-grad-norm", a->options.max_grad_norm, "Gradient clipping (0: off)");
  cmd->add_option("--seed", a->options.seed, "Seed of the example order");
  cmd->add_option("--init-seed", a->init_seed, "Seed of the weight initialisation (HF's T5 init)");
  cmd->add_option("--autocast", a->autocast, "bf16: CPU bfloat16 autocast for the forward; off: float32")
      ->check(CLI::IsMember({"bf16", "off"}));
  cmd->add_option("--log-every", a->log_every, "Print the loss every N steps (0: never)");
  cmd->callback([a, &globals] {
    const int threads = worker::setup_threads(globals.threads);
    auto tok = text::T5Tokenizer::load(a->tokenizer);
    auto config = model::T5Config::from_file(a->config);
    config.vocab_size = a->vocab_size > 0 ? a->vocab_size : tok.vocab_size();
    if (config.vocab_size < tok.vocab_size()) {
      fail("pretrain: --vocab-size ", config.vocab_size, " is below the tokenizer's ", tok.vocab_size(), " ids");
    }
    auto examples = data::load_examples(a->train);
    a->options.autocast_bf16 = a->autocast == "bf16";
    auto model = model::random_t5(config, a->init_seed);
    core::log_info(core::cat("pretrain: ", config.num_parameters(), " parameters, ", examples.size(), " examples, ",
                             a->options.steps, " steps of ", a->options.batch_size, ", lr ", a->options.lr, " (bias x",
                             a->options.relative_bias_lr_factor, "), autocast ", a->autocast, ", ", threads,
                             " thread(s)"));
    core::Progress progress("pretrain", static_cast<std::size_t>(a->options.steps), "step", 10.0);
    double window = 0;
    std::int64_t in_window = 0;
    auto stats = demo::pretrain(*model, tok, examples, a->options, [&](std::int64_t step, double loss, double lr) {
      window += loss;
      ++in_window;
      if (a->log_every > 0 && (step % a->log_every == 0 || step == a->options.steps)) {
        core::log_info(core::cat("step ", step, " loss ", std::setprecision(4), window / static_cast<double>(in_window),
                                 " lr ", lr));
        window = 0;
        in_window = 0;
      }
      progress.update(static_cast<std::size_t>(step));
    });
    progress.finish();
    model::save_t5(model, a->out);
    const auto spiece = fs::path(a->out) / "spiece.model";
    if (!fs::exists(spiece) || !fs::equivalent(spiece, a->tokenizer)) {
      fs::copy_file(a->tokenizer, spiece, fs::copy_options::overwrite_existing);
    }
    std::cout << "wrote " << a->out << " (" << config.num_parameters() << " parameters, loss " << std::setprecision(4)
              << stats.first_loss << " -> " << stats.last_loss << ", " << std::fixed << std::setprecision(1)
              << stats.seconds << " s)\n";
  });
}

void add_demo_world(CLI::App& app) {
  auto* cmd = app.add_subcommand("demo-world", "The self-made demo world: its tasks and training files");
  cmd->require_subcommand(1);
  {
    auto* sub = cmd->add_subcommand("list", "Print the task family: role, name, skill and instructions");
    sub->callback([] {
      for (const auto& t : demo::task_family()) {
        std::cout << (t.role == demo::TaskRole::kUpstream ? "upstream " : "held-out ") << t.name << ": " << t.skill;
        if (!t.relation.empty()) std::cout << " [" << t.relation << "]";
        if (t.role == demo::TaskRole::kUpstream) std::cout << " [base model: \"" << demo::task_code(t.name) << "\"]";
        std::cout << "\n";
        for (const auto& i : t.instructions) std::cout << "    " << i << "\n";
      }
    });
  }
  {
    auto* sub = cmd->add_subcommand("to-bf16", "Store the floating-point tensors of safetensors files as bfloat16, in place");
    auto files = std::make_shared<std::vector<std::string>>();
    sub->add_option("files", *files, "safetensors files (model.safetensors, adapter_model.safetensors)")->required();
    sub->callback([files] {
      for (const auto& f : *files) {
        auto n = demo::convert_to_bf16(f);
        core::log_info(core::cat(f, ": ", n, " tensors stored as bf16"));
      }
    });
  }
  {
    auto* sub = cmd->add_subcommand("files", "Write the generated files of the world (everything but trained weights)");
    struct Args {
      std::string work, tasks, upstream, base_wording = "code";
      std::uint64_t seed = demo::kWorldSeed;
      demo::WorldSizes sizes;
    };
    auto a = std::make_shared<Args>();
    sub->add_option("--work", a->work,
                    "Folder for the intermediate files: corpus.txt, config.json, pretrain.jsonl, modules/*.jsonl")
        ->required();
    sub->add_option("--tasks", a->tasks, "Folder for the held-out tasks (BBH layout)")->required();
    sub->add_option("--upstream", a->upstream, "Folder for the upstream tasks with canonical wording (BBH layout)")
        ->required();
    sub->add_option("--seed", a->seed, "World seed");
    sub->add_option("--base-wording", a->base_wording,
                    "Instruction of the base model's pretraining: code (\"Task k.\", the shipped world) or english "
                    "(each task's canonical wording)")
        ->check(CLI::IsMember({"code", "english"}));
    sub->add_option("--pretrain-examples", a->sizes.pretrain_examples, "Examples of the pretraining mixture");
    sub->add_option("--module-examples", a->sizes.module_examples, "Training examples per module");
    sub->callback([a] {
      const auto corpus = (fs::path(a->work) / "corpus.txt").string();
      demo::write_lines(corpus, demo::tokenizer_corpus(a->seed, a->sizes));
      const auto config = (fs::path(a->work) / "config.json").string();
      {
        // vocab_size is a placeholder: `lorahub pretrain` takes the tokenizer's.
        std::vector<std::string> line = {demo::base_model_config(356).to_json().dump(2)};
        demo::write_lines(config, line);
      }
      const auto wording = a->base_wording == "code" ? demo::Wording::kTaskCode : demo::Wording::kCanonical;
      auto files = demo::write_training_sets(a->work, a->seed, a->sizes, wording);
      auto tasks = demo::write_task_folders(a->tasks, a->upstream, a->seed, a->sizes, wording);
      std::cout << "wrote " << corpus << ", " << config << ", " << files.size() << " training sets in " << a->work
                << ", " << tasks.size() << " tasks in " << a->tasks << " and " << a->upstream << "\n";
    });
  }
}

}  // namespace

void add_demo_commands(CLI::App& app, Globals& globals) {
  add_pretrain(app, globals);
  add_demo_world(app);
}

}  // namespace lorahub::app
