#include "lorahub/io/merge.h"

#include <filesystem>
#include <map>

#include "lorahub/core/error.h"
#include "lorahub/io/result_store.h"

namespace lorahub::io {
namespace fs = std::filesystem;

std::size_t merge_result_files(const std::string& out, const std::vector<std::string>& inputs) {
  if (fs::exists(out)) core::fail(out, " exists; merge writes a new file");
  ResultStore target(out, ResultStore::Mode::kCreate);
  std::map<std::string, std::string> source_of;
  std::size_t written = 0;
  bool attrs = false;
  for (const auto& in : inputs) {
    ResultStore source(in, ResultStore::Mode::kReadOnly);
    if (!attrs) {
      auto a = source.job_attrs();
      if (a.count("job_config")) target.set_job_attrs({{"job_config", a["job_config"]}});
      attrs = true;
    }
    for (const auto& key : source.list_runs()) {
      if (key.status == "incomplete") continue;
      auto it = source_of.find(key.group);
      if (it != source_of.end()) core::fail("run ", key.group, " is in both ", it->second, " and ", in);
      target.write_run(source.read_run(key.task, key.method, key.seed));
      source_of[key.group] = in;
      ++written;
    }
  }
  return written;
}

}  // namespace lorahub::io
