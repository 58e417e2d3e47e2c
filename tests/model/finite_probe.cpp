// Measures what load_t5's NaN/Inf check (RuntimeOptions::check_finite) costs against the load itself, for a
// flan-t5-large sized model (not a test: timings depend on the machine; see the numbers in include/lorahub/model/t5.h).
//   finite_probe make <dir>          writes a random flan-t5-large sized model (783M parameters, 3.1 GB f32)
//   finite_probe time <dir> [reps]   loads it in f32 and bf16, with and without the check, `reps` times each
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "lorahub/core/error.h"
#include "lorahub/demo/synthetic.h"
#include "lorahub/model/checkpoint.h"
#include "lorahub/model/t5.h"

namespace lm = lorahub::model;

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const std::string mode = argc > 1 ? argv[1] : "";
    if (mode == "make" && argc == 3) {
      const auto config = lorahub::demo::flan_t5_config("large");
      std::printf("%lld parameters\n", static_cast<long long>(config.num_parameters()));
      auto model = lm::random_t5(config, 1);
      lm::save_t5(model, argv[2]);
      return 0;
    }
    if (mode == "time" && (argc == 3 || argc == 4)) {
      const int reps = argc == 4 ? std::stoi(argv[3]) : 3;
      for (const auto dtype : {lm::ComputeDType::kF32, lm::ComputeDType::kBF16}) {
        std::vector<double> off, on, scan;
        for (int r = 0; r < reps; ++r) {
          // Alternating, so that page-cache state and machine load affect both alike.
          for (const bool check : {false, true}) {
            lm::RuntimeOptions options;
            options.dtype = dtype;
            options.check_finite = check;
            const auto start = std::chrono::steady_clock::now();
            auto model = lm::load_t5(argv[2], options);
            (check ? on : off).push_back(seconds_since(start));
            if (!check) {
              // The check alone over the loaded weights (pages now mapped).
              const auto t0 = std::chrono::steady_clock::now();
              for (const auto& p : model->named_parameters()) lm::check_finite(p.value(), argv[2], p.key());
              scan.push_back(seconds_since(t0));
            }
          }
        }
        const double a = median(off), b = median(on);
        std::printf("%s: load %.3f s without the check, %.3f s with it (+%.1f %%); the check alone on loaded weights "
                    "%.3f s (median of %d)\n",
                    lm::to_string(dtype).c_str(), a, b, 100.0 * (b - a) / a, median(scan), reps);
      }
      return 0;
    }
    std::fprintf(stderr, "usage: finite_probe make <dir> | finite_probe time <dir> [reps]\n");
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "finite_probe: %s\n", e.what());
    return 1;
  }
}
