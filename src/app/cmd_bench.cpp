// bench engine | learn | solver: the benchmarks behind docs/benchmarks.md. Each prints Markdown on stdout (a
// header naming the command, machine, load average and thread settings, then tables) and its progress on
// stderr. Every ratio is against a baseline measured in the same run, except the Python reference's figures,
// which are quoted constants and labelled as such.
#include <dlfcn.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <numeric>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>
#include <torch/torch.h>
#include <torch/version.h>

#include "commands.h"
#include "lorahub/core/error.h"
#include "lorahub/core/log.h"
#include "lorahub/core/random.h"
#include "lorahub/distributed/comm.h"
#include "lorahub/job/config.h"
#include "lorahub/model/batch.h"
#include "lorahub/runner/runner.h"
#include "lorahub/worker/backend.h"
#include "lorahub/worker/fitness.h"
#include "lorahub/lora/adapter.h"
#include "lorahub/lora/library.h"
#include "lorahub/model/t5.h"
#include "lorahub/opt/optimizer.h"
#include "lorahub/text/t5_tokenizer.h"

extern char** environ;

namespace lorahub::app {
namespace fs = std::filesystem;
using core::cat;
using core::fail;

namespace {

// The Python reference (HF transformers + PEFT + nevergrad) on one core of the development machine, as
// quoted in the benchmark issue. Fixed external figures, not measured here.
constexpr double kRefEvalSeconds[] = {0.36, 1.3, 5.7};  // flan-t5-small, -base, -large: one evaluation
constexpr double kRefRunSeconds = 19.0;                 // flan-t5-small: 40 evaluations, incl. 4.5 s reload
constexpr double kRefReloadSeconds = 4.5;
constexpr double kRefTestSeconds = 0.11;                // flan-t5-small: per test example

using Clock = std::chrono::steady_clock;

constexpr int kGemmReps = 20;  // timed calls of the GEMM baseline (a few ms each)

double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const auto n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/// CPU seconds (user + system) of every thread of this process so far.
double cpu_seconds() {
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         1e-6 * static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

// Wall and CPU seconds of one timed piece. cpu / (wall · threads) well below 1 means the threads waited for
// a core: on a shared machine that flags a disturbed measurement.
struct Timing {
  double wall = 0, cpu = 0;
  double utilisation(std::int64_t threads) const { return wall > 0 ? cpu / (wall * static_cast<double>(threads)) : 0; }
};

// `warmup` untimed calls, then the medians of `reps` timed ones.
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

std::string fixed(double v, int digits) {
  std::ostringstream os;
  os << std::fixed << std::setprecision(digits) << v;
  return os.str();
}

// Significant figures without exponent noise, for times and rates spanning decades.
std::string sig(double v, int digits = 3) {
  if (!std::isfinite(v)) return "–";
  if (v == 0) return "0";
  const int mag = static_cast<int>(std::floor(std::log10(std::abs(v))));
  return fixed(v, std::max(0, digits - 1 - mag));
}

std::string first_field(const std::string& path, const std::string& key) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) == 0) {
      auto colon = line.find(':');
      auto v = colon == std::string::npos ? line : line.substr(colon + 1);
      v.erase(0, v.find_first_not_of(" \t"));
      return v;
    }
  }
  return "";
}

std::string load_average() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return a.empty() ? "unknown" : a + " " + b + " " + c;
}

std::string command_line() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::string out;
  std::size_t start = 0;
  bool first = true;
  while (start < all.size()) {
    auto end = all.find('\0', start);
    if (end == std::string::npos) end = all.size();
    auto arg = all.substr(start, end - start);
    if (first) arg = fs::path(arg).filename().string();
    out += (first ? "" : " ") + arg;
    first = false;
    start = end + 1;
  }
  return out;
}

int openblas_threads() {
  using Get = int (*)();
  if (auto* fn = reinterpret_cast<Get>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"))) return fn();
  return -1;
}

// Changes the intra-op and OpenBLAS thread counts after setup_threads() (torch allows setting inter-op once).
void set_threads(int threads) {
  torch::set_num_threads(threads);
  using Set = void (*)(int);
  if (auto* fn = reinterpret_cast<Set>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) fn(threads);
}

std::string thread_settings() {
  const int blas = openblas_threads();
  return cat("torch intra-op ", at::get_num_threads(), ", inter-op ", at::get_num_interop_threads(), ", OpenBLAS ",
             blas < 0 ? std::string("not loaded") : std::to_string(blas));
}

std::string started_line() {
  return cat("started ", core::utc_timestamp(), ", load average (1/5/15 min) ", load_average());
}

/// `started`: started_line() taken when the measurement began (default: now).
void print_header(const std::string& title, const std::string& notes, const std::string& started = "") {
  std::cout << "### " << title << "\n\n"
            << "- command: `" << command_line() << "`\n"
            << "- machine: " << first_field("/proc/cpuinfo", "model name") << ", "
            << std::thread::hardware_concurrency() << " hardware threads, "
            << first_field("/proc/meminfo", "MemTotal") << " memory; libtorch " << TORCH_VERSION << "\n"
            << "- " << (started.empty() ? started_line() : started) << "\n"
            << "- threads: " << thread_settings() << "\n";
  if (!notes.empty()) std::cout << notes;
  std::cout << "\n" << std::flush;
}

void print_footer() {
  std::cout << "\nFinished " << core::utc_timestamp() << ", load average " << load_average() << ".\n" << std::flush;
}

// ------------------------------------------------------------------------------------------------
// Model shapes and analytic FLOPs.

/// The shapes of google/flan-t5-{small,base,large} (config.json alone); "tiny" is a toy for the solver.
model::T5Config flan_t5_config(const std::string& size) {
  model::T5Config c;
  c.vocab_size = 32128;
  c.d_kv = 64;
  c.relative_attention_num_buckets = 32;
  c.relative_attention_max_distance = 128;
  c.feed_forward_proj = "gated-gelu";
  c.dense_act_fn = "gelu_new";
  c.is_gated_act = true;
  c.tie_word_embeddings = false;
  c.dropout_rate = 0.1;
  if (size == "small") {
    c.d_model = 512, c.num_heads = 6, c.d_ff = 1024, c.num_layers = c.num_decoder_layers = 8;
  } else if (size == "base") {
    c.d_model = 768, c.num_heads = 12, c.d_ff = 2048, c.num_layers = c.num_decoder_layers = 12;
  } else if (size == "large") {
    c.d_model = 1024, c.num_heads = 16, c.d_ff = 2816, c.num_layers = c.num_decoder_layers = 24;
  } else if (size == "tiny") {
    c.d_model = 64, c.d_kv = 16, c.num_heads = 4, c.d_ff = 128, c.num_layers = c.num_decoder_layers = 2;
  } else {
    fail("bench: unknown model size '", size, "' (small, base, large, tiny)");
  }
  return c;
}

int reference_index(const std::string& size) { return size == "small" ? 0 : size == "base" ? 1 : size == "large" ? 2 : -1; }

// Multiply-adds count 2 FLOPs: projections (2 · params touched per token), attention scores and
// weighted values (2 · 2 · keys · inner per query), the LM head. Norms, softmax and bias are left out.
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
double gemm_flops(std::int64_t rows, std::int64_t k, std::int64_t n, torch::ScalarType dtype, int reps) {
  c10::InferenceMode guard;
  auto x = torch::randn({rows, k}).to(dtype);
  auto w = torch::randn({n, k}).to(dtype);
  for (int i = 0; i < 2; ++i) auto y = torch::matmul(x, w.t());
  double best = INFINITY;
  for (int i = 0; i < reps; ++i) {
    auto t0 = Clock::now();
    auto y = torch::matmul(x, w.t());
    best = std::min(best, since(t0));
  }
  return 2.0 * static_cast<double>(rows) * static_cast<double>(k) * static_cast<double>(n) / best;
}

torch::Tensor random_ids(std::int64_t rows, std::int64_t len, std::int64_t vocab) {
  // Ids 2.. avoid pad (0) and EOS (1).
  return torch::randint(2, vocab, {rows, len}, torch::kLong);
}

model::RuntimeOptions runtime(const std::string& dtype) {
  model::RuntimeOptions rt;
  rt.dtype = model::parse_compute_dtype(dtype);
  return rt;
}

// ------------------------------------------------------------------------------------------------
// Child processes: the load-RSS probe and the MPI launches of `bench solver`.

struct ChildExit {
  int status = 0;
  long max_rss_kb = 0;
};

/// Runs `args` (args[0] a path or a name on PATH) with stdout and stderr appended to `log`.
ChildExit spawn_and_wait(const std::vector<std::string>& args, const std::string& log) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = 0;
  const int rc = posix_spawnp(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) fail("bench: cannot start '", args[0], "': ", std::strerror(rc));
  ChildExit out;
  struct rusage usage {};
  while (wait4(pid, &out.status, 0, &usage) < 0) {
    if (errno != EINTR) fail("bench: waiting for '", args[0], "' failed: ", std::strerror(errno));
  }
  out.max_rss_kb = usage.ru_maxrss;
  return out;
}

std::string tail_of(const std::string& path, std::size_t chars) {
  std::ifstream in(path);
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return all.size() > chars ? all.substr(all.size() - chars) : all;
}

std::string self_exe() { return fs::read_symlink("/proc/self/exe").string(); }

long status_kb(const std::string& key) {
  auto v = first_field("/proc/self/status", key);
  return v.empty() ? -1 : std::stol(v);
}

fs::path fresh_temp_dir(const std::string& tag) {
  auto dir = fs::temp_directory_path() / cat("lorahub-bench-", tag, "-", ::getpid());
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

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
    auto child = spawn_and_wait({self_exe(), "--threads", "1", "bench", "load-rss", "--model", model_dir.string(),
                                 "--dtype", dtype, "--out", out},
                                log);
    if (!WIFEXITED(child.status) || WEXITSTATUS(child.status) != 0) {
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

void run_engine_bench(const EngineBenchArgs& a, Globals& globals) {
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
          ", d_model] x [d_model, d_ff] in the same dtype and thread count, this run)\n",
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
            << " | generate s | generate tok/s | generate eff | vs " << base_tag << " | CPU util fwd / gen |\n"
            << "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
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
                    << fixed(100 * f_gen / (gen * peak), 1) << " % | " << fixed(baseline[key].second / gen, 2)
                    << "x | " << fixed(100 * fwd_t.utilisation(t), 0) << " / " << fixed(100 * gen_t.utilisation(t), 0)
                    << " % |\n"
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
  (void)globals;
  print_footer();
}

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
  std::int64_t test = 32;
  std::int64_t gen_tokens = 8;
  std::int64_t eval_batch = 16;
  std::uint64_t seed = 1;
};

/// `n` random PEFT-style modules (rank r, alpha 2r, q and v of every attention) fitting `m`.
lora::LoraLibrary random_library(model::T5ModelImpl& m, std::int64_t n, std::int64_t r, std::uint64_t seed) {
  torch::manual_seed(seed);
  std::vector<lora::LoraAdapter> adapters;
  for (std::int64_t i = 0; i < n; ++i) {
    lora::LoraAdapter a;
    a.name = cat("random_", std::setw(3), std::setfill('0'), i);
    a.config.r = r;
    a.config.lora_alpha = static_cast<double>(2 * r);
    a.config.target_modules = {"q", "v"};
    for (const auto& name : m.projection_names()) {
      if (!a.config.targets(name)) continue;
      auto p = m.projection(name);
      a.modules[name] = {torch::randn({r, p->in_features()}) / std::sqrt(static_cast<double>(p->in_features())),
                         torch::randn({p->out_features(), r}) * 0.01};
    }
    adapters.push_back(std::move(a));
  }
  return lora::LoraLibrary::from_adapters(std::move(adapters), "random library");
}

/// Token ids of `count` sequences, lengths uniform in [mean − spread, mean + spread] (at least 2), EOS last.
std::vector<std::vector<std::int64_t>> random_sequences(core::Rng& rng, std::size_t count, std::int64_t mean,
                                                        std::int64_t spread, std::int64_t vocab) {
  std::vector<std::vector<std::int64_t>> out;
  for (std::size_t i = 0; i < count; ++i) {
    const auto len = std::max<std::int64_t>(
        2, mean - spread + static_cast<std::int64_t>(rng.below(static_cast<std::uint64_t>(2 * spread + 1))));
    std::vector<std::int64_t> ids;
    for (std::int64_t j = 0; j + 1 < len; ++j) ids.push_back(2 + static_cast<std::int64_t>(rng.below(static_cast<std::uint64_t>(vocab - 2))));
    ids.push_back(1);
    out.push_back(std::move(ids));
  }
  return out;
}

std::vector<std::vector<double>> random_candidates(core::Rng& rng, std::int64_t k, std::int64_t n) {
  std::vector<std::vector<double>> c(static_cast<std::size_t>(k), std::vector<double>(static_cast<std::size_t>(n)));
  for (auto& w : c) {
    for (auto& x : w) x = -1.5 + 3.0 * rng.uniform();
  }
  return c;
}

struct Profile {
  double compose = 0, encoder = 0, encoder_lora = 0, decoder = 0, decoder_lora = 0, head = 0, evaluate = 0;
};

void run_learn_bench(const LearnBenchArgs& a, Globals& globals) {
  const auto sizes = split_list(a.sizes);
  const auto dtypes = split_list(a.dtypes);
  const auto ks = parse_ints(a.ks, "--k");
  for (const auto& s : sizes) flan_t5_config(s);
  for (const auto& d : dtypes) model::parse_compute_dtype(d);
  if (a.modules < 1 || a.rank < 1 || a.shots < 1 || a.test < 0 || a.gen_tokens < 1 || a.budget < 1) {
    fail("bench learn: --modules, --rank, --shots, --budget and --gen-tokens must be >= 1");
  }
  const int threads = worker::setup_threads(globals.threads > 0 ? globals.threads : 1);
  print_header(
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
          "- Python reference (quoted, not measured here; HF + PEFT + nevergrad on one core of the development "
          "machine): 0.36 / 1.3 / 5.7 s per evaluation (small / base / large), 19 s per 40-evaluation run of "
          "flan-t5-small including 4.5 s reloading the model, 0.11 s per test example\n"));

  struct EvalRow {
    std::string size, dtype;
    std::int64_t k;
    double per_forward;
    double utilisation;
  };
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
    auto inputs = random_sequences(rng, static_cast<std::size_t>(a.shots), a.input_tokens, a.input_spread, cfg.vocab_size);
    auto targets =
        random_sequences(rng, static_cast<std::size_t>(a.shots), a.target_tokens, a.target_spread, cfg.vocab_size);
    auto tests = random_sequences(rng, static_cast<std::size_t>(a.test), a.input_tokens, a.input_spread, cfg.vocab_size);
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
        std::vector<double> compose, enc, enc_base, dec, dec_base, head, whole;
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
          head.push_back(t_head), enc_base.push_back(t_enc0), dec_base.push_back(t_dec0);
        }
        Profile p;
        p.evaluate = median(whole);
        p.compose = median(compose);
        p.encoder = median(enc);
        p.encoder_lora = std::max(0.0, p.encoder - median(enc_base));
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

  const double base_k1_f32 = [&] {
    for (const auto& e : evals) {
      if (e.k == ks.front() && e.dtype == dtypes.front()) return e.per_forward / static_cast<double>(e.k);
    }
    return 0.0;
  }();
  (void)base_k1_f32;
  const auto own_tag = cat(dtypes.front(), " k=", ks.front());
  std::cout << "Per evaluation (padding: " << fixed(100 * padding_share, 1)
            << " % of the encoder positions of the few-shot batch are padding):\n\n"
            << "| model | dtype | k | s / evaluate() | s / candidate | speed-up vs own " << own_tag
            << " | Python reference s / evaluation (quoted) | speed-up vs reference | CPU util |\n"
            << "|---|---|---:|---:|---:|---:|---:|---:|---:|\n";
  for (const auto& e : evals) {
    const double per = e.per_forward / static_cast<double>(e.k);
    const int ri = reference_index(e.size);
    std::cout << "| flan-t5-" << e.size << " | " << e.dtype << " | " << e.k << " | " << sig(e.per_forward) << " | "
              << sig(per) << " | " << fixed(own_baseline[e.size] / per, 2) << "x | "
              << (ri >= 0 ? sig(kRefEvalSeconds[ri]) : "–") << " | "
              << (ri >= 0 ? fixed(kRefEvalSeconds[ri] / per, 1) + "x" : "–") << " | " << fixed(100 * e.utilisation, 0)
              << " % |\n";
  }

  std::cout << "\nWhole run (" << a.budget << " evaluations + merge + " << a.test << " test answers):\n\n"
            << "| model | dtype | search s | merge s | test s / example | whole run s | speed-up vs own "
            << dtypes.front() << " | Python reference s (quoted) | speed-up vs reference | CPU util |\n"
            << "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n";
  std::map<std::string, double> run_base;
  for (const auto& r : runs) {
    if (!run_base.count(r.size)) run_base[r.size] = r.total;
    const bool ref = r.size == "small" && a.budget == 40;
    const double ref_total = kRefRunSeconds + kRefTestSeconds * static_cast<double>(a.test);
    std::cout << "| flan-t5-" << r.size << " | " << r.dtype << " | " << sig(r.search) << " | " << sig(r.merge) << " | "
              << (a.test > 0 ? sig(r.test / static_cast<double>(a.test)) : "–") << " | " << sig(r.total) << " | "
              << fixed(run_base[r.size] / r.total, 2) << "x | " << (ref ? sig(ref_total) : "–") << " | "
              << (ref ? fixed(ref_total / r.total, 1) + "x" : "–") << " | " << fixed(100 * r.utilisation, 0) << " % |\n";
  }
  std::cout << "\nThe reference's whole run is its 19 s (40 evaluations, of which " << kRefReloadSeconds
            << " s reload the model) plus " << kRefTestSeconds << " s per test example; ours keeps the model loaded.\n";

  std::cout << "\nWhere an evaluation's time goes (steps of evaluate() timed apart; LoRA path = the same "
               "forward minus one without the low-rank additions; medians; k candidates per forward):\n\n"
            << "| model | dtype | k | compose ms | encoder ms (LoRA path) | decoder ms (LoRA path) | LM head + loss ms | "
               "sum ms | evaluate() ms |\n"
            << "|---|---|---:|---:|---:|---:|---:|---:|---:|\n";
  for (const auto& [name, p] : profiles) {
    const double sum = p.compose + p.encoder + p.decoder + p.head;
    auto pct = [&](double x) { return fixed(100 * x / sum, 0) + " %"; };
    std::cout << "| " << name << " | " << sig(p.compose * 1e3) << " (" << pct(p.compose) << ") | "
              << sig(p.encoder * 1e3) << " (" << pct(p.encoder) << "; " << sig(p.encoder_lora * 1e3) << ") | "
              << sig(p.decoder * 1e3) << " (" << pct(p.decoder) << "; " << sig(p.decoder_lora * 1e3) << ") | "
              << sig(p.head * 1e3) << " (" << pct(p.head) << ") | " << sig(sum * 1e3) << " | " << sig(p.evaluate * 1e3)
              << " |\n";
  }
  print_footer();
}

// ------------------------------------------------------------------------------------------------
// bench solver

struct SolverBenchArgs {
  std::string ranks;  // spawn mode: "1,2,4"
  std::string launcher = "mpirun --oversubscribe";
  std::string config;  // an existing job instead of the generated one
  std::string world;   // a world made earlier (children get it from the parent)
  std::string json_out;
  std::vector<std::string> overrides;
  std::string shape = "tiny";
  std::string dtype = "f32";
  std::int64_t tasks = 4;
  std::int64_t seeds = 2;
  std::int64_t library_modules = 20;
  std::int64_t rank = 16;
  std::int64_t test = 16;
  std::int64_t max_new_tokens = 8;
  int budget = 40;
  std::int64_t project_workers = 64;
  std::uint64_t seed = 1;
};

const std::vector<std::string>& world_words() {
  static const std::vector<std::string> w = {
      "cat",   "dog",   "cow",  "pig",   "fox",   "owl",  "bee",   "hen",  "red",   "blue",  "green", "pink",
      "apple", "pear",  "plum", "lime",  "cup",   "pen",  "box",   "car",  "river", "stone", "cloud", "train",
      "seven", "three", "left", "right", "north", "south", "small", "large", "true", "false", "open",  "closed"};
  return w;
}

std::string random_sentence(core::Rng& rng, std::size_t words) {
  const auto& pool = world_words();
  std::string s;
  for (std::size_t i = 0; i < words; ++i) s += (i ? " " : "") + pool[rng.below(pool.size())];
  return s;
}

/// A small self-made job under `dir`: a SentencePiece model (spm_train), a random model of `shape` with its
/// vocabulary, random rank-r q/v modules and `tasks` JSONL tasks, described by `dir`/job.toml (returned).
std::string make_solver_world(const fs::path& dir, const SolverBenchArgs& a) {
  fs::create_directories(dir / "model");
  core::Rng rng(a.seed);
  {
    std::ofstream corpus(dir / "corpus.txt");
    for (int i = 0; i < 3000; ++i) corpus << random_sentence(rng, 4 + rng.below(12)) << "\n";
  }
  const auto cmd = cat("spm_train --input=", (dir / "corpus.txt").string(), " --model_prefix=",
                       (dir / "model" / "spiece").string(),
                       " --vocab_size=120 --hard_vocab_limit=false --model_type=unigram --character_coverage=1.0"
                       " --pad_id=0 --eos_id=1 --unk_id=2 --bos_id=-1 --minloglevel=2 > ",
                       (dir / "spm_train.log").string(), " 2>&1");
  if (std::system(cmd.c_str()) != 0) {
    fail("bench solver: spm_train failed (Debian package 'sentencepiece'); log: ", (dir / "spm_train.log").string());
  }
  auto tok = text::T5Tokenizer::load((dir / "model" / "spiece.model").string());
  auto cfg = flan_t5_config(a.shape);
  cfg.vocab_size = tok.vocab_size();
  auto m = model::random_t5(cfg, a.seed);
  model::save_t5(m, (dir / "model").string());
  torch::manual_seed(a.seed);
  for (std::int64_t i = 0; i < a.library_modules; ++i) {
    lora::LoraAdapter ad;
    ad.name = cat("module_", std::setw(3), std::setfill('0'), i);
    ad.config.r = a.rank;
    ad.config.lora_alpha = static_cast<double>(2 * a.rank);
    ad.config.target_modules = {"q", "v"};
    for (const auto& name : m->projection_names()) {
      if (!ad.config.targets(name)) continue;
      auto p = m->projection(name);
      ad.modules[name] = {torch::randn({a.rank, p->in_features()}) / std::sqrt(static_cast<double>(p->in_features())),
                          torch::randn({p->out_features(), a.rank}) * 0.1};
    }
    lora::save_adapter(ad, (dir / "library" / ad.name).string());
  }
  std::ostringstream toml;
  toml << "# Generated by `lorahub bench solver`.\n[model]\npath = \"model\"\ndtype = \"" << a.dtype << "\"\n\n"
       << "[library]\npath = \"library\"\nmodules = " << std::min<std::int64_t>(20, a.library_modules) << "\n\n"
       << "[data]\n";
  for (std::int64_t t = 0; t < a.tasks; ++t) {
    const auto name = cat("task_", t);
    const auto tdir = dir / "tasks" / name;
    fs::create_directories(tdir);
    for (const auto* part : {"train", "test"}) {
      const bool train = std::string(part) == "train";
      std::ofstream out(tdir / cat(part, ".jsonl"));
      const std::int64_t n = train ? 20 : a.test;
      for (std::int64_t i = 0; i < n; ++i) {
        nlohmann::json ex = {{"input", cat("Task ", t, ": ", random_sentence(rng, 40 + rng.below(20)))},
                             {"target", random_sentence(rng, 1)}};
        out << ex.dump() << "\n";
      }
    }
    toml << "[[data.task]]\nname = \"" << name << "\"\ntrain = \"tasks/" << name << "/train.jsonl\"\ntest = \"tasks/"
         << name << "/test.jsonl\"\n";
  }
  toml << "\n[run]\nmethods = [\"lorahub\"]\nseeds = [";
  for (std::int64_t s = 1; s <= a.seeds; ++s) toml << (s > 1 ? ", " : "") << s;
  toml << "]\nshots = 5\n\n[lorahub]\noptimizer = \"cobyla\"\nbudget = " << a.budget << "\n\n[eval]\nmax_new_tokens = "
       << a.max_new_tokens << "\nbatch_size = 16\n\n[output]\npath = \"results.h5\"\n";
  const auto path = (dir / "job.toml").string();
  std::ofstream f(path);
  f << toml.str();
  if (!f) fail(path, ": cannot write");
  return path;
}

struct SolverRow {
  int ranks = 0;
  std::int64_t workers = 0;
  bool broadcast = false;
  double load_s = 0, wall_s = 0, busy_s = 0, efficiency = 0, coord_s_per_msg = 0, scheduler_s = 0, mpi_s = 0;
  std::int64_t runs = 0, failed = 0, evals = 0, items = 0, messages = 0;

  nlohmann::json to_json() const {
    return {{"ranks", ranks},    {"workers", workers},   {"broadcast", broadcast},   {"load_s", load_s},
            {"wall_s", wall_s},  {"busy_s", busy_s},     {"efficiency", efficiency}, {"coord_s_per_msg", coord_s_per_msg},
            {"runs", runs},      {"failed", failed},     {"evals", evals},           {"items", items},
            {"messages", messages}, {"scheduler_s", scheduler_s}, {"mpi_s", mpi_s}};
  }
  static SolverRow from_json(const nlohmann::json& j) {
    SolverRow r;
    r.ranks = j.at("ranks");
    r.workers = j.at("workers");
    r.broadcast = j.at("broadcast");
    r.load_s = j.at("load_s");
    r.wall_s = j.at("wall_s");
    r.busy_s = j.at("busy_s");
    r.efficiency = j.at("efficiency");
    r.coord_s_per_msg = j.at("coord_s_per_msg");
    r.runs = j.at("runs");
    r.failed = j.at("failed");
    r.evals = j.at("evals");
    r.items = j.at("items");
    r.messages = j.at("messages");
    r.scheduler_s = j.at("scheduler_s");
    r.mpi_s = j.at("mpi_s");
    return r;
  }
};

/// The measurement itself, on every rank of this MPI world: the job once per broadcast setting (once on one rank).
std::vector<SolverRow> measure_solver(const SolverBenchArgs& a, Globals& globals) {
  distributed::Comm comm;  // initialises MPI once for both jobs below
  std::string world = a.world;
  std::string error;
  if (comm.is_root()) {
    try {
      if (world.empty()) {
        world = fresh_temp_dir("solver").string();
        if (a.config.empty()) make_solver_world(world, a);
      }
    } catch (const std::exception& e) {
      error = e.what();
    }
  }
  comm.agree_or_throw(error.empty(), error);
  comm.broadcast(world);
  auto base = job::JobConfig::from_toml_file(a.config.empty() ? (fs::path(world) / "job.toml").string() : a.config);
  base.apply_overrides(a.overrides);
  base.output.resume = false;

  std::vector<SolverRow> rows;
  const std::vector<bool> modes = comm.size() == 1 ? std::vector<bool>{false} : std::vector<bool>{true, false};
  for (bool bcast : modes) {
    auto config = base;
    config.schedule.broadcast = bcast;
    config.output.path = (fs::path(world) / cat("results-", comm.size(), bcast ? "-bcast" : "-files", ".h5")).string();
    if (comm.is_root()) fs::remove(config.output.path);
    comm.barrier();
    runner::RunnerOptions options;
    options.threads = globals.threads;
    auto outcome = runner::run_job(config, options, worker::backend());
    if (!comm.is_root()) continue;
    SolverRow r;
    r.ranks = comm.size();
    r.workers = static_cast<std::int64_t>(outcome.stats.workers.size());
    r.broadcast = bcast;
    r.load_s = outcome.load_seconds;
    r.wall_s = outcome.stats.wall_seconds;
    for (const auto& w : outcome.stats.workers) r.busy_s += w.busy_seconds;
    r.efficiency = outcome.stats.efficiency;
    r.coord_s_per_msg = outcome.stats.coordinator_seconds_per_message();
    r.runs = outcome.runs;
    r.failed = outcome.failed;
    r.evals = outcome.evaluations;
    r.items = static_cast<std::int64_t>(outcome.stats.items);
    r.messages = static_cast<std::int64_t>(outcome.stats.messages_sent + outcome.stats.messages_received);
    r.scheduler_s = outcome.stats.scheduler_seconds;
    r.mpi_s = outcome.stats.mpi_seconds;
    rows.push_back(r);
  }
  if (comm.is_root() && a.world.empty()) fs::remove_all(world);
  return rows;
}

void print_solver_tables(const std::vector<SolverRow>& rows, std::int64_t project_workers) {
  std::cout << "| ranks | workers | inputs | load s | runs | evaluations | wall s | runs/s | evaluations/s | "
               "worker busy s / run | efficiency | coordinator µs / message (scheduler + MPI) | messages / run |\n"
            << "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
  for (const auto& r : rows) {
    std::cout << "| " << r.ranks << " | " << r.workers << " | "
              << (r.ranks == 1 ? "inline" : r.broadcast ? "broadcast" : "each rank reads") << " | " << sig(r.load_s)
              << " | " << r.runs << (r.failed ? cat(" (", r.failed, " failed)") : "") << " | " << r.evals << " | "
              << sig(r.wall_s) << " | " << sig(r.runs / r.wall_s) << " | " << sig(static_cast<double>(r.evals) / r.wall_s)
              << " | " << sig(r.busy_s / std::max<double>(1.0, static_cast<double>(r.runs))) << " | "
              << fixed(r.efficiency, 3) << " | " << sig(r.coord_s_per_msg * 1e6) << " ("
              << sig(r.messages ? r.scheduler_s / static_cast<double>(r.messages) * 1e6 : 0) << " + "
              << sig(r.messages ? r.mpi_s / static_cast<double>(r.messages) * 1e6 : 0) << ") | "
              << sig(static_cast<double>(r.messages) / std::max<double>(1.0, static_cast<double>(r.runs))) << " |\n";
  }
  std::cout << "\nProjection to " << project_workers
            << " workers from each row (evaluations/s = min(W · e / b, 1 / (c · m)) · E; b = worker busy s per run, "
               "e = measured efficiency, c = coordinator s per message, m = messages per run, E = evaluations per "
               "run):\n\n"
            << "| from ranks | inputs | per-worker evaluations/s (busy) | e | worker bound evaluations/s | coordinator "
               "bound evaluations/s | projected evaluations/s | limited by |\n"
            << "|---:|---|---:|---:|---:|---:|---:|---|\n";
  for (const auto& r : rows) {
    if (r.ranks == 1 || r.runs == 0 || r.evals == 0) continue;
    const double runs = static_cast<double>(r.runs);
    const double per_run_evals = static_cast<double>(r.evals) / runs;
    const double busy_per_run = r.busy_s / runs;
    const double workers_bound = static_cast<double>(project_workers) * r.efficiency / busy_per_run * per_run_evals;
    const double msgs_per_run = static_cast<double>(r.messages) / runs;
    const double coord_bound = r.coord_s_per_msg > 0 ? per_run_evals / (r.coord_s_per_msg * msgs_per_run) : INFINITY;
    std::cout << "| " << r.ranks << " | " << (r.broadcast ? "broadcast" : "each rank reads") << " | "
              << sig(per_run_evals / busy_per_run) << " | " << fixed(r.efficiency, 3) << " | " << sig(workers_bound)
              << " | " << sig(coord_bound) << " | " << sig(std::min(workers_bound, coord_bound)) << " | "
              << (workers_bound <= coord_bound ? "workers" : "coordinator") << " |\n";
  }
}

void run_solver_bench(const SolverBenchArgs& a, Globals& globals) {
  if (a.ranks.empty()) {
    // Inside an MPI launch (or one process): measure this world.
    const auto started = started_line();
    auto rows = measure_solver(a, globals);
    if (core::log_rank() != 0) return;
    if (!a.json_out.empty()) {
      nlohmann::json j = nlohmann::json::array();
      for (const auto& r : rows) j.push_back(r.to_json());
      std::ofstream f(a.json_out);
      f << j.dump() << "\n";
      if (!f) fail(a.json_out, ": cannot write");
      return;
    }
    print_header("Batch solver: one job through the `lorahub run` path",
                 "- rank 0 coordinates, ranks 1.. are workers (1 rank: inline); load s = inputs reaching every worker\n",
                 started);
    print_solver_tables(rows, a.project_workers);
    print_footer();
    return;
  }
  // Spawn mode: one MPI launch per rank count, on a world made once here.
  const auto ranks = parse_ints(a.ranks, "--ranks");
  const int threads = globals.threads > 0 ? globals.threads : 1;
  worker::setup_threads(threads);
  const auto dir = fresh_temp_dir("solver");
  if (a.config.empty()) {
    core::log_info(cat("bench solver: generating the job in ", dir));
    make_solver_world(dir, a);
  }
  print_header("Batch solver: one job through the `lorahub run` path",
               cat("- job: ", a.config.empty() ? cat(a.tasks, " generated tasks x ", a.seeds, " seeds, lorahub, random ",
                                                       a.shape, "-shaped model (", a.dtype, "), ", a.library_modules,
                                                       " random rank-", a.rank, " modules, budget ", a.budget, ", ",
                                                       a.test, " test examples of ", a.max_new_tokens, " tokens at most")
                                                 : a.config,
                   "\n- each rank count is one `", a.launcher, " -n N lorahub --threads ", threads,
                   " bench solver` launch; rank 0 coordinates, ranks 1.. are workers (1 rank: inline)\n"));
  std::vector<SolverRow> rows;
  for (auto n : ranks) {
    const auto json = (dir / cat("rows-", n, ".json")).string();
    const auto log = (dir / cat("log-", n, ".txt")).string();
    std::vector<std::string> args;
    std::istringstream launcher(a.launcher);
    for (std::string w; launcher >> w;) args.push_back(w);
    if (args.empty()) fail("bench solver: --launcher is empty");
    for (const auto& w : std::vector<std::string>{"-n", std::to_string(n), self_exe(), "--threads",
                                                   std::to_string(threads), "bench", "solver", "--world", dir.string(),
                                                   "--json", json}) {
      args.push_back(w);
    }
    if (!a.config.empty()) args.insert(args.end(), {"--config", a.config});
    for (const auto& o : a.overrides) args.insert(args.end(), {"--set", o});
    core::log_info(cat("bench solver: ", n, " rank(s); log ", log));
    auto child = spawn_and_wait(args, log);
    if (!WIFEXITED(child.status) || WEXITSTATUS(child.status) != 0 || !fs::exists(json)) {
      fail("bench solver: the ", n, "-rank launch failed; the end of ", log, ":\n", tail_of(log, 3000));
    }
    std::ifstream in(json);
    for (const auto& j : nlohmann::json::parse(in)) rows.push_back(SolverRow::from_json(j));
  }
  print_solver_tables(rows, a.project_workers);
  fs::remove_all(dir);
  print_footer();
}

}  // namespace

void add_bench_commands(CLI::App& app, Globals& globals) {
  auto* bench = app.add_subcommand("bench", "Benchmarks (docs/benchmarks.md): each prints Markdown tables on stdout");
  bench->require_subcommand(1);
  {
    auto* cmd = bench->add_subcommand(
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
    cmd->callback([a, &globals] { run_engine_bench(*a, globals); });
  }
  {
    auto* cmd = bench->add_subcommand("load-rss", "Internal: load a model and report RSS (run by `bench engine`)");
    cmd->group("");
    auto dir = std::make_shared<std::string>();
    auto dtype = std::make_shared<std::string>("f32");
    auto out = std::make_shared<std::string>();
    cmd->add_option("--model", *dir)->required();
    cmd->add_option("--dtype", *dtype);
    cmd->add_option("--out", *out)->required();
    cmd->callback([dir, dtype, out, &globals] {
      worker::setup_threads(globals.threads > 0 ? globals.threads : 1);
      run_load_probe(*dir, *dtype, *out);
    });
  }
  {
    auto* cmd = bench->add_subcommand(
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
    cmd->callback([a, &globals] { run_learn_bench(*a, globals); });
  }
  {
    auto* cmd = bench->add_subcommand(
        "solver", "Runs/s, evaluations/s, efficiency and coordinator cost of a job through `lorahub run`, with a projection");
    auto a = std::make_shared<SolverBenchArgs>();
    cmd->add_option("--ranks", a->ranks,
                    "Rank counts to launch (e.g. 1,2,4), each with --launcher; without it, measure this MPI world");
    cmd->add_option("--launcher", a->launcher, "MPI launcher prefix for --ranks (gets -n N appended)");
    cmd->add_option("--config", a->config, "Benchmark this job file instead of the generated job");
    cmd->add_option("--set", a->overrides, "Override a job setting: section.key=value (repeatable)");
    cmd->add_option("--shape", a->shape, "Generated model shape: tiny, small, base, large");
    cmd->add_option("--dtype", a->dtype, "Generated job's dtype")->check(CLI::IsMember({"f32", "bf16"}));
    cmd->add_option("--tasks", a->tasks, "Generated tasks")->check(CLI::PositiveNumber);
    cmd->add_option("--seeds", a->seeds, "Seeds per task (runs = tasks x seeds)")->check(CLI::PositiveNumber);
    cmd->add_option("--library-modules", a->library_modules, "Generated library size")->check(CLI::PositiveNumber);
    cmd->add_option("--rank", a->rank, "LoRA rank of the generated modules")->check(CLI::PositiveNumber);
    cmd->add_option("--test", a->test, "Test examples per generated task")->check(CLI::PositiveNumber);
    cmd->add_option("--max-new-tokens", a->max_new_tokens, "Generation limit of the test answers");
    cmd->add_option("--budget", a->budget, "Evaluations per run")->check(CLI::PositiveNumber);
    cmd->add_option("--project-workers", a->project_workers, "Workers of the projection");
    cmd->add_option("--seed", a->seed, "Seed of the generated job");
    cmd->add_option("--world", a->world)->group("");
    cmd->add_option("--json", a->json_out)->group("");
    cmd->callback([a, &globals] { run_solver_bench(*a, globals); });
  }
}

}  // namespace lorahub::app
