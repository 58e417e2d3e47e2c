#pragma once
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "lorahub/data/example.h"

namespace lorahub::data {

/// Examples per BBH task that form the pool for few-shot learning and in-context shots.
inline constexpr std::size_t kBbhPoolSize = 100;

/// How a BBH directory is laid out.
///  - kOriginal: the public BIG-Bench-Hard layout, `<dir>/<task>.json` ({"examples":[...]}) and the
///    chain-of-thought prompt `<dir>/<task>.txt` (line 1 canary, line 2 "-----", line 3 the task
///    description).
///  - kReference: the LoraHub reference's preprocessed `data_bbh/<task>/` with `example.jsonl`
///    (the pool), `zero_shot.jsonl` (the test set) and optionally `few_shot.jsonl` (the test set
///    with the reference's 5-shot prompts), all {"context","completion"} lines whose context
///    already holds the full prompt text.
enum class BbhLayout { kOriginal, kReference };

/// One BBH task as read from disk.
struct BbhTask {
  std::string name;
  /// kOriginal: line 3 of `<task>.txt`, verbatim (temporal_sequences' starts "Task description: ");
  /// kReference: empty (the contexts carry their prompt).
  std::string description;
  /// kOriginal: every example of `<task>.json` in file order.
  /// kReference: example.jsonl followed by zero_shot.jsonl.
  std::vector<Example> examples;
  /// How many leading `examples` form the pool: kBbhPoolSize (kOriginal) or the number of lines
  /// of example.jsonl (kReference).
  std::size_t pool_size = kBbhPoolSize;
  BbhLayout layout = BbhLayout::kOriginal;
  /// kReference with few_shot.jsonl present: the test set with the reference's 5-shot contexts
  /// (same order and targets as the test part of `examples`); empty otherwise.
  std::vector<Example> reference_few_shot;
};

/// The pool / test division of one task.
struct BbhSplit {
  std::vector<Example> pool;
  std::vector<Example> test;
};

/// Names of the tasks under `dir`, sorted: the stems of `<task>.json` files (kOriginal) and the
/// subdirectories holding `zero_shot.jsonl` (kReference). Throws core::Error when `dir` is not a
/// directory or holds no task.
std::vector<std::string> list_bbh_tasks(const std::string& dir);

/// Loads task `name` from `dir`: `<dir>/<name>.json` if it exists (kOriginal, which also needs
/// `<dir>/<name>.txt`), else `<dir>/<name>/` (kReference). Throws core::Error naming the task and
/// the file for a missing task or file, a prompt file without the "-----" line 2 or with an empty
/// line 3, any load_examples error, or a few_shot.jsonl that disagrees with zero_shot.jsonl.
BbhTask load_bbh_task(const std::string& dir, const std::string& name);

/// Splits a task as the LoraHub reference evaluates BBH: the first `task.pool_size` examples in
/// file order (100 for the original files) are the pool from which few-shot learning and
/// in-context examples are drawn (see pick_shots), and all remaining examples are the test set.
/// On the 27 public BBH tasks this gives 150 test examples per task except causal_judgement (87),
/// penguins_in_a_table (46) and snarks (78): 3,811 in all.
/// `max_test` keeps only the first M test examples (M >= 1; more than there are keeps them all).
/// Throws core::Error naming the task when it has no example beyond the pool (<= 100 examples)
/// or when max_test is 0.
BbhSplit split_bbh(const BbhTask& task, std::optional<std::size_t> max_test = std::nullopt);

}  // namespace lorahub::data
