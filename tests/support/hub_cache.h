#pragma once
// Fake Hugging Face hub caches laid out as huggingface_hub writes them (blobs/<hash>, snapshots/<commit>/<file>
// as relative symlinks into ../../blobs/, refs/<revision> holding the commit), and a scoped environment.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "lorahub/core/error.h"
#include "support/temp_dir.h"
#include "support/errors.h"

namespace lorahub::core::test {
namespace fs = std::filesystem;
using lorahub::test::error_text;

using lorahub::test::TempDir;

/// Sets or unsets environment variables for one test and restores them afterwards.
class ScopedEnv {
 public:
  ScopedEnv() {
    for (const char* name : {"HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME", "HOME"}) {
      const char* v = std::getenv(name);
      saved_[name] = v ? std::optional<std::string>(v) : std::nullopt;
      ::unsetenv(name);
    }
  }
  ~ScopedEnv() {
    for (const auto& [name, value] : saved_) {
      if (value) {
        ::setenv(name.c_str(), value->c_str(), 1);
      } else {
        ::unsetenv(name.c_str());
      }
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;
  void set(const std::string& name, const std::string& value) { ::setenv(name.c_str(), value.c_str(), 1); }
  void unset(const std::string& name) { ::unsetenv(name.c_str()); }

 private:
  std::map<std::string, std::optional<std::string>> saved_;
};

inline void write_file(const fs::path& p, const std::string& bytes) {
  fs::create_directories(p.parent_path());
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << bytes;
  if (!out) throw Error("cannot write " + p.string());
}

inline std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

/// A 40-hex-digit name derived from `text` (stands in for git's commit and blob hashes).
inline std::string fake_hash(const std::string& text) {
  std::uint64_t h = 1469598103934665603ULL;
  std::string out;
  for (int round = 0; round < 3; ++round) {
    for (char c : text + std::to_string(round)) {
      h ^= static_cast<unsigned char>(c);
      h *= 1099511628211ULL;
    }
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
    out += buf;
  }
  return out.substr(0, 40);
}

/// A hub cache folder the test fills repository by repository.
class FakeHubCache {
 public:
  explicit FakeHubCache(fs::path root) : root_(std::move(root)) { fs::create_directories(root_); }
  const fs::path& root() const { return root_; }

  fs::path repo_dir(const std::string& repo_id) const {
    std::string folder = "models--";
    for (char c : repo_id) folder += c == '/' ? std::string("--") : std::string(1, c);
    return root_ / folder;
  }

  /// Writes each file's bytes to blobs/ and links snapshots/<commit>/<name> to it; returns the snapshot.
  fs::path add_snapshot(const std::string& repo_id, const std::string& commit,
                        const std::map<std::string, std::string>& files) {
    const fs::path repo = repo_dir(repo_id);
    const fs::path snapshot = repo / "snapshots" / commit;
    fs::create_directories(snapshot);
    fs::create_directories(repo / "blobs");
    for (const auto& [name, bytes] : files) {
      const fs::path blob = repo / "blobs" / fake_hash(bytes);
      if (!fs::exists(blob)) write_file(blob, bytes);
      const fs::path link = snapshot / name;
      fs::create_directories(link.parent_path());
      fs::create_symlink(blob.lexically_relative(link.parent_path()), link);
    }
    return snapshot;
  }

  /// refs/<ref> names `commit`, written without a newline as the hub client does.
  void set_ref(const std::string& repo_id, const std::string& ref, const std::string& commit) {
    const fs::path p = repo_dir(repo_id) / "refs" / ref;
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary | std::ios::trunc) << commit;
  }

  /// Deletes the blob behind snapshots/<commit>/<name>, leaving a broken link (an incomplete copy).
  void remove_blob(const std::string& repo_id, const std::string& commit, const std::string& name) {
    const fs::path link = repo_dir(repo_id) / "snapshots" / commit / name;
    fs::remove(link.parent_path() / fs::read_symlink(link));
  }

 private:
  fs::path root_;
};

}  // namespace lorahub::core::test
