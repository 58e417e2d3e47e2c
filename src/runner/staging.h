#pragma once
// "Read once, broadcast": rank 0 reads the model, tokenizer and LoRA library from the (shared) filesystem,
// dist broadcasts the bytes, and the first rank of every node writes them into a node-local folder
// (/dev/shm by default) from which every rank of that node loads — memory-mapped, so the weights sit in
// the node's page cache once.
#include <memory>
#include <string>
#include <vector>

#include "lorahub/job/config.h"

namespace lorahub::distributed {
class Comm;
}

namespace lorahub::runner {

/// The files a job's workers load: model config + weights (core::checkpoint_files, as the loaders choose them),
/// the tokenizer, and every adapter folder's config + weights. Paths as the configuration names them.
struct StagedFile {
  std::string source;  ///< absolute path on the shared filesystem
  std::string target;  ///< path below the staging folder (starts with '/')
};
std::vector<StagedFile> job_input_files(const job::JobConfig& config, bool with_library);

/// A node-local copy of a job's inputs; removes it on destruction (after every rank is done with it).
class StagedInputs {
 public:
  ~StagedInputs();
  StagedInputs(const StagedInputs&) = delete;
  StagedInputs& operator=(const StagedInputs&) = delete;
  /// The configuration with model, tokenizer and library pointing into the staged copy.
  const job::JobConfig& config() const { return config_; }
  double seconds() const { return seconds_; }
  std::size_t bytes() const { return bytes_; }
  const std::string& transport() const { return transport_; }

  /// Collective over all ranks of `comm`.
  static std::unique_ptr<StagedInputs> stage(distributed::Comm& comm, const job::JobConfig& config, bool with_library);

 private:
  StagedInputs() = default;
  job::JobConfig config_;
  std::string dir_;  // removed by the node's first rank
  bool owner_ = false;
  double seconds_ = 0;
  std::size_t bytes_ = 0;
  std::string transport_;
};

}  // namespace lorahub::runner
