// bench learn: see docs/benchmarks.md.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <numeric>
#include <sstream>
#include <thread>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "benchmarks.h"
#include "common.h"
#include "lorahub/core/error.h"
#include "lorahub/core/log.h"
#include "lorahub/core/random.h"
#include "lorahub/demo/synthetic.h"
#include "lorahub/distributed/comm.h"
#include "lorahub/job/config.h"
#include "lorahub/lora/adapter.h"
#include "lorahub/lora/library.h"
#include "lorahub/model/batch.h"
#include "lorahub/model/t5.h"
#include "lorahub/opt/optimizer.h"
#include "lorahub/runner/runner.h"
#include "lorahub/text/t5_tokenizer.h"
#include "lorahub/worker/backend.h"
#include "lorahub/worker/fitness.h"

namespace lorahub::bench {
using core::cat;
using core::fail;

namespace {

// ------------------------------------------------------------------------------------------------
// bench learn

struct LearnBenchArgs {
  std::string sizes = "small,base";
  std::string dtypes = "f32,bf16";
  std::string ks = "1,4,16";
  std::int64_t modules = 20;
  std::int64_t rank = 16;
  std::int64_t shots = 5;
  std::int64_t input_tokens = 90;
  std::int64_t input_spread = 15;
  std::int64_t target_tokens = 5;
  std::int64_t target_spread = 3;
  int evals = 5;
  int warmup = 1;
  int budget = 40;
  std::int64_t test = 50;
  std::int64_t gen_tokens = 16;
  std::int64_t eval_batch = 16;
  std::uint64_t seed = 1;
  bool malloc_baseline = true;  // also time evaluate() in a child process with glibc's default malloc settings
  std::string eval_json;        // set in that child: time evaluate() only and write the rows here
};

struct EvalRow {
  std::string size, dtype;
  std::int64_t k;
  double per_forward;
  double utilisation;
};

std::string eval_key(const std::string& size, const std::string& dtype, std::int64_t k) {
  return cat(size, "/", dtype, "/", k);
}

/// The same evaluate() sweep in a child process that keeps glibc's default malloc settings (the baseline of
/// worker::retain_freed_memory), measured in this run. Keyed by eval_key; seconds per evaluate().
std::map<std::string, EvalRow> glibc_malloc_sweep(const LearnBenchArgs& a) {
  const auto dir = fresh_temp_dir("learn-malloc");
  const auto json_path = (dir / "evals.json").string();
  const auto log = (dir / "child.log").string();
  std::vector<std::string> args = {self_exe(), "learn", "--sizes", a.sizes, "--dtypes", a.dtypes, "--k", a.ks,
                                   "--modules", std::to_string(a.modules), "--rank", std::to_string(a.rank),
                                   "--shots", std::to_string(a.shots), "--input-tokens", std::to_string(a.input_tokens),
                                   "--input-spread", std::to_string(a.input_spread), "--target-tokens",
                                   std::to_string(a.target_tokens), "--target-spread", std::to_string(a.target_spread),
                                   "--evals", std::to_string(a.evals), "--warmup", std::to_string(a.warmup), "--seed",
                                   std::to_string(a.seed), "--eval-json", json_path};
  ::setenv("LORAHUB_GLIBC_MALLOC", "1", 1);
  const auto exit = spawn_and_wait(args, log);
  ::unsetenv("LORAHUB_GLIBC_MALLOC");
  if (!exit.ok()) {
    fail("bench learn: the glibc-malloc child failed; its output ends:\n", tail_of(log, 2000));
  }
  std::ifstream in(json_path);
  const auto rows = nlohmann::json::parse(in);
  std::map<std::string, EvalRow> out;
  for (const auto& r : rows) {
    EvalRow e{r.at("size"), r.at("dtype"), r.at("k"), r.at("seconds"), r.at("utilisation")};
    out[eval_key(e.size, e.dtype, e.k)] = e;
  }
  fs::remove_all(dir);
  return out;
}

/// `n` random PEFT-style modules (rank r, alpha 2r, q and v of every attention) fitting `m`.
lora::LoraLibrary random_library(const model::T5ModelImpl& m, std::int64_t n, std::int64_t r, std::uint64_t seed) {
  demo::RandomLibrarySpec spec;
  spec.modules = n;
  spec.rank = r;
  spec.lora_alpha = static_cast<double>(2 * r);
  spec.name_prefix = "random_";
  spec.name_digits = 3;
  spec.b_scale = 0.01;
  spec.seed = seed;
  return lora::LoraLibrary::from_adapters(demo::random_adapters(m, spec), "random library");
}

std::vector<std::vector<double>> random_candidates(core::Rng& rng, std::int64_t k, std::int64_t n) {
  std::vector<std::vector<double>> c(static_cast<std::size_t>(k), std::vector<double>(static_cast<std::size_t>(n)));
  for (auto& w : c) {
    for (auto& x : w) x = -1.5 + 3.0 * rng.uniform();
  }
  return c;
}

struct Profile {
  double compose = 0, encoder = 0, encoder_lora = 0, encoder_skip = 0, decoder = 0, decoder_lora = 0, head = 0,
         evaluate = 0;
};

void run_learn_bench(const LearnBenchArgs& a, int threads_arg) {
  const auto sizes = split_list(a.sizes);
  const auto dtypes = split_list(a.dtypes);
  const auto ks = parse_ints(a.ks, "--k");
  for (const auto& s : sizes) flan_t5_config(s);
  for (const auto& d : dtypes) model::parse_compute_dtype(d);
  if (a.modules < 1 || a.rank < 1 || a.shots < 1 || a.test < 0 || a.gen_tokens < 1 || a.budget < 1) {
    fail("bench learn: --modules, --rank, --shots, --budget and --gen-tokens must be >= 1");
  }
  const int threads = worker::setup_threads(threads_arg > 0 ? threads_arg : 1);
  const bool child = !a.eval_json.empty();
  const auto started = started_line();
  std::map<std::string, EvalRow> glibc;
  if (!child && a.malloc_baseline) {
    core::log_info("bench learn: the evaluate() sweep with glibc's default malloc settings (child process)");
    glibc = glibc_malloc_sweep(a);
  }
  if (!child) print_header(
      "LoraHub learning: random Flan-T5-shaped models and LoRA library",
      cat("- ", a.modules, " random rank-", a.rank, " modules (q, v of every attention), ", a.shots,
          " few-shot examples of ", a.input_tokens, " ± ", a.input_spread, " input and ", a.target_tokens, " ± ",
          a.target_spread, " target tokens, one padded batch (the reference's batching); ", threads, " thread(s)\n",
          "- per-evaluation figures: FitnessEvaluator::evaluate() with k random candidates, median of ", a.evals,
          " after ", a.warmup, " warm-up; CPU util = process CPU seconds / (wall seconds x threads), well below "
          "100 % when the machine was shared\n",
          "- whole run: ", a.budget, " COBYLA evaluations (ask/tell, k = 1) + merge of the best + greedy answers for ",
          a.test, " test prompts (batches of ", a.eval_batch, ", exactly ", a.gen_tokens,
          " new tokens each: EOS unreachable); the model stays loaded (no reload)\n",
          "- glibc malloc column: the same evaluate() sweep in a child process with glibc's default malloc settings "
          "(LORAHUB_GLIBC_MALLOC=1, no worker::retain_freed_memory), in this run\n",
          "- quoted Python reference (constants, not measured here and not a same-run baseline): ",
          QuotedReference::kEvalSmall, " / ", QuotedReference::kEvalBase, " s per evaluation (small / base), ",
          QuotedReference::kAnswerSmall, " s per 16-token test answer (small); ", QuotedReference::kProvenance, "\n"),
      started);

  struct RunRow {
    std::string size, dtype;
    double search, merge, test, total, utilisation;
  };
  std::vector<EvalRow> evals;
  std::vector<RunRow> runs;
  std::vector<std::pair<std::string, Profile>> profiles;
  std::map<std::string, double> own_baseline;  // size → seconds per candidate at the first dtype, k = ks[0]
  double padding_share = 0;

  for (const auto& size : sizes) {
    auto cfg = flan_t5_config(size);
    cfg.eos_token_id = cfg.vocab_size;  // fixed generation length (see bench engine)
    core::log_info(cat("bench learn: building a random flan-t5-", size, "-shaped model and library"));
    auto m = model::random_t5(cfg, a.seed);
    auto library = random_library(*m, a.modules, a.rank, a.seed + 1);
    auto stack = library.stack().to(torch::kCPU, torch::kFloat32);
    std::vector<std::size_t> modules(static_cast<std::size_t>(a.modules));
    std::iota(modules.begin(), modules.end(), 0);
    core::Rng rng(a.seed + 2);
    auto inputs = demo::random_token_sequences(rng, static_cast<std::size_t>(a.shots), a.input_tokens, a.input_spread, cfg.vocab_size);
    auto targets =
        demo::random_token_sequences(rng, static_cast<std::size_t>(a.shots), a.target_tokens, a.target_spread, cfg.vocab_size);
    auto tests = demo::random_token_sequences(rng, static_cast<std::size_t>(a.test), a.input_tokens, a.input_spread, cfg.vocab_size);
    {
      std::size_t longest = 0, total = 0;
      for (const auto& r : inputs) longest = std::max(longest, r.size()), total += r.size();
      padding_share = 1.0 - static_cast<double>(total) / static_cast<double>(longest * inputs.size());
    }

    for (const auto& dtype : dtypes) {
      m->set_runtime(runtime(dtype));
      worker::FitnessEvaluator ev(*m, stack, modules, inputs, targets, 0.05, 0);
      for (auto k : ks) {
        core::log_info(cat("bench learn: ", size, " ", dtype, " k=", k));
        const auto timing =
            time_median([&] { ev.evaluate(random_candidates(rng, k, a.modules)); }, a.warmup, a.evals);
        const double t = timing.wall;
        evals.push_back({size, dtype, k, t, timing.utilisation(threads)});
        if (!own_baseline.count(size)) own_baseline[size] = t / static_cast<double>(k);
      }

      // Where an evaluation's time goes, for k = 1 and the largest k: the steps of evaluate() timed apart, and
      // the same forward without the low-rank additions (the difference is the LoRA path).
      if (child) continue;
      std::vector<std::int64_t> profile_ks = {1};
      if (const auto kmax = *std::max_element(ks.begin(), ks.end()); kmax > 1) profile_ks.push_back(kmax);
      for (auto k : profile_ks) {
        core::log_info(cat("bench learn: ", size, " ", dtype, " profile k=", k));
        torch::Tensor mask;
        auto rep_k = [k](const torch::Tensor& t) { return k == 1 ? t : t.repeat({k, 1}); };
        auto ids = model::pad_sequences(inputs, cfg.pad_token_id, &mask);
        const auto rows = ids.size(0);
        ids = rep_k(ids);
        mask = rep_k(mask);
        auto labels = rep_k(model::pad_sequences(targets, -100));
        auto dec_ids = model::shift_right(labels, cfg.decoder_start_token_id, cfg.pad_token_id);
        std::vector<double> compose, enc, enc_skip, enc_base, dec, dec_base, head, whole;
        c10::InferenceMode guard;
        for (int rep = 0; rep < a.warmup + a.evals; ++rep) {
          auto w = random_candidates(rng, k, a.modules);
          auto t0 = Clock::now();
          ev.evaluate(w);
          const double t_whole = since(t0);
          lora::ScopedAdapters scope(*m);
          t0 = Clock::now();
          lora::apply_unmerged(*m, stack, w, k == 1 ? 0 : rows, modules);
          const double t_compose = since(t0);
          t0 = Clock::now();
          auto h = m->encode(ids, mask);
          const double t_enc = since(t0);
          t0 = Clock::now();
          auto h_skip = m->encode(ids, mask, nullptr, /*skip_padding=*/true);
          const double t_enc_skip = since(t0);
          t0 = Clock::now();
          auto d = m->decode(dec_ids, h, mask);
          const double t_dec = since(t0);
          t0 = Clock::now();
          auto loss = model::seq2seq_loss(m->lm_logits(d), labels).token_loss.sum().item<double>();
          const double t_head = since(t0);
          (void)loss;
          m->clear_low_rank();
          t0 = Clock::now();
          auto h0 = m->encode(ids, mask);
          const double t_enc0 = since(t0);
          t0 = Clock::now();
          auto d0 = m->decode(dec_ids, h0, mask);
          const double t_dec0 = since(t0);
          if (rep < a.warmup) continue;
          whole.push_back(t_whole), compose.push_back(t_compose), enc.push_back(t_enc), dec.push_back(t_dec);
          enc_skip.push_back(t_enc_skip);
          head.push_back(t_head), enc_base.push_back(t_enc0), dec_base.push_back(t_dec0);
        }
        Profile p;
        p.evaluate = median(whole);
        p.compose = median(compose);
        p.encoder = median(enc);
        p.encoder_lora = std::max(0.0, p.encoder - median(enc_base));
        p.encoder_skip = median(enc_skip);
        p.decoder = median(dec);
        p.decoder_lora = std::max(0.0, p.decoder - median(dec_base));
        p.head = median(head);
        profiles.emplace_back(cat("flan-t5-", size, " | ", dtype, " | ", k), p);
      }

      // One whole run, as a worker performs it: search, merge, test answers.
      {
        core::log_info(cat("bench learn: ", size, " ", dtype, " whole run"));
        const double cpu0 = cpu_seconds();
        auto t0 = Clock::now();
        opt::OptimizerOptions oo;
        oo.name = "cobyla";
        oo.budget = a.budget;
        auto optimizer = opt::make_optimizer(oo, static_cast<int>(a.modules));
        worker::FitnessEvaluator run_ev(*m, stack, modules, inputs, targets, 0.05, 0);
        while (!optimizer->done()) {
          auto c = optimizer->ask();
          if (c.empty()) break;
          optimizer->tell(run_ev.evaluate(c));
        }
        const double search = since(t0);
        t0 = Clock::now();
        lora::ScopedAdapters scope(*m);
        lora::merge(*m, lora::compose(stack, optimizer->best_w(), modules));
        const double merge = since(t0);
        t0 = Clock::now();
        // Longest first, as generate_answers batches them.
        auto order = tests;
        std::stable_sort(order.begin(), order.end(), [](const auto& x, const auto& y) { return x.size() > y.size(); });
        model::GenerateOptions go;
        go.max_new_tokens = a.gen_tokens;
        for (std::size_t begin = 0; begin < order.size(); begin += static_cast<std::size_t>(a.eval_batch)) {
          const auto end = std::min(order.size(), begin + static_cast<std::size_t>(a.eval_batch));
          std::vector<std::vector<std::int64_t>> rows(order.begin() + static_cast<std::ptrdiff_t>(begin),
                                                      order.begin() + static_cast<std::ptrdiff_t>(end));
          torch::Tensor mask;
          auto ids = model::pad_sequences(rows, cfg.pad_token_id, &mask);
          auto out = model::generate_greedy(*m, ids, mask, go);
          if (out.ids.size(1) != 1 + a.gen_tokens) fail("bench learn: generation stopped early");
        }
        const double test = since(t0);
        const double total = search + merge + test;
        runs.push_back({size, dtype, search, merge, test, total, (cpu_seconds() - cpu0) / (total * threads)});
      }
    }
  }

  if (child) {
    auto rows = nlohmann::json::array();
    for (const auto& e : evals) {
      rows.push_back({{"size", e.size}, {"dtype", e.dtype}, {"k", e.k}, {"seconds", e.per_forward},
                      {"utilisation", e.utilisation}});
    }
    std::ofstream(a.eval_json) << rows.dump() << "\n";
    return;
  }
  const auto own_tag = cat(dtypes.front(), " k=", ks.front());
  std::cout << "Per evaluation (padding: " << fixed(100 * padding_share, 1)
            << " % of the encoder positions of the few-shot batch are padding):\n\n"
            << "| model | dtype | k | s / evaluate() | s / candidate | vs own " << own_tag
            << " | s / candidate, glibc malloc | retained vs glibc malloc | CPU util | quoted reference s / evaluation "
               "(not same-run) | quoted ÷ ours |\n"
            << "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
  for (const auto& e : evals) {
    const double per = e.per_forward / static_cast<double>(e.k);
    const double ref = QuotedReference::eval_seconds(e.size);
    auto g = glibc.find(eval_key(e.size, e.dtype, e.k));
    const bool has_g = g != glibc.end();
    const double g_per = has_g ? g->second.per_forward / static_cast<double>(e.k) : 0;
    std::cout << "| flan-t5-" << e.size << " | " << e.dtype << " | " << e.k << " | " << sig(e.per_forward) << " | "
              << sig(per) << " | " << fixed(own_baseline[e.size] / per, 2) << "x | "
              << (has_g ? sig(g_per) + " (" + util_cell(g->second.utilisation) + ")" : "–") << " | "
              << (has_g ? fixed(g_per / per, 2) + "x" : "–") << " | " << util_cell(e.utilisation) << " | "
              << (ref > 0 ? sig(ref) : "–") << " | " << (ref > 0 ? fixed(ref / per, 2) + "x" : "–") << " |\n";
  }

  // The quoted reference's whole run: its evaluations and 16-token answers at the quoted rates (model loaded).
  const bool quoted_run = a.gen_tokens == 16;
  std::cout << "\nWhole run (" << a.budget << " evaluations + merge + " << a.test << " test answers of " << a.gen_tokens
            << " tokens):\n\n"
            << "| model | dtype | search s | merge s | test s / answer | whole run s | vs own " << dtypes.front()
            << " | CPU util | quoted reference s (not same-run) | quoted ÷ ours |\n"
            << "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n";
  std::map<std::string, double> run_base;
  for (const auto& r : runs) {
    if (!run_base.count(r.size)) run_base[r.size] = r.total;
    const bool ref = r.size == "small" && quoted_run;
    const double ref_total = a.budget * QuotedReference::kEvalSmall + a.test * QuotedReference::kAnswerSmall;
    std::cout << "| flan-t5-" << r.size << " | " << r.dtype << " | " << sig(r.search) << " | " << sig(r.merge) << " | "
              << (a.test > 0 ? sig(r.test / static_cast<double>(a.test)) : "–") << " | " << sig(r.total) << " | "
              << fixed(run_base[r.size] / r.total, 2) << "x | " << util_cell(r.utilisation) << " | "
              << (ref ? sig(ref_total) : "–") << " | " << (ref ? fixed(ref_total / r.total, 2) + "x" : "–") << " |\n";
  }
  std::cout << "\nThe quoted reference's whole run is " << a.budget << " x " << QuotedReference::kEvalSmall << " s + "
            << a.test << " x " << QuotedReference::kAnswerSmall
            << " s (its per-evaluation and per-answer figures; model loading excluded on both sides).\n";

  std::cout << "\nWhere an evaluation's time goes (steps of evaluate() timed apart, encoder and decoder on the "
               "padded batch; LoRA path = the same forward minus one without the low-rank additions; padding skipped "
               "= the encoder as evaluate() runs it, on the real tokens only; medians; k candidates per forward):\n\n"
            << "| model | dtype | k | compose ms | encoder ms (LoRA path) | encoder, padding skipped ms | decoder ms "
               "(LoRA path) | LM head + loss ms | sum ms | evaluate() ms |\n"
            << "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n";
  for (const auto& [name, p] : profiles) {
    const double sum = p.compose + p.encoder + p.decoder + p.head;
    auto pct = [&](double x) { return fixed(100 * x / sum, 0) + " %"; };
    std::cout << "| " << name << " | " << sig(p.compose * 1e3) << " (" << pct(p.compose) << ") | "
              << sig(p.encoder * 1e3) << " (" << pct(p.encoder) << "; " << sig(p.encoder_lora * 1e3) << ") | "
              << sig(p.encoder_skip * 1e3) << " (" << fixed(p.encoder / p.encoder_skip, 2) << "x) | "
              << sig(p.decoder * 1e3) << " (" << pct(p.decoder) << "; " << sig(p.decoder_lora * 1e3) << ") | "
              << sig(p.head * 1e3) << " (" << pct(p.head) << ") | " << sig(sum * 1e3) << " | " << sig(p.evaluate * 1e3)
              << " |\n";
  }
  print_footer();
}

}  // namespace

void add_learn_benchmark(CLI::App& bench, int& threads) {
  auto* cmd = bench.add_subcommand(
      "learn", "LoraHub per-evaluation, batched and whole-run times on random Flan-T5-shaped models (1 thread default)");
  auto a = std::make_shared<LearnBenchArgs>();
  cmd->add_option("--sizes", a->sizes, "Model shapes: small,base,large");
  cmd->add_option("--dtypes", a->dtypes, "Compute dtypes: f32,bf16 (the first is the own baseline)");
  cmd->add_option("--k", a->ks, "Candidates per batched evaluation (the first is the own baseline)");
  cmd->add_option("--modules", a->modules, "N: modules composed");
  cmd->add_option("--rank", a->rank, "LoRA rank r");
  cmd->add_option("--shots", a->shots, "Few-shot examples");
  cmd->add_option("--input-tokens", a->input_tokens, "Mean input tokens per example");
  cmd->add_option("--input-spread", a->input_spread, "Input lengths vary uniformly by up to this much");
  cmd->add_option("--target-tokens", a->target_tokens, "Mean target tokens per example");
  cmd->add_option("--target-spread", a->target_spread, "Target lengths vary uniformly by up to this much");
  cmd->add_option("--evals", a->evals, "Timed evaluations per k (median)")->check(CLI::PositiveNumber);
  cmd->add_option("--warmup", a->warmup, "Untimed evaluations first")->check(CLI::NonNegativeNumber);
  cmd->add_option("--budget", a->budget, "Evaluations of the whole run");
  cmd->add_option("--test", a->test, "Test prompts answered in the whole run");
  cmd->add_option("--gen-tokens", a->gen_tokens, "Tokens generated per test prompt (always exactly this many)");
  cmd->add_option("--eval-batch", a->eval_batch, "Test prompts per generation batch")->check(CLI::PositiveNumber);
  cmd->add_option("--seed", a->seed, "Seed of weights, library and inputs");
  cmd->add_option("--malloc-baseline", a->malloc_baseline,
                  "Also time evaluate() in a child with glibc's default malloc settings (true/false)");
  cmd->add_option("--eval-json", a->eval_json, "Internal: time evaluate() only and write the rows here")
      ->group("");
  cmd->callback([a, &threads] { run_learn_bench(*a, threads); });
}

}  // namespace lorahub::bench
