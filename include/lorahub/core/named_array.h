#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace lorahub::core {

/// A named row-major float32 array: a composed or trained LoRA factor under its PEFT key, as it crosses ranks
/// and lands in a results file.
struct NamedArray {
  std::string name;
  std::vector<std::int64_t> shape;
  std::vector<float> data;  ///< product(shape) values, row-major
};

}  // namespace lorahub::core
