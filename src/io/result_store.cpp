#include "lorahub/io/result_store.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <set>
#include <tuple>
#include <utility>

#include <nlohmann/json.hpp>

#include "io/h5.h"
#include "io/journal.h"
#include "io/journal_driver.h"
#include "io/posix_io.h"
#include "io/run_group.h"
#include "lorahub/core/error.h"
#include "lorahub/core/version.h"
#include "lorahub/io/merge.h"


namespace lorahub::io {
namespace {

using detail::check_attr_name;
using detail::check_key;
using detail::kComplete;
using detail::run_label;

constexpr const char* kLorahub = "lorahub";
constexpr const char* kSeedPrefix = "seed_";
constexpr const char* kIncomplete = "incomplete";
constexpr const char* kDamaged = "damaged";

const std::set<std::string>& reserved_root_attrs() {
  static const std::set<std::string> names = {"format", "format_version", "software_version"};
  return names;
}

bool file_exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

std::string seed_name(std::int64_t seed) { return kSeedPrefix + std::to_string(seed); }

bool parse_seed(const std::string& name, std::int64_t* seed) {
  if (name.rfind(kSeedPrefix, 0) != 0) return false;
  std::string digits = name.substr(std::strlen(kSeedPrefix));
  if (digits.empty()) return false;
  errno = 0;
  char* end = nullptr;
  long long v = std::strtoll(digits.c_str(), &end, 10);
  if (errno != 0 || end == nullptr || *end != '\0' || std::to_string(v) != digits) return false;
  *seed = v;
  return true;
}

// The status attribute is written last, so it is the run's complete marker; a value that is neither
// status means the group is damaged.
std::string status_of(const h5::Group& run) {
  if (!h5::has_attr(run, "status")) return kIncomplete;
  std::string status = h5::read_attr_string(run, "status");
  if (status != kComplete && status != detail::kFailed) {
    core::fail("attribute 'status' of ", run.where(), " is '", status, "', not 'complete' or 'failed'");
  }
  return status;
}

RunKey damaged(std::string task, std::string method, std::int64_t seed, std::string group, const std::string& why,
               bool container) {
  return {std::move(task), std::move(method), seed, kDamaged, std::move(group), why, container};
}

struct Listing {
  h5::Group group;
  std::vector<std::string> children;
};

// A task or method group and its children; nullopt when `name` is no group, or when the group cannot
// be read (then it is one damaged entry in `out`).
std::optional<Listing> open_listing(const h5::Group& parent, const std::string& name, const std::string& task,
                                    const std::string& method, std::vector<RunKey>& out) {
  try {
    if (!parent.has_group(name)) return std::nullopt;
    Listing listing{parent.open_group(name), {}};
    listing.children = listing.group.children();
    return listing;
  } catch (const core::Error& e) {
    out.push_back(damaged(task, method, 0, parent.child_path(name), e.what(), true));
    return std::nullopt;
  }
}

// The runs of one task group; a damaged run or method group is listed as such.
void list_task(const h5::Group& runs, const std::string& task, std::vector<RunKey>& out) {
  std::optional<Listing> task_group = open_listing(runs, task, task, "", out);
  if (!task_group) return;
  auto add_run = [&](const h5::Group& parent, const std::string& method, std::int64_t seed, const std::string& name) {
    try {
      if (!parent.has_group(name)) return;
      h5::Group run = parent.open_group(name);
      out.push_back({task, method, seed, status_of(run), run.path(), "", false});
    } catch (const core::Error& e) {
      out.push_back(damaged(task, method, seed, parent.child_path(name), e.what(), false));
    }
  };
  for (const std::string& child : task_group->children) {
    std::int64_t seed = 0;
    if (parse_seed(child, &seed)) {
      add_run(task_group->group, kLorahub, seed, child);
      continue;
    }
    std::optional<Listing> method_group = open_listing(task_group->group, child, task, child, out);
    if (!method_group) continue;
    for (const std::string& name : method_group->children) {
      if (parse_seed(name, &seed)) add_run(method_group->group, child, seed, name);
    }
  }
}

h5::File open_read(const std::string& path, const ResultStoreOptions& options) {
  detail::DriverConfig config;
  config.lock_wait_s = options.lock_wait_s;
  h5::PropertyList fapl = detail::make_fapl(config);
  return h5::File::open(path, H5F_ACC_RDONLY, fapl.id());
}

// The run group of a key, if it exists.
std::optional<h5::Group> find_run(const h5::Group& root, const std::string& task, const std::string& method,
                                  std::int64_t seed) {
  if (!root.has_group("runs")) return std::nullopt;
  h5::Group g = root.open_group("runs");
  if (!g.has_group(task)) return std::nullopt;
  g = g.open_group(task);
  if (method != kLorahub) {
    if (!g.has_group(method)) return std::nullopt;
    g = g.open_group(method);
  }
  std::string name = seed_name(seed);
  if (!g.has_group(name)) return std::nullopt;
  return g.open_group(name);
}

// One write transaction: journal, open read-write, body, close + fsync, commit; any failure
// rolls the file back to where it was before the call. Errors say `what` was being written.
template <class Body>
void transact(const std::string& path, const ResultStoreOptions& options, const std::string& what, Body&& body) {
  detail::WriteFailure failure;
  std::optional<detail::Journal> journal;
  bool opened = false;
  try {
    detail::recover(path);
    if (options.journal) journal.emplace(detail::Journal::begin(path));
    detail::DriverConfig config;
    if (journal) {
      config.journal_fd = journal->fd();
      config.base_size = journal->base_size();
    }
    config.lock_wait_s = options.lock_wait_s;
    config.failure = &failure;
    h5::PropertyList fapl = detail::make_fapl(config);
    opened = true;
    h5::File file = h5::File::open(path, H5F_ACC_RDWR, fapl.id());
    body(file);
    file.close();
    if (failure.failed) throw core::Error(failure.message);
  } catch (const std::exception& e) {
    // A failed write is the cause of whatever HDF5 said after it.
    const std::string failed = core::cat(what, " in ", path, " failed: ", failure.failed ? failure.message : e.what());
    constexpr const char* kUnchanged = "; the file is as it was before this write";
    if (!opened) core::fail(failed, kUnchanged);
    if (!journal) core::fail(failed);
    try {
      journal->rollback();
    } catch (const std::exception& r) {
      core::fail(failed, "; rolling the write back failed too (", r.what(), "); the journal stays and the next open retries");
    }
    core::fail(failed, kUnchanged);
  }
  if (journal) journal->commit();
}

}  // namespace

std::string ResultStore::group_path(const std::string& task, const std::string& method, std::int64_t seed) {
  check_key(task, method);
  if (method == kLorahub) return core::cat("/runs/", task, "/", seed_name(seed));
  return core::cat("/runs/", task, "/", method, "/", seed_name(seed));
}

ResultStore::ResultStore(const std::string& path, Mode mode, ResultStoreOptions options)
    : path_(path), mode_(mode), options_(options) {
  h5::silence_errors();
  if (path_.empty()) core::fail("results file path is empty");
  bool exists = file_exists(path_);
  switch (mode_) {
    case Mode::kReadOnly:
      if (!exists) core::fail("results file '", path_, "' does not exist");
      detail::recover(path_);
      check_format();
      break;
    case Mode::kResume:
      detail::recover(path_);
      if (!exists) {
        create_file();
        break;
      }
      if (std::int64_t version = check_format(); version < kFormatVersion) {
        core::fail(path_, " has format_version ", version, " (written by an older lorahub-hpc, without metadata ",
                   "checksums): it can be read but not continued; copy its runs into a new file with `lorahub merge ",
                   "NEW.h5 ", path_, "` and resume NEW.h5");
      }
      for (const RunKey& k : list_runs()) {
        if (k.status == kDamaged) {
          core::fail(path_, " cannot be continued: group ", k.group, " is damaged (", k.problem, "); ",
                     kDamagedRunsAdvice);
        }
      }
      break;
    case Mode::kCreate:
      detail::recover(path_);
      create_file();
      break;
  }
}

void ResultStore::require_writable(const char* what) const {
  if (mode_ == Mode::kReadOnly) {
    core::fail("results file ", path_, " is open read-only; ", what, " needs Mode::kCreate or Mode::kResume");
  }
}

void ResultStore::create_file() const {
  // Built under a temporary name and renamed into place, so the path never holds half a file.
  std::string tmp = core::cat(path_, ".tmp.", ::getpid());
  ::unlink(tmp.c_str());
  detail::WriteFailure failure;
  try {
    detail::DriverConfig config;
    config.lock_wait_s = options_.lock_wait_s;
    config.failure = &failure;
    h5::PropertyList fapl = detail::make_fapl(config);
    h5::File file = h5::File::create(tmp, fapl.id(), true);
    {
      h5::Group root = file.root();
      h5::write_attr(root, "format", kFormat);
      h5::write_attr(root, "format_version", kFormatVersion);
      h5::write_attr(root, "software_version", core::version());
      root.create_group("runs");
    }
    file.close();
    if (failure.failed) throw core::Error(failure.message);
    if (std::rename(tmp.c_str(), path_.c_str()) != 0) {
      core::fail("renaming ", tmp, " to results file ", path_, ": ", std::strerror(errno));
    }
  } catch (const std::exception& e) {
    ::unlink(tmp.c_str());
    if (failure.failed) core::fail("creating results file ", path_, " failed: ", failure.message);
    throw;
  }
  detail::sync_parent_dir(path_);
}

std::int64_t ResultStore::check_format() const {
  h5::File file = open_read(path_, options_);
  h5::Group root = file.root();
  std::string format;
  if (h5::has_attr(root, "format") && h5::attr_class(root, "format") == H5T_STRING) {
    format = h5::read_attr_string(root, "format");
  }
  if (format != kFormat) {
    core::fail(path_, " is not a lorahub-hpc results file (root attribute 'format' is '", format,
               "', expected '", kFormat, "')");
  }
  std::int64_t version = h5::read_attr_int64(root, "format_version");
  if (version > kFormatVersion) {
    core::fail(path_, " has format_version ", version, "; this build reads up to ", kFormatVersion);
  }
  return version;
}

void ResultStore::set_job_attrs(const std::map<std::string, std::string>& attrs) {
  require_writable("set_job_attrs");
  for (const auto& [name, value] : attrs) {
    check_attr_name("job attribute", name);
    if (reserved_root_attrs().count(name)) core::fail("job attribute '", name, "' is reserved");
  }
  transact(path_, options_, "setting job attributes", [&](h5::File& file) {
    h5::Group root = file.root();
    for (const auto& [name, value] : attrs) h5::write_attr(root, name, value);
  });
}

std::map<std::string, std::string> ResultStore::job_attrs() const {
  h5::File file = open_read(path_, options_);
  h5::Group root = file.root();
  std::map<std::string, std::string> out;
  for (const std::string& name : h5::attr_names(root)) {
    if (h5::attr_class(root, name) == H5T_STRING) out[name] = h5::read_attr_string(root, name);
  }
  return out;
}

void ResultStore::write_run(const RunRecord& run) {
  require_writable("write_run");
  detail::validate_run(run);
  const std::string adapter_json = detail::adapter_config_json(run);
  const std::string label = run_label(run.task, run.method, run.seed);
  detail::run_write_begins();
  transact(path_, options_, "writing " + label, [&](h5::File& file) {
    h5::Group root = file.root();
    h5::Group parent = root.require_group("runs").require_group(run.task);
    if (run.method != kLorahub) parent = parent.require_group(run.method);
    const std::string name = seed_name(run.seed);
    if (parent.has(name)) {
      if (parent.has_group(name) && status_of(parent.open_group(name)) == kComplete) {
        core::fail(label, " is already complete in ", path_, "; refusing to overwrite it");
      }
      parent.remove(name);
    }
    detail::write_run_group(parent.create_group(name), run, adapter_json);
  });
}

bool ResultStore::has_complete_run(const std::string& task, const std::string& method, std::int64_t seed) const {
  check_key(task, method);
  h5::File file = open_read(path_, options_);
  std::optional<h5::Group> run = find_run(file.root(), task, method, seed);
  return run && status_of(*run) == kComplete;
}

std::vector<RunKey> ResultStore::list_runs() const {
  h5::File file = open_read(path_, options_);
  h5::Group root = file.root();
  std::vector<RunKey> out;
  if (!root.has_group("runs")) return out;
  h5::Group runs = root.open_group("runs");
  for (const std::string& task : runs.children()) list_task(runs, task, out);
  std::sort(out.begin(), out.end(), [](const RunKey& a, const RunKey& b) {
    return std::tie(a.task, a.method, a.seed, a.group) < std::tie(b.task, b.method, b.seed, b.group);
  });
  return out;
}

RunRecord ResultStore::read_run(const std::string& task, const std::string& method, std::int64_t seed) const {
  check_key(task, method);
  const std::string label = run_label(task, method, seed);
  const std::string group = group_path(task, method, seed);
  std::optional<h5::File> file;
  std::optional<h5::Group> run;
  std::string status;
  try {
    file.emplace(open_read(path_, options_));
    run = find_run(file->root(), task, method, seed);
    if (run) status = status_of(*run);
  } catch (const core::Error& e) {
    core::fail(label, " in ", path_, " cannot be read (group ", group, "): ", e.what());
  }
  if (!run) core::fail("no ", label, " in ", path_, " (group ", group, ")");
  if (status == kIncomplete) {
    core::fail(label, " in ", path_, " is incomplete (no status attribute: its write was interrupted)");
  }
  try {
    return detail::read_run_group(*run, task, method, seed, status);
  } catch (const core::Error& e) {
    core::fail(label, " in ", path_, " cannot be read (group ", group, "): ", e.what());
  }
}

}  // namespace lorahub::io
