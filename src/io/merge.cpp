#include "lorahub/io/merge.h"

#include <filesystem>
#include <map>

#include "lorahub/core/error.h"
#include "lorahub/io/result_store.h"

namespace lorahub::io {

MergeOutcome merge_results(const std::string& out, const std::vector<std::string>& inputs) {
  if (std::filesystem::exists(out)) core::fail(out, " exists; merge writes a new file");
  ResultStore target(out, ResultStore::Mode::kCreate);
  std::map<std::string, std::string> source_of;
  MergeOutcome outcome;
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
      if (key.status == "damaged") {
        outcome.skipped.push_back(core::cat(in, ": group ", key.group, " is damaged: ", key.problem));
        continue;
      }
      auto it = source_of.find(key.group);
      if (it != source_of.end()) core::fail("run ", key.group, " is in both ", it->second, " and ", in);
      RunRecord record;
      try {
        record = source.read_run(key.task, key.method, key.seed);
      } catch (const core::Error& e) {
        // Each run is read on its own, so one damaged group costs only that run.
        outcome.skipped.push_back(core::cat(in, ": group ", key.group, " is damaged: ", e.what()));
        continue;
      }
      target.write_run(record);
      source_of[key.group] = in;
      ++outcome.written;
    }
  }
  return outcome;
}

}  // namespace lorahub::io
