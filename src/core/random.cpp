#include "lorahub/core/random.h"

#include <cmath>
#include <numeric>
#include <unordered_set>

#include "lorahub/core/error.h"

namespace lorahub::core {

namespace {

constexpr int kMtN = 624;
constexpr int kMtM = 397;
constexpr std::uint32_t kMatrixA = 0x9908b0dfU;
constexpr std::uint32_t kUpperMask = 0x80000000U;
constexpr std::uint32_t kLowerMask = 0x7fffffffU;

int bit_length(std::uint64_t n) {
  int k = 0;
  while (n != 0) {
    ++k;
    n >>= 1;
  }
  return k;
}

std::uint64_t splitmix64(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

}  // namespace

// ---------------------------------------------------------------------------------------------
// PyRandom

PyRandom::PyRandom(std::int64_t seed) {
  // CPython takes abs(seed); -2^63 has no int64 negation, so negate in unsigned arithmetic.
  std::uint64_t magnitude = seed < 0 ? (~static_cast<std::uint64_t>(seed) + 1) : static_cast<std::uint64_t>(seed);
  std::vector<std::uint32_t> key;
  key.push_back(static_cast<std::uint32_t>(magnitude & 0xffffffffU));
  if ((magnitude >> 32) != 0) key.push_back(static_cast<std::uint32_t>(magnitude >> 32));
  init_by_array(key);
}

void PyRandom::init_genrand(std::uint32_t s) {
  mt_[0] = s;
  for (int i = 1; i < kMtN; ++i) {
    mt_[i] = 1812433253U * (mt_[i - 1] ^ (mt_[i - 1] >> 30)) + static_cast<std::uint32_t>(i);
  }
  mti_ = kMtN;
}

void PyRandom::init_by_array(const std::vector<std::uint32_t>& key) {
  init_genrand(19650218U);
  const int key_length = static_cast<int>(key.size());
  int i = 1;
  int j = 0;
  for (int k = kMtN > key_length ? kMtN : key_length; k > 0; --k) {
    mt_[i] = (mt_[i] ^ ((mt_[i - 1] ^ (mt_[i - 1] >> 30)) * 1664525U)) + key[static_cast<std::size_t>(j)] +
             static_cast<std::uint32_t>(j);
    ++i;
    ++j;
    if (i >= kMtN) {
      mt_[0] = mt_[kMtN - 1];
      i = 1;
    }
    if (j >= key_length) j = 0;
  }
  for (int k = kMtN - 1; k > 0; --k) {
    mt_[i] = (mt_[i] ^ ((mt_[i - 1] ^ (mt_[i - 1] >> 30)) * 1566083941U)) - static_cast<std::uint32_t>(i);
    ++i;
    if (i >= kMtN) {
      mt_[0] = mt_[kMtN - 1];
      i = 1;
    }
  }
  mt_[0] = 0x80000000U;
  mti_ = kMtN;
}

std::uint32_t PyRandom::next_u32() {
  if (mti_ >= kMtN) {
    int kk = 0;
    for (; kk < kMtN - kMtM; ++kk) {
      std::uint32_t y = (mt_[kk] & kUpperMask) | (mt_[kk + 1] & kLowerMask);
      mt_[kk] = mt_[kk + kMtM] ^ (y >> 1) ^ ((y & 1U) ? kMatrixA : 0U);
    }
    for (; kk < kMtN - 1; ++kk) {
      std::uint32_t y = (mt_[kk] & kUpperMask) | (mt_[kk + 1] & kLowerMask);
      mt_[kk] = mt_[kk + (kMtM - kMtN)] ^ (y >> 1) ^ ((y & 1U) ? kMatrixA : 0U);
    }
    std::uint32_t y = (mt_[kMtN - 1] & kUpperMask) | (mt_[0] & kLowerMask);
    mt_[kMtN - 1] = mt_[kMtM - 1] ^ (y >> 1) ^ ((y & 1U) ? kMatrixA : 0U);
    mti_ = 0;
  }
  std::uint32_t y = mt_[mti_++];
  y ^= (y >> 11);
  y ^= (y << 7) & 0x9d2c5680U;
  y ^= (y << 15) & 0xefc60000U;
  y ^= (y >> 18);
  return y;
}

double PyRandom::random() {
  const std::uint32_t a = next_u32() >> 5;
  const std::uint32_t b = next_u32() >> 6;
  return (a * 67108864.0 + b) * (1.0 / 9007199254740992.0);
}

std::uint64_t PyRandom::getrandbits(int k) {
  if (k < 0 || k > 64) fail("PyRandom::getrandbits: k must be in [0, 64], got ", k);
  if (k == 0) return 0;
  if (k <= 32) return next_u32() >> (32 - k);
  // CPython fills the result from the least significant 32-bit word up; the top word drops low bits.
  const std::uint64_t low = next_u32();
  const std::uint64_t high = next_u32() >> (64 - k);
  return (high << 32) | low;
}

std::uint64_t PyRandom::randbelow(std::uint64_t n) {
  if (n == 0) fail("PyRandom::randbelow: n must be >= 1, got 0");
  const int k = bit_length(n);
  std::uint64_t r = getrandbits(k);
  while (r >= n) r = getrandbits(k);
  return r;
}

std::vector<std::size_t> PyRandom::sample(std::size_t n, std::size_t k) {
  if (k > n) fail("PyRandom::sample: sample larger than population (k = ", k, ", n = ", n, ")");
  std::vector<std::size_t> result(k);
  // CPython compares the memory of an n-element list with a k-element set:
  // setsize = 21, plus 4 ** ceil(log(3k, 4)) when k > 5, with math.log's floating-point rounding.
  bool use_pool = true;
  if (k > 5) {
    const double exponent = std::ceil(std::log(static_cast<double>(k) * 3.0) / std::log(4.0));
    if (exponent < 31.0) {
      const std::uint64_t setsize = 21 + (std::uint64_t{1} << (2 * static_cast<int>(exponent)));
      use_pool = n <= setsize;
    }
  } else {
    use_pool = n <= 21;
  }
  if (use_pool) {
    std::vector<std::size_t> pool(n);
    std::iota(pool.begin(), pool.end(), std::size_t{0});
    for (std::size_t i = 0; i < k; ++i) {
      const auto j = static_cast<std::size_t>(randbelow(n - i));
      result[i] = pool[j];
      pool[j] = pool[n - i - 1];
    }
  } else {
    std::unordered_set<std::size_t> selected;
    selected.reserve(k);
    for (std::size_t i = 0; i < k; ++i) {
      auto j = static_cast<std::size_t>(randbelow(n));
      while (selected.count(j) != 0) j = static_cast<std::size_t>(randbelow(n));
      selected.insert(j);
      result[i] = j;
    }
  }
  return result;
}

std::vector<std::size_t> PyRandom::shuffled_indices(std::size_t n) {
  std::vector<std::size_t> v(n);
  std::iota(v.begin(), v.end(), std::size_t{0});
  shuffle(v);
  return v;
}

// ---------------------------------------------------------------------------------------------
// Rng (xoshiro256** seeded by splitmix64)

Rng::Rng(std::uint64_t seed) {
  std::uint64_t state = seed;
  for (auto& word : s_) word = splitmix64(state);
}

std::uint64_t Rng::next_u64() {
  const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const std::uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

double Rng::uniform() { return static_cast<double>(next_u64() >> 11) * (1.0 / 9007199254740992.0); }

double Rng::normal() {
  if (has_spare_) {
    has_spare_ = false;
    return spare_;
  }
  // 1 - u lies in (0, 1], so the logarithm is finite.
  const double u1 = 1.0 - uniform();
  const double u2 = uniform();
  const double radius = std::sqrt(-2.0 * std::log(u1));
  const double angle = 6.283185307179586476925286766559 * u2;
  spare_ = radius * std::sin(angle);
  has_spare_ = true;
  return radius * std::cos(angle);
}

std::uint64_t Rng::below(std::uint64_t n) {
  if (n == 0) fail("Rng::below: n must be >= 1, got 0");
  // Reject the lowest 2^64 mod n values so every residue is equally likely.
  const std::uint64_t threshold = (0 - n) % n;
  for (;;) {
    const std::uint64_t r = next_u64();
    if (r >= threshold) return r % n;
  }
}

Rng Rng::derive(std::uint64_t seed, std::uint64_t stream) {
  std::uint64_t state = stream;
  const std::uint64_t stream_key = splitmix64(state);
  state = seed ^ 0x6a09e667f3bcc909ULL;
  const std::uint64_t seed_key = splitmix64(state);
  return Rng(seed_key ^ rotl(stream_key, 17));
}

}  // namespace lorahub::core
