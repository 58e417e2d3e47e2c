#include "common.h"

#include <dlfcn.h>
#include <sys/resource.h>
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
  if (model::cpu_has_fast_bf16()) return "AVX-512, no BF16";
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
// The GEMM baseline, random inputs and runtime options.

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

}  // namespace lorahub::bench
