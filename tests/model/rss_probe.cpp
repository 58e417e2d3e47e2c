// Measures what loading a safetensors file costs in memory, to show the loader keeps no second copy.
//   checkpoint_rss_probe generate <path> <MiB>   writes F32 tensors of 64 MiB each (not timed, not a test)
//   checkpoint_rss_probe load <path> [--copy]    loads, reads every element, prints RSS (--copy: clones too)
#include <sys/resource.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "lorahub/core/error.h"
#include "lorahub/model/checkpoint.h"

namespace {

// VmRSS / RssAnon / RssFile from /proc/self/status, in MiB.
void print_rss(const char* when) {
  std::ifstream in("/proc/self/status");
  std::string line;
  std::string out;
  while (std::getline(in, line)) {
    for (const char* key : {"VmRSS:", "RssAnon:", "RssFile:"}) {
      if (line.rfind(key, 0) == 0) {
        const long kb = std::stol(line.substr(std::strlen(key)));
        out += std::string(" ") + key + " " + std::to_string(kb / 1024) + " MiB";
      }
    }
  }
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  std::printf("%-28s%s  maxrss: %ld MiB\n", when, out.c_str(), usage.ru_maxrss / 1024);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const std::string mode = argc > 1 ? argv[1] : "";
    if (mode == "generate" && argc == 4) {
      const std::size_t mib = std::stoul(argv[3]);
      const std::size_t per = 64;  // MiB per tensor; all tensors share one buffer to keep this process small
      std::vector<float> buffer(per * 1024 * 1024 / sizeof(float));
      for (std::size_t i = 0; i < buffer.size(); ++i) buffer[i] = static_cast<float>(i % 1000) * 0.001f;
      std::vector<lorahub::core::TensorRef> refs;
      for (std::size_t t = 0; t * per < mib; ++t) {
        refs.push_back({"w" + std::to_string(1000 + t), lorahub::core::DType::kF32,
                        {static_cast<int64_t>(per * 1024), 256}, buffer.data(), buffer.size() * sizeof(float)});
      }
      lorahub::core::write_safetensors(argv[2], refs);
      return 0;
    }
    if (mode == "load" && (argc == 3 || argc == 4)) {
      const bool copy = argc == 4 && std::string(argv[3]) == "--copy";
      print_rss("start:");
      auto sd = lorahub::model::load_tensor_file(argv[2]);
      print_rss("after load:");
      double total = 0;
      std::size_t bytes = 0;
      for (const auto& [name, t] : sd) {
        total += t.sum().item<double>();
        bytes += t.nbytes();
      }
      std::printf("%zu tensors, %.1f MiB, checksum %.6g\n", sd.size(), bytes / 1048576.0, total);
      print_rss("after reading every byte:");
      if (copy) {
        std::vector<torch::Tensor> clones;
        for (const auto& [name, t] : sd) clones.push_back(t.clone());
        print_rss("after cloning (a 2nd copy):");
      }
      return 0;
    }
    std::fprintf(stderr, "usage: %s generate <path> <MiB> | load <path> [--copy]\n", argv[0]);
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
