#pragma once
// What the benchmarks share: timing with CPU utilisation, table formatting, the header every table starts with
// (command, machine, load average, threads), model shapes with their analytic FLOPs, and child processes.
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "lorahub/core/lists.h"
#include "lorahub/core/process.h"
#include "lorahub/demo/synthetic.h"
#include "lorahub/model/t5.h"

namespace lorahub::bench {
namespace fs = std::filesystem;

using Clock = std::chrono::steady_clock;

inline constexpr int kGemmReps = 20;  // timed calls of the GEMM baseline (a few ms each)

/// The Python reference's figures: quoted constants from one named measurement, never measured by a bench and
/// never a same-run ratio. sail-sg/lorahub on HF transformers 4.26 + PEFT 0.5 + nevergrad, same Debian
/// libtorch/OpenBLAS/oneDNN, 1 thread, on the 2-core development machine (AVX512-BF16) in 2026-12; shapes: 5
/// few-shot examples padded to 102 tokens, 20 rank-16 modules; a test answer has 16 new tokens.
struct QuotedReference {
  static constexpr const char* kProvenance =
      "sail-sg/lorahub on HF transformers 4.26 + PEFT 0.5 + nevergrad, 1 thread, measured 2026-12 on the 2-core "
      "development machine (AVX512-BF16), 5 shots padded to 102 tokens, 20 rank-16 modules";
  static constexpr double kEvalSmall = 0.381;    // s per evaluation, flan-t5-small
  static constexpr double kEvalBase = 1.46;      // s per evaluation, flan-t5-base
  static constexpr double kAnswerSmall = 0.139;  // s per 16-token test answer, flan-t5-small
  /// Seconds per evaluation for "small" / "base", or a negative value where none was quoted.
  static double eval_seconds(const std::string& size) {
    return size == "small" ? kEvalSmall : size == "base" ? kEvalBase : -1.0;
  }
};

/// " ⚠" after a CPU-utilisation figure below 90 %: the row waited for a core and its times are inflated.
std::string util_cell(double utilisation);

double since(Clock::time_point t0);
double median(std::vector<double> v);
/// CPU seconds (user + system) of every thread of this process so far.
double cpu_seconds();

/// Wall and CPU seconds of one timed piece. cpu / (wall · threads) well below 1 means the threads waited for
/// a core: on a shared machine that flags a disturbed measurement.
struct Timing {
  double wall = 0, cpu = 0;
  double utilisation(std::int64_t threads) const { return wall > 0 ? cpu / (wall * static_cast<double>(threads)) : 0; }
};

/// `warmup` untimed calls, then the medians of `reps` timed ones.
template <class F>
Timing time_median(F&& fn, int warmup, int reps) {
  for (int i = 0; i < warmup; ++i) fn();
  std::vector<double> wall, cpu;
  for (int i = 0; i < std::max(1, reps); ++i) {
    const double c0 = cpu_seconds();
    auto t0 = Clock::now();
    fn();
    wall.push_back(since(t0));
    cpu.push_back(cpu_seconds() - c0);
  }
  return {median(wall), median(cpu)};
}

std::string fixed(double v, int digits);
/// Significant figures without exponent noise, for times and rates spanning decades.
std::string sig(double v, int digits = 3);
std::string first_field(const std::string& path, const std::string& key);
std::string load_average();
std::string command_line();
int openblas_threads();
/// Changes the intra-op and OpenBLAS thread counts after setup_threads() (torch allows setting inter-op once).
void set_threads(int threads);
std::string thread_settings();
std::string started_line();
/// `started`: started_line() taken when the measurement began (default: now).
void print_header(const std::string& title, const std::string& notes, const std::string& started = "");
void print_footer();

using demo::flan_t5_config;

/// Multiply-adds count 2 FLOPs: projections (2 · params touched per token), attention scores and
/// weighted values (2 · 2 · keys · inner per query), the LM head. Norms, softmax and bias are left out.
struct FlopCount {
  const model::T5Config& c;
  double d() const { return static_cast<double>(c.d_model); }
  double inner() const { return static_cast<double>(c.inner_dim()); }
  double ff() const { return (c.is_gated_act ? 3.0 : 2.0) * d() * static_cast<double>(c.d_ff); }
  /// One sequence of `le` tokens through the encoder.
  double encoder(double le) const {
    return static_cast<double>(c.num_layers) * le * (2 * (4 * d() * inner() + ff()) + 4 * le * inner());
  }
  /// Cross-attention keys and values of `le` encoder positions, every decoder layer.
  double cross_kv(double le) const { return static_cast<double>(c.num_decoder_layers) * le * 2 * 2 * d() * inner(); }
  /// One decoder token attending to `self_keys` decoder and `le` encoder positions, plus the LM head.
  double decoder_token(double self_keys, double le) const {
    const double layer = 2 * (6 * d() * inner() + ff()) + 4 * self_keys * inner() + 4 * le * inner();
    return static_cast<double>(c.num_decoder_layers) * layer + 2 * d() * static_cast<double>(c.vocab_size);
  }
  /// Teacher-forced forward of `batch` sequences (the full Ld × Ld self-attention is computed).
  double forward(double batch, double le, double ld) const {
    return batch * (encoder(le) + cross_kv(le) + ld * decoder_token(ld, le));
  }
  /// Greedy generation of `n` tokens with a key/value cache, encoder included.
  double generate(double batch, double le, std::int64_t n) const {
    double steps = 0;
    for (std::int64_t t = 1; t <= n; ++t) steps += decoder_token(static_cast<double>(t), le);
    return batch * (encoder(le) + cross_kv(le) + steps);
  }
};

/// Best FLOP/s of torch::matmul on [rows, k] × [k, n] (the model's x Wᵀ layout) in `dtype` with the current
/// threads over `reps` timed calls: the rate this machine can reach, so the best call (least disturbed) counts.
double gemm_flops(std::int64_t rows, std::int64_t k, std::int64_t n, torch::ScalarType dtype, int reps);
torch::Tensor random_ids(std::int64_t rows, std::int64_t len, std::int64_t vocab);
model::RuntimeOptions runtime(const std::string& dtype);

using core::ChildExit;
using core::spawn_and_wait;
std::string tail_of(const std::string& path, std::size_t chars);
std::string self_exe();
long status_kb(const std::string& key);
fs::path fresh_temp_dir(const std::string& tag);

using core::parse_doubles;
using core::parse_ints;
using core::split_list;

}  // namespace lorahub::bench
