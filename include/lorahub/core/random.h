#pragma once
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace lorahub::core {

/// CPython's `random.Random` (MT19937), bit-compatible for the calls the LoraHub reference makes:
/// `random.seed(s)`, `random.random()`, `random.getrandbits(k)`, `random.sample(range(n), k)` and
/// `random.shuffle(list)`, so the reference's module subsets and few-shot picks can be replayed.
class PyRandom {
 public:
  /// random.seed(seed) for an int seed (CPython seeds init_by_array with the 32-bit words of |seed|).
  explicit PyRandom(std::int64_t seed);

  /// One MT19937 output (genrand_uint32).
  std::uint32_t next_u32();
  /// random.random(): 53-bit float in [0, 1).
  double random();
  /// random.getrandbits(k), 1 <= k <= 64.
  std::uint64_t getrandbits(int k);
  /// random._randbelow(n) (getrandbits rejection), n >= 1.
  std::uint64_t randbelow(std::uint64_t n);
  /// random.sample(range(n), k): indices in the order CPython returns them (both of its strategies).
  std::vector<std::size_t> sample(std::size_t n, std::size_t k);
  /// random.shuffle(list(range(n))).
  std::vector<std::size_t> shuffled_indices(std::size_t n);

  /// random.shuffle(v) in place.
  template <class T>
  void shuffle(std::vector<T>& v) {
    for (std::size_t i = v.size(); i-- > 1;) {
      std::size_t j = static_cast<std::size_t>(randbelow(i + 1));
      std::swap(v[i], v[j]);
    }
  }

 private:
  void init_genrand(std::uint32_t s);
  void init_by_array(const std::vector<std::uint32_t>& key);
  std::uint32_t mt_[624];
  int mti_ = 625;
};

/// The project's own seeded generator: identical streams on every platform and compiler
/// (no std:: distributions, whose outputs are implementation-defined).
class Rng {
 public:
  explicit Rng(std::uint64_t seed);
  std::uint64_t next_u64();
  /// Uniform in [0, 1) with 53 random bits.
  double uniform();
  /// Standard normal (Box-Muller on uniform()).
  double normal();
  /// Uniform integer in [0, n), unbiased, n >= 1.
  std::uint64_t below(std::uint64_t n);
  /// A fresh generator for a sub-stream (e.g. one per run) derived from this seed and `stream`.
  static Rng derive(std::uint64_t seed, std::uint64_t stream);

 private:
  std::uint64_t s_[4];
  bool has_spare_ = false;
  double spare_ = 0.0;
};

}  // namespace lorahub::core
