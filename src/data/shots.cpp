#include "lorahub/data/shots.h"

#include <numeric>
#include <utility>

#include "lorahub/core/error.h"
#include "lorahub/core/random.h"

namespace lorahub::data {

std::vector<Example> pick_shots(const std::vector<Example>& pool, int k, std::int64_t seed,
                                Sampler sampler) {
  if (k < 0) core::fail("pick_shots: k must be >= 0, got ", k);
  const std::size_t n = pool.size();
  const auto count = static_cast<std::size_t>(k);
  if (count > n) core::fail("pick_shots: k = ", k, " exceeds the pool size ", n);

  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), std::size_t{0});
  if (sampler == Sampler::kCpython) {
    core::PyRandom rng(seed);
    rng.shuffle(order);
  } else {
    core::Rng rng(static_cast<std::uint64_t>(seed));
    for (std::size_t i = 0; i < count; ++i) {
      const std::size_t j = i + static_cast<std::size_t>(rng.below(n - i));
      std::swap(order[i], order[j]);
    }
  }
  std::vector<Example> shots;
  shots.reserve(count);
  for (std::size_t i = 0; i < count; ++i) shots.push_back(pool[order[i]]);
  return shots;
}

}  // namespace lorahub::data
