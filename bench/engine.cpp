// bench engine: see docs/benchmarks.md.
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
// bench engine

struct EngineBenchArgs {
  std::string sizes = "small,base,large";
  std::string batches = "1,5,16";
  std::string threads = "1,2";
  std::string dtypes = "f32,bf16";
  std::int64_t input_tokens = 90;
  std::int64_t target_tokens = 8;
  std::int64_t new_tokens = 32;
  std::int64_t gemm_rows = 512;
  int reps = 3;
  int warmup = 1;
  std::string rss_size = "auto";
  std::uint64_t seed = 1;
};

struct RssRow {
  std::string dtype;
  double file_mb = 0, baseline_mb = 0, peak_mb = 0, resident_mb = 0, loaded_mb = 0, load_s = 0, weights_mb = 0;
};

std::vector<RssRow> measure_load_rss(const std::string& size, const std::vector<std::string>& dtypes, std::uint64_t seed) {
  auto cfg = flan_t5_config(size);
  auto dir = fresh_temp_dir("rss");
  const auto model_dir = dir / "model";
  {
    core::log_info(cat("bench engine: writing a random flan-t5-", size, "-shaped model to ", model_dir));
    auto m = model::random_t5(cfg, seed);
    model::save_t5(m, model_dir.string());
  }
  const double file_mb = static_cast<double>(fs::file_size(model_dir / "model.safetensors")) / (1 << 20);
  std::vector<RssRow> rows;
  for (const auto& dtype : dtypes) {
    const auto out = (dir / cat("load-", dtype, ".json")).string();
    const auto log = (dir / "child.log").string();
    auto child = spawn_and_wait({self_exe(), "--threads", "1", "load-rss", "--model", model_dir.string(),
                                 "--dtype", dtype, "--out", out},
                                log);
    if (!child.ok()) {
      fail("bench engine: the load probe failed (", dtype, "): ", tail_of(log, 2000));
    }
    std::ifstream in(out);
    auto j = nlohmann::json::parse(in);
    RssRow r;
    r.dtype = dtype;
    r.file_mb = file_mb;
    r.baseline_mb = j.at("baseline_kb").get<double>() / 1024;
    // The child's own VmHWM: its rusage ru_maxrss also carries the high-water mark of the memory it was
    // spawned from (posix_spawn shares the parent's until exec, and Linux keeps that mark across exec).
    r.peak_mb = j.at("peak_kb").get<double>() / 1024;
    r.resident_mb = j.at("resident_kb").get<double>() / 1024;
    r.loaded_mb = j.at("loaded_kb").get<double>() / 1024;
    r.load_s = j.at("load_seconds").get<double>();
    r.weights_mb = j.at("weight_bytes").get<double>() / (1 << 20);
    rows.push_back(r);
  }
  fs::remove_all(dir);
  return rows;
}

void run_load_probe(const std::string& model_dir, const std::string& dtype, const std::string& out) {
  const long baseline = status_kb("VmRSS");
  auto t0 = Clock::now();
  auto m = model::load_t5(model_dir, runtime(dtype));
  const double seconds = since(t0);
  const long loaded = status_kb("VmRSS");
  double bytes = 0;
  for (const auto& p : m->parameters()) bytes += static_cast<double>(p.numel() * p.element_size());
  // One short forward touches every weight (a mapped f32 file is only read on first use).
  {
    torch::NoGradGuard no_grad;
    auto ids = random_ids(1, 8, m->config().vocab_size);
    m->forward(ids, torch::ones_like(ids), torch::zeros({1, 1}, torch::kLong));
  }
  nlohmann::json j = {{"baseline_kb", baseline}, {"loaded_kb", loaded}, {"resident_kb", status_kb("VmRSS")},
                      {"peak_kb", status_kb("VmHWM")}, {"load_seconds", seconds}, {"weight_bytes", bytes}};
  std::ofstream f(out);
  f << j.dump() << "\n";
  if (!f) fail(out, ": cannot write the load probe's result");
}

void run_engine_bench(const EngineBenchArgs& a, int threads_arg) {
  const auto sizes = split_list(a.sizes);
  const auto dtypes = split_list(a.dtypes);
  const auto batches = parse_ints(a.batches, "--batches");
  const auto threads = parse_ints(a.threads, "--thread-counts");
  for (const auto& s : sizes) flan_t5_config(s);
  for (const auto& d : dtypes) model::parse_compute_dtype(d);
  if (a.input_tokens < 1 || a.target_tokens < 1 || a.new_tokens < 1) fail("bench engine: token counts must be >= 1");
  worker::setup_threads(static_cast<int>(threads.front()));
  print_header(
      "Engine throughput: random Flan-T5-shaped models",
      cat("- input ", a.input_tokens, " tokens, teacher-forced target ", a.target_tokens, " tokens, generation ",
          a.new_tokens, " new tokens (EOS unreachable: every row generates exactly that many, checked); median of ",
          a.reps, " after ", a.warmup, " warm-up\n",
          "- forward tok/s counts input + target tokens; generation tok/s counts new tokens (encoder time included)\n",
          "- efficiency = analytic model FLOPs / (time x best torch::matmul FLOP/s on [", a.gemm_rows,
          ", d_model] x [d_model, d_ff] in the same dtype and thread count, this run); generate eff (batch rows) "
          "divides by the rate of the same GEMM with as many rows as the batch (one decoding step's shape)\n",
          "- CPU util = process CPU seconds / (wall seconds x threads): well below 100 % means the threads waited "
          "for a core (a shared machine), so that row's times are inflated\n"));

  std::string rss_size = a.rss_size;
  if (rss_size == "auto") rss_size = std::find(sizes.begin(), sizes.end(), "large") != sizes.end() ? "large" : sizes.back();
  std::vector<RssRow> rss;
  if (rss_size != "none") rss = measure_load_rss(rss_size, dtypes, a.seed);

  struct GemmRow {
    std::string size, dtype;
    std::int64_t threads;
    double flops;
  };
  std::vector<GemmRow> gemms;
  std::map<std::string, std::pair<double, double>> baseline;  // size/batch → forward, generate seconds
  const auto base_tag = cat(dtypes.front(), "/", threads.front(), "t");
  std::cout << "| model | params | dtype | threads | batch | forward ms | forward tok/s | forward eff | vs " << base_tag
            << " | generate s | generate tok/s | generate eff | generate eff (batch rows) | vs " << base_tag
            << " | CPU util fwd / gen |\n"
            << "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
            << std::flush;
  for (const auto& size : sizes) {
    auto cfg = flan_t5_config(size);
    cfg.eos_token_id = cfg.vocab_size;  // an id argmax over [0, vocab) never returns: fixed generation length
    torch::manual_seed(static_cast<std::uint64_t>(a.seed));
    core::log_info(cat("bench engine: building a random flan-t5-", size, "-shaped model"));
    auto m = model::random_t5(cfg, a.seed);
    const FlopCount flops{m->config()};
    for (const auto& dtype : dtypes) {
      m->set_runtime(runtime(dtype));
      const auto st = m->weight_dtype();
      for (auto t : threads) {
        set_threads(static_cast<int>(t));
        const double peak = gemm_flops(a.gemm_rows, cfg.d_model, cfg.d_ff, st, kGemmReps);
        gemms.push_back({size, dtype, t, peak});
        for (auto b : batches) {
          core::log_info(cat("bench engine: ", size, " ", dtype, " ", t, " thread(s) batch ", b));
          auto ids = random_ids(b, a.input_tokens, cfg.vocab_size);
          auto mask = torch::ones_like(ids);
          auto dec = random_ids(b, a.target_tokens, cfg.vocab_size);
          c10::InferenceMode guard;
          const auto fwd_t = time_median([&] { auto out = m->forward(ids, mask, dec); }, a.warmup, a.reps);
          const double fwd = fwd_t.wall;
          model::GenerateOptions go;
          go.max_new_tokens = a.new_tokens;
          bool checked = false;
          const auto gen_t = time_median(
              [&] {
                auto r = model::generate_greedy(*m, ids, mask, go);
                if (!checked && r.ids.size(1) != 1 + a.new_tokens) {
                  fail("bench engine: generation stopped after ", r.ids.size(1) - 1, " of ", a.new_tokens, " tokens");
                }
                checked = true;
              },
              a.warmup, a.reps);
          const double gen = gen_t.wall;
          const double step_peak = gemm_flops(b, cfg.d_model, cfg.d_ff, st, kGemmReps);
          const auto key = cat(size, "/", b);
          if (!baseline.count(key)) baseline[key] = {fwd, gen};
          const double bd = static_cast<double>(b);
          const double f_fwd = flops.forward(bd, static_cast<double>(a.input_tokens), static_cast<double>(a.target_tokens));
          const double f_gen = flops.generate(bd, static_cast<double>(a.input_tokens), a.new_tokens);
          std::cout << "| flan-t5-" << size << " | " << sig(static_cast<double>(cfg.num_parameters()) / 1e6) << " M | "
                    << dtype << " | " << t << " | " << b << " | " << sig(fwd * 1e3) << " | "
                    << sig(bd * static_cast<double>(a.input_tokens + a.target_tokens) / fwd) << " | "
                    << fixed(100 * f_fwd / (fwd * peak), 1) << " % | " << fixed(baseline[key].first / fwd, 2) << "x | "
                    << sig(gen) << " | " << sig(bd * static_cast<double>(a.new_tokens) / gen) << " | "
                    << fixed(100 * f_gen / (gen * peak), 1) << " % | " << fixed(100 * f_gen / (gen * step_peak), 1)
                    << " % | " << fixed(baseline[key].second / gen, 2) << "x | " << util_cell(fwd_t.utilisation(t))
                    << " / " << util_cell(gen_t.utilisation(t)) << " |\n"
                    << std::flush;
        }
      }
    }
  }
  std::cout << "\nGEMM baseline (torch::matmul, [" << a.gemm_rows << ", d_model] x [d_model, d_ff], best of "
            << kGemmReps << " calls):\n\n"
            << "| shape of | dtype | threads | GFLOP/s |\n|---|---|---:|---:|\n";
  for (const auto& g : gemms) {
    std::cout << "| flan-t5-" << g.size << " | " << g.dtype << " | " << g.threads << " | " << sig(g.flops / 1e9) << " |\n";
  }
  if (!rss.empty()) {
    std::cout << "\nLoading a random flan-t5-" << rss_size
              << "-shaped model (save_t5, then load_t5 and one 8-token forward in a fresh child process, 1 thread; "
                 "RSS counts the mapped file's pages once touched):\n\n"
              << "| dtype | model.safetensors MB | weights in memory MB | process before load MB | RSS after load MB | "
                 "RSS after a forward MB | peak RSS MB | peak − before MB | (peak − before) / weights | "
                 "(peak − before) / file | load s |\n"
              << "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
    for (const auto& r : rss) {
      std::cout << "| " << r.dtype << " | " << fixed(r.file_mb, 0) << " | " << fixed(r.weights_mb, 0) << " | "
                << fixed(r.baseline_mb, 0) << " | " << fixed(r.loaded_mb, 0) << " | " << fixed(r.resident_mb, 0) << " | "
                << fixed(r.peak_mb, 0) << " | " << fixed(r.peak_mb - r.baseline_mb, 0)
                << " | " << fixed((r.peak_mb - r.baseline_mb) / r.weights_mb, 2) << " | "
                << fixed((r.peak_mb - r.baseline_mb) / r.file_mb, 2) << " | " << sig(r.load_s) << " |\n";
    }
  }
  (void)threads_arg;
  print_footer();
}

}  // namespace

void add_engine_benchmark(CLI::App& bench, int& threads) {
  {
    auto* cmd = bench.add_subcommand(
        "engine", "Forward and generation throughput and efficiency of random Flan-T5-shaped models; load-time RSS");
    auto a = std::make_shared<EngineBenchArgs>();
    cmd->add_option("--sizes", a->sizes, "Model shapes: small,base,large (flan-t5-*)");
    cmd->add_option("--batches", a->batches, "Batch sizes");
    cmd->add_option("--thread-counts", a->threads, "Thread counts to run (each sets torch and OpenBLAS)");
    cmd->add_option("--dtypes", a->dtypes, "Compute dtypes: f32,bf16");
    cmd->add_option("--input-tokens", a->input_tokens, "Encoder tokens per row");
    cmd->add_option("--target-tokens", a->target_tokens, "Teacher-forced decoder tokens per row");
    cmd->add_option("--new-tokens", a->new_tokens, "Generated tokens per row (always exactly this many)");
    cmd->add_option("--gemm-rows", a->gemm_rows, "Rows of the GEMM baseline [rows, d_model] x [d_model, d_ff]");
    cmd->add_option("--reps", a->reps, "Timed repetitions (median)")->check(CLI::PositiveNumber);
    cmd->add_option("--warmup", a->warmup, "Untimed repetitions first")->check(CLI::NonNegativeNumber);
    cmd->add_option("--rss-size", a->rss_size, "Shape for the load/peak-RSS measurement (auto: large if listed, none: skip)");
    cmd->add_option("--seed", a->seed, "Seed of weights and inputs");
    cmd->callback([a, &threads] { run_engine_bench(*a, threads); });
  }
  {
    auto* cmd = bench.add_subcommand("load-rss", "Internal: load a model and report RSS (run by `bench engine`)");
    cmd->group("");
    auto dir = std::make_shared<std::string>();
    auto dtype = std::make_shared<std::string>("f32");
    auto out = std::make_shared<std::string>();
    cmd->add_option("--model", *dir)->required();
    cmd->add_option("--dtype", *dtype);
    cmd->add_option("--out", *out)->required();
    cmd->callback([dir, dtype, out, &threads] {
      worker::setup_threads(threads > 0 ? threads : 1);
      run_load_probe(*dir, *dtype, *out);
    });
  }
}

}  // namespace lorahub::bench
