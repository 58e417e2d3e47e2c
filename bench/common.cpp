#include "common.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <thread>

#include <torch/version.h>

#include "lorahub/core/error.h"
#include "lorahub/core/log.h"

extern char** environ;

namespace lorahub::bench {
using core::cat;
using core::fail;

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


std::string fixed(double v, int digits) {
  std::ostringstream os;
  os << std::fixed << std::setprecision(digits) << v;
  return os.str();
}

// Significant figures without exponent noise, for times and rates spanning decades.
std::string sig(double v, int digits) {
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

std::string util_cell(double utilisation) {
  return fixed(100 * utilisation, 0) + " %" + (utilisation < 0.9 ? " ⚠" : "");
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

// What decides the GEMM paths: f32 in OpenBLAS (AVX2/AVX-512), bf16 in oneDNN only with AVX-512 BW/VL/DQ.
static std::string vector_isa() {
#if defined(__x86_64__)
  if (__builtin_cpu_supports("avx512bf16")) return "AVX512-BF16";
  if (__builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq")) {
    return "AVX-512, no BF16";
  }
  if (__builtin_cpu_supports("avx2")) return "AVX2, no AVX-512: bf16 matmuls have no fast path";
  return "no AVX2";
#else
  return "non-x86";
#endif
}

/// `started`: started_line() taken when the measurement began (default: now).
void print_header(const std::string& title, const std::string& notes, const std::string& started) {
  std::cout << "### " << title << "\n\n"
            << "- command: `" << command_line() << "`\n"
            << "- machine: " << first_field("/proc/cpuinfo", "model name") << ", "
            << std::thread::hardware_concurrency() << " hardware threads (" << vector_isa() << "), "
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

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    item.erase(0, item.find_first_not_of(" \t"));
    item.erase(item.find_last_not_of(" \t") + 1);
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

namespace {
// Every item of a comma list through `parse` (std::stod / std::stoll), which must consume it whole.
template <class T, class Parse>
std::vector<T> parse_list(const std::string& text, const std::string& what, const char* kind, Parse parse) {
  std::vector<T> out;
  for (const auto& item : split_list(text)) {
    try {
      std::size_t used = 0;
      out.push_back(parse(item, &used));
      if (used != item.size()) throw std::invalid_argument(item);
    } catch (const std::exception&) {
      fail(what, ": '", item, "' is not ", kind);
    }
  }
  return out;
}
}  // namespace

std::vector<double> parse_doubles(const std::string& text, const std::string& what) {
  return parse_list<double>(text, what, "a number", [](const std::string& s, std::size_t* used) { return std::stod(s, used); });
}

std::vector<std::int64_t> parse_ints(const std::string& text, const std::string& what) {
  return parse_list<std::int64_t>(text, what, "an integer",
                                  [](const std::string& s, std::size_t* used) { return std::stoll(s, used); });
}

}  // namespace lorahub::bench
