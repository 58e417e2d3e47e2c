#pragma once
// Test helpers: a temporary folder, and adapter folders written from JSON text and tensors.
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

#include "lorahub/model/checkpoint.h"

namespace lorahub::test {

inline const std::string kGatedFixture = std::string(LORAHUB_TEST_DATA) + "/t5-reference/t5v11_gated_untied";

/// A folder removed with the object; under /dev/shm when `in_memory` (for tests that write thousands of files).
class TempDir {
 public:
  explicit TempDir(bool in_memory = false) {
    std::error_code ec;
    const auto base = in_memory && std::filesystem::is_directory("/dev/shm", ec) ? std::filesystem::path("/dev/shm")
                                                                                 : std::filesystem::temp_directory_path();
    std::string pattern = (base / "lorahub-adapter-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  /// A sub-folder, created empty (removing what an earlier case left there).
  std::string fresh(const std::string& name) const {
    const auto p = std::filesystem::path(path_) / name;
    std::filesystem::remove_all(p);
    std::filesystem::create_directories(p);
    return p.string();
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

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
