#pragma once
// Test helpers: a temporary folder, and adapter folders written from JSON text and tensors.
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

#include "lorahub/model/checkpoint.h"
#include "support/temp_dir.h"

namespace lorahub::test {

inline const std::string kGatedFixture = std::string(LORAHUB_TEST_FIXTURES) + "/t5-reference/t5v11_gated_untied";

inline void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  if (!out) throw std::runtime_error("cannot write " + path);
}

/// Writes `dir`/adapter_config.json (`config` verbatim) and `dir`/adapter_model.safetensors (`weights`).
inline void write_adapter(const std::string& dir, const std::string& config, const model::StateDict& weights) {
  write_text(dir + "/adapter_config.json", config);
  model::save_safetensors(dir + "/adapter_model.safetensors", weights, {{"format", "pt"}});
}

}  // namespace lorahub::test
