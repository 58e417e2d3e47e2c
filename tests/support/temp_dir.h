#pragma once
// A fresh folder for one test, removed with everything in it when the test ends.
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include <gtest/gtest.h>

namespace lorahub::test {

class TempDir {
 public:
  /// Under the test temp folder, or under /dev/shm when `in_memory` and it exists (for tests that write
  /// thousands of files or fsync a lot).
  explicit TempDir(bool in_memory = false) {
    std::error_code ec;
    const std::string root =
        in_memory && std::filesystem::is_directory("/dev/shm", ec) ? std::string("/dev/shm/") : ::testing::TempDir();
    std::string pattern = root + "lorahub-test-XXXXXX";
    std::vector<char> buf(pattern.begin(), pattern.end());
    buf.push_back('\0');
    if (::mkdtemp(buf.data()) == nullptr) throw std::runtime_error("mkdtemp failed for " + pattern);
    path_ = std::string(buf.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  /// The path of `name` inside (nothing is created).
  std::string file(const std::string& name) const { return path_.string() + "/" + name; }
  /// A sub-folder, created if absent.
  std::string dir(const std::string& name) const {
    std::filesystem::create_directories(file(name));
    return file(name);
  }
  /// A sub-folder, created empty (removing what an earlier case left there).
  std::string fresh(const std::string& name) const {
    std::filesystem::remove_all(file(name));
    return dir(name);
  }
  /// Writes `bytes` to `relative` (creating its folders) and returns its path.
  std::string write(const std::string& relative, const std::string& bytes) const {
    const std::filesystem::path p = file(relative);
    std::filesystem::create_directories(p.parent_path());
    std::ofstream out(p, std::ios::binary);
    out << bytes;
    return p.string();
  }

 private:
  std::filesystem::path path_;
};

}  // namespace lorahub::test
