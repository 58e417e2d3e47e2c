#include <dlfcn.h>
#include <sched.h>

#include <algorithm>
#include <cstdlib>
#include <sstream>
#include <thread>

#include <torch/torch.h>

#include "commands.h"
#include "lorahub/core/error.h"

namespace lorahub::app {

int setup_threads(int threads, int ranks_on_node) {
  if (threads <= 0) {
    const int hardware = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    cpu_set_t mask;
    int allowed = hardware;
    if (sched_getaffinity(0, sizeof mask, &mask) == 0) allowed = std::max(1, CPU_COUNT(&mask));
    if (const char* slurm = std::getenv("SLURM_CPUS_PER_TASK")) {
      threads = std::max(1, std::atoi(slurm));  // Slurm sized this rank
    } else if (allowed < hardware) {
      threads = allowed;  // the launcher bound this rank to its own cores
    } else {
      threads = std::max(1, hardware / std::max(1, ranks_on_node));
    }
  }
  torch::set_num_threads(threads);
  // torch accepts the inter-op count once per process; later jobs in the same process (bench solver) keep it.
  static const bool interop_set = [] {
    torch::set_num_interop_threads(1);
    return true;
  }();
  (void)interop_set;
  // libtorch's float32 GEMMs run in OpenBLAS, whose pool torch::set_num_threads does not size; two pools
  // fighting over the same cores run several times slower.
  using SetThreads = void (*)(int);
  if (auto* fn = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) fn(threads);
  return threads;
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
      core::fail(what, ": '", item, "' is not ", kind);
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

}  // namespace lorahub::app
