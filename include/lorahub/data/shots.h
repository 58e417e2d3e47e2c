#pragma once
#include <cstdint>
#include <vector>

#include "lorahub/data/example.h"

namespace lorahub::data {

/// How pick_shots orders the pool.
///  - kCpython: exactly the reference's `random.seed(seed); random.shuffle(pairs)` (CPython MT19937
///    via core::PyRandom, negative seeds as |seed| like CPython), so its few-shot picks are
///    replayed.
///  - kNative: a partial Fisher-Yates shuffle driven by core::Rng(seed): for i = 0..k-1, swap
///    element i with element i + below(n - i). Same on every platform; the first k picks of a seed
///    are a prefix of its first k + 1 picks. Seeds are taken modulo 2^64.
enum class Sampler { kCpython, kNative };

/// The first k examples of `pool` after a seeded shuffle (see Sampler). `pool` is not changed.
/// Throws core::Error when k < 0 or k > pool.size().
std::vector<Example> pick_shots(const std::vector<Example>& pool, int k, std::int64_t seed,
                                Sampler sampler);

}  // namespace lorahub::data
