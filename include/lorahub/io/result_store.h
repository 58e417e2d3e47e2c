#pragma once
#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "lorahub/core/named_array.h"

namespace lorahub::io {


/// Everything one run (task x method x seed) produced. Torch-free so it can cross ranks.
struct RunRecord {
  std::string task;
  std::string method = "lorahub";  ///< "lorahub", "zero-shot", "icl", "uniform", "lora-single", "lora-ft", ...
  std::int64_t seed = 0;
  std::string status;          ///< "complete" or "failed"
  std::string failure_reason;  ///< why, when failed

  /// Stored as string / float64 attributes of the run group: optimizer, model_path, config (the
  /// full JSON), ... / budget, shots, l1, learn_seconds, ... Names must not be reserved (see docs).
  std::map<std::string, std::string> text_attrs;
  std::map<std::string, double> number_attrs;

  std::vector<std::string> module_names;             ///< [N] the selected library modules
  std::vector<double> best_weights;                  ///< [N]
  double best_loss = std::numeric_limits<double>::quiet_NaN();
  std::vector<std::vector<double>> history_weights;  ///< [evals][N] every w asked, in order
  std::vector<double> history_loss;                  ///< [evals]
  std::vector<std::vector<double>> history_gradient; ///< [evals][N] gradient methods: ∇ of the smooth part, or empty
  std::vector<std::string> selection_modules;        ///< library.select = "loss": the modules scored alone
  std::vector<double> selection_losses;              ///< their objective values (each module alone at weight 1)

  std::vector<std::string> train_inputs, train_targets;  ///< [K] the few-shot examples used
  std::vector<std::string> test_inputs, test_targets, predictions;  ///< [T]
  std::vector<std::uint8_t> correct;                                ///< [T] 0/1
  double accuracy = std::numeric_limits<double>::quiet_NaN();
  std::vector<std::int64_t> input_tokens;  ///< [T] prompt token counts, or empty

  /// Composed Â / B̂ per target module under PEFT keys
  /// ("base_model.model.<module>.lora_A.weight" [r, in], "...lora_B.weight" [out, r]).
  std::vector<core::NamedArray> composed;
  /// adapter_config.json fields (r, lora_alpha, target_modules, ...): each value is JSON text
  /// ("16", "[\"q\",\"v\"]") or a plain string ("none"); stored as one JSON object.
  std::map<std::string, std::string> adapter_config;
};

/// Where a run lives and how far it got.
struct RunKey {
  std::string task;
  std::string method;
  std::int64_t seed = 0;
  /// "complete", "failed", "incomplete" (no status: an interrupted write), or "damaged" (the group, or
  /// its status, cannot be read: `problem` says why)
  std::string status;
  std::string group;    ///< HDF5 path of the run group
  std::string problem;  ///< "damaged": HDF5's reason, naming the file and the group
  /// A damaged task or method group whose runs cannot be listed: `group` is its path, `task` (and
  /// `method` for a method group; "" for a task group) are set, `seed` means nothing.
  bool container = false;
};

/// How a ResultStore writes.
struct ResultStoreOptions {
  /// Undo journal ("<file>-journal") that makes every write all-or-nothing under kills. Turning it
  /// off leaves older runs exposed to a kill during the metadata flush; it exists for experiments.
  bool journal = true;
  /// How long a writer retries when another process (an open h5py reader) holds the file lock.
  double lock_wait_s = 30.0;
};

/// The HDF5 results file of LoraHub runs (layout in docs/results-schema.md). Only one process
/// (the coordinator rank) writes it. Every call opens and closes the file, so between calls the
/// file is complete on disk and readable by others; every write is one journaled transaction, so a
/// kill at any moment leaves either the old or the new file, never a damaged one. Not thread-safe.
class ResultStore {
 public:
  enum class Mode {
    kCreate,   ///< start a new file, replacing any file at the path
    kResume,   ///< open an existing results file for appending, or create it
    kReadOnly  ///< open an existing results file; nothing is written (except rolling back a
               ///< killed writer's unfinished transaction, which needs write permission)
  };

  /// Opens or creates `path`; rolls back a killed writer's unfinished write first. Throws
  /// core::Error naming the file when it is missing (kReadOnly), not a results file, or newer. kResume
  /// also refuses files of format_version 1 (no checksums: read them, or merge them into a new file)
  /// and files with damaged run groups (which HDF5 can neither replace nor unlink).
  ResultStore(const std::string& path, Mode mode, ResultStoreOptions options = {});

  /// Sets string attributes on the file root (e.g. "job_config" -> JSON text); replaces any of
  /// the same name. "format", "format_version" and "software_version" are reserved.
  void set_job_attrs(const std::map<std::string, std::string>& attrs);
  /// All string attributes of the file root (format, software_version, job_config, ...).
  std::map<std::string, std::string> job_attrs() const;

  /// Writes one run as a single transaction; replaces an incomplete or failed group of the same
  /// key. Throws if a complete run of that key exists, or the record is inconsistent (shapes,
  /// reserved or duplicate names; a "complete" run also needs matching lengths).
  void write_run(const RunRecord& run);
  /// Whether (task, method, seed) is stored with status "complete".
  bool has_complete_run(const std::string& task, const std::string& method, std::int64_t seed) const;
  /// Every run group (task, method, seed order by name), complete, failed, incomplete or damaged; one
  /// damaged group does not hide the others. Throws naming the file when it cannot be read at all.
  std::vector<RunKey> list_runs() const;
  /// Reads a complete or failed run back exactly as written. Throws naming the group when it is
  /// missing, incomplete or damaged.
  RunRecord read_run(const std::string& task, const std::string& method, std::int64_t seed) const;

  std::string path() const { return path_; }

  /// "/runs/<task>/seed_<s>" for method "lorahub", else "/runs/<task>/<method>/seed_<s>".
  static std::string group_path(const std::string& task, const std::string& method, std::int64_t seed);

  /// Root attribute values. Version 2: the HDF5 1.10 format (checksummed metadata), fixed-length strings,
  /// compact or checksummed dataset storage. Version 1 files (earliest HDF5 format, variable-length
  /// strings) are still read.
  static constexpr const char* kFormat = "lorahub-hpc results";
  static constexpr std::int64_t kFormatVersion = 2;

 private:
  void require_writable(const char* what) const;
  void create_file() const;
  std::int64_t check_format() const;

  std::string path_;
  Mode mode_;
  ResultStoreOptions options_;
};

}  // namespace lorahub::io
