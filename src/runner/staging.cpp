#include "staging.h"

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "lorahub/core/checkpoint_files.h"
#include "lorahub/core/error.h"
#include "lorahub/distributed/broadcast.h"
#include "lorahub/distributed/comm.h"
#include "lorahub/job/library.h"

namespace lorahub::runner {
namespace fs = std::filesystem;
using core::fail;

namespace {

std::string absolute(const std::string& p) { return fs::absolute(fs::path(p)).lexically_normal().string(); }

// Where a node keeps its copy: $LORAHUB_STAGE_DIR if set, else the first of /dev/shm (memory: no disk I/O),
// $TMPDIR and /tmp with room for the inputs and a margin (containers often give /dev/shm only 64 MB).
std::string stage_root(std::uintmax_t bytes) {
  if (const char* dir = std::getenv("LORAHUB_STAGE_DIR")) return dir;
  std::vector<std::string> candidates = {"/dev/shm"};
  if (const char* tmp = std::getenv("TMPDIR")) candidates.push_back(tmp);
  candidates.push_back("/tmp");
  for (const auto& c : candidates) {
    std::error_code ec;
    auto space = fs::space(c, ec);
    if (!ec && ::access(c.c_str(), W_OK) == 0 && space.available > bytes + bytes / 10 + (64u << 20)) return c;
  }
  fail("no node-local folder has room for the ", bytes >> 20, " MiB of model and library (tried /dev/shm, $TMPDIR, /tmp);",
       " set LORAHUB_STAGE_DIR, or [schedule] broadcast = false to read the files on every rank");
}

}  // namespace

std::vector<std::string> job_input_files(const job::JobConfig& config, bool with_library) {
  std::vector<std::string> files = {absolute((fs::path(config.model.path) / "config.json").string())};
  for (const auto& f : core::checkpoint_files(config.model.path, core::CheckpointKind::kModel)) files.push_back(absolute(f));
  files.push_back(absolute(config.tokenizer_path()));
  if (with_library) {
    for (const auto& folder : job::library_module_folders(config.library.path)) {
      files.push_back(absolute((fs::path(folder) / "adapter_config.json").string()));
      for (const auto& f : core::checkpoint_files(folder, core::CheckpointKind::kAdapter)) files.push_back(absolute(f));
    }
  }
  return files;
}

std::unique_ptr<StagedInputs> StagedInputs::stage(distributed::Comm& comm, const job::JobConfig& config, bool with_library) {
  auto start = std::chrono::steady_clock::now();
  std::unique_ptr<StagedInputs> staged(new StagedInputs());
  // Rank 0 decides the file list and the folder name; every rank gets them.
  std::string listing, error;
  if (comm.is_root()) {
    try {
      nlohmann::json j;
      j["files"] = job_input_files(config, with_library);
      std::uintmax_t total = 0;
      for (const auto& f : j["files"]) total += fs::file_size(f.get<std::string>());
      std::string root = stage_root(total);
      char host[256] = {};
      ::gethostname(host, sizeof host - 1);
      j["dir"] = (fs::path(root) / core::cat("lorahub-stage-", host, "-", ::getpid(), "-",
                                             std::chrono::system_clock::now().time_since_epoch().count()))
                     .string();
      std::vector<std::string> folders;
      if (with_library) folders = job::library_module_folders(config.library.path);
      for (auto& f : folders) f = absolute(f);
      j["library"] = folders;
      listing = j.dump();
    } catch (const std::exception& e) {
      error = e.what();
    }
  }
  comm.agree_or_throw(error.empty(), error);
  comm.broadcast(listing);
  auto j = nlohmann::json::parse(listing);
  auto files = j["files"].get<std::vector<std::string>>();
  auto blobs = distributed::broadcast_files(comm, files);
  staged->transport_ = blobs.transport;
  staged->dir_ = j["dir"].get<std::string>();
  auto local = [&](const std::string& path) { return staged->dir_ + path; };  // paths are absolute

  staged->owner_ = comm.local_rank() == 0;
  error.clear();
  if (staged->owner_) {
    try {
      for (const auto& path : files) {
        const auto& bytes = *blobs.at(path);
        staged->bytes_ += bytes.size();
        fs::create_directories(fs::path(local(path)).parent_path());
        std::ofstream out(local(path), std::ios::binary);
        out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
        if (!out) fail(local(path), ": cannot write the staged copy (set LORAHUB_STAGE_DIR to a node-local folder with room)");
      }
      if (with_library) {
        // The modules in the configured order, whatever the folder names sort as.
        std::ofstream list(staged->dir_ + "/library.txt");
        for (const auto& f : j["library"]) list << local(f.get<std::string>()) << "\n";
      }
    } catch (const std::exception& e) {
      error = e.what();
    }
  }
  blobs.files.clear();
  comm.agree_or_throw(error.empty(), error);
  staged->config_ = config;
  staged->config_.model.path = local(absolute(config.model.path));
  staged->config_.model.tokenizer = local(absolute(config.tokenizer_path()));
  if (with_library) staged->config_.library.path = staged->dir_ + "/library.txt";
  staged->seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return staged;
}

StagedInputs::~StagedInputs() {
  if (owner_ && !dir_.empty()) {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
}

}  // namespace lorahub::runner
