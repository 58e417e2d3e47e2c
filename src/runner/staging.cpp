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

std::vector<StagedFile> job_input_files(const job::JobConfig& config, bool with_library) {
  // Model files keep their absolute path below the staging folder; a module's files go to library/<name>/, so
  // that the staged library keeps the module names (a hub snapshot's folder is named by its commit).
  std::vector<StagedFile> files;
  auto model_file = [&](const std::string& f) { files.push_back({absolute(f), absolute(f)}); };
  model_file((fs::path(config.model.path) / "config.json").string());
  for (const auto& f : core::checkpoint_files(config.model.path, core::CheckpointKind::kModel)) model_file(f);
  model_file(config.tokenizer_path());
  if (with_library) {
    for (const auto& m : job::library_modules(config.library.path)) {
      auto module_file = [&](const std::string& f) {
        files.push_back({absolute(f), "/library/" + m.name + "/" + fs::path(f).filename().string()});
      };
      module_file((fs::path(m.folder) / "adapter_config.json").string());
      for (const auto& f : core::checkpoint_files(m.folder, core::CheckpointKind::kAdapter)) module_file(f);
    }
  }
  return files;
}

std::unique_ptr<StagedInputs> StagedInputs::stage(distributed::Comm& comm, const job::JobConfig& config, bool with_library) {
  auto start = std::chrono::steady_clock::now();
  std::unique_ptr<StagedInputs> staged(new StagedInputs());
  // Rank 0 decides the files, where they go and the folder name; every rank gets them.
  std::string listing, error;
  if (comm.is_root()) {
    try {
      nlohmann::json j;
      std::uintmax_t total = 0;
      for (const auto& f : job_input_files(config, with_library)) {
        j["files"].push_back(f.source);
        j["targets"].push_back(f.target);
        total += fs::file_size(f.source);
      }
      std::string root = stage_root(total);
      char host[256] = {};
      ::gethostname(host, sizeof host - 1);
      j["dir"] = (fs::path(root) / core::cat("lorahub-stage-", host, "-", ::getpid(), "-",
                                             std::chrono::system_clock::now().time_since_epoch().count()))
                     .string();
      std::vector<std::string> names;
      if (with_library) names = job::library_module_names(config.library.path);
      j["library"] = names;
      listing = j.dump();
    } catch (const std::exception& e) {
      error = e.what();
    }
  }
  comm.agree_or_throw(error.empty(), error);
  comm.broadcast(listing);
  auto j = nlohmann::json::parse(listing);
  auto files = j["files"].get<std::vector<std::string>>();
  auto targets = j["targets"].get<std::vector<std::string>>();
  auto blobs = distributed::broadcast_files(comm, files);
  staged->transport_ = blobs.transport;
  staged->dir_ = j["dir"].get<std::string>();
  auto local = [&](const std::string& path) { return staged->dir_ + path; };  // targets start with '/'

  staged->owner_ = comm.local_rank() == 0;
  error.clear();
  if (staged->owner_) {
    try {
      for (std::size_t i = 0; i < files.size(); ++i) {
        const auto& bytes = *blobs.at(files[i]);
        const auto target = local(targets[i]);
        staged->bytes_ += bytes.size();
        fs::create_directories(fs::path(target).parent_path());
        std::ofstream out(target, std::ios::binary);
        out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
        if (!out) fail(target, ": cannot write the staged copy (set LORAHUB_STAGE_DIR to a node-local folder with room)");
      }
      if (with_library) {
        // The modules in the configured order, whatever the folder names sort as.
        std::ofstream list(staged->dir_ + "/library.txt");
        for (const auto& name : j["library"]) list << "library/" << name.get<std::string>() << "\n";
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
