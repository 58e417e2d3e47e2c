#pragma once
// A scheduler that behaves like the job driver: several runs, each a few optimizer steps whose
// candidates depend on the losses of the step before, then an evaluation in test-set shards. The
// handler computes deterministic results from the item; some items fail, some handler calls throw.
#include <cmath>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "lorahub/core/error.h"
#include "lorahub/core/protocol.h"

namespace lorahub::distributed::test {

struct FakeConfig {
  int runs = 5;
  int steps = 4;       ///< fitness steps per run
  int candidates = 3;  ///< items per step
  int dims = 4;
  int shards = 2;      ///< evaluate items after the last step
  int examples = 7;    ///< test examples per run, split into shards
  int throw_in_complete_after = -1;  ///< complete() throws on this call (0-based); -1 never
  int throw_in_next_after = -1;      ///< next() throws on this call; -1 never
  bool stall = false;                ///< next() returns nullopt forever after the first step (a bug)
};

class FakeScheduler : public core::Scheduler {
 public:
  explicit FakeScheduler(FakeConfig config) : config_(config), runs_(static_cast<std::size_t>(config.runs)) {
    for (std::size_t r = 0; r < runs_.size(); ++r) {
      runs_[r].point.assign(static_cast<std::size_t>(config_.dims), 0.1 * static_cast<double>(r));
      start_step(static_cast<std::int64_t>(r));
    }
  }

  std::optional<core::WorkItem> next() override {
    if (next_calls_++ == config_.throw_in_next_after) core::fail("fake scheduler: injected failure in next()");
    for (std::size_t i = 0; i < runs_.size(); ++i) {
      auto r = (cursor_ + i) % runs_.size();
      auto& run = runs_[r];
      if (run.issued >= run.planned.size()) continue;
      if (config_.stall && run.step > 0) return std::nullopt;
      cursor_ = r + 1;
      auto item = run.planned[run.issued++];
      ++outstanding_;
      return item;
    }
    return std::nullopt;
  }

  void complete(const core::WorkResult& result) override {
    if (complete_calls_++ == config_.throw_in_complete_after) {
      core::fail("fake scheduler: injected failure in complete()");
    }
    if (result.run < 0 || result.run >= config_.runs) core::fail("fake scheduler: result for unknown run ", result.run);
    auto& run = runs_[static_cast<std::size_t>(result.run)];
    auto key = std::make_pair(result.run, result.seq);
    if (results_.count(key)) core::fail("fake scheduler: run ", result.run, " item ", result.seq, " completed twice");
    bool in_step = false;
    for (const auto& it : run.planned) in_step = in_step || it.seq == result.seq;
    if (!in_step) core::fail("fake scheduler: run ", result.run, " item ", result.seq, " is not in its current step");
    results_[key] = result;
    --outstanding_;
    if (++run.answered < run.planned.size()) return;

    if (run.step < config_.steps) {
      // Move to the best candidate; failed items count as infinitely bad.
      double best = INFINITY;
      const std::vector<double>* best_w = nullptr;
      for (const auto& it : run.planned) {
        const auto& res = results_.at({result.run, it.seq});
        for (std::size_t c = 0; res.ok && c < res.losses.size() && c < it.weights.size(); ++c) {
          if (res.losses[c] < best) {
            best = res.losses[c];
            best_w = &it.weights[c];
          }
        }
      }
      if (best_w) run.point = *best_w;
      run.best.push_back(best);
    }
    ++run.step;
    start_step(result.run);
  }

  bool done() const override {
    for (const auto& r : runs_) {
      if (r.step <= config_.steps) return false;
    }
    return true;
  }

  const std::map<std::pair<std::int64_t, std::int64_t>, core::WorkResult>& results() const { return results_; }
  std::size_t items_planned() const { return planned_total_; }
  /// Per run, the best loss of every step.
  std::vector<std::vector<double>> trajectories() const {
    std::vector<std::vector<double>> out;
    for (const auto& r : runs_) out.push_back(r.best);
    return out;
  }

 private:
  struct Run {
    int step = 0;
    std::int64_t next_seq = 0;
    std::vector<double> point;
    std::vector<core::WorkItem> planned;
    std::size_t issued = 0;
    std::size_t answered = 0;
    std::vector<double> best;
  };

  void start_step(std::int64_t r) {
    auto& run = runs_[static_cast<std::size_t>(r)];
    run.planned.clear();
    run.issued = run.answered = 0;
    if (run.step < config_.steps) {
      for (int c = 0; c < config_.candidates; ++c) {
        core::WorkItem item;
        item.run = r;
        item.seq = run.next_seq++;
        item.kind = core::WorkKind::kFitness;
        for (int k = 0; k < 2; ++k) {
          std::vector<double> w = run.point;
          for (std::size_t d = 0; d < w.size(); ++d) {
            w[d] += 0.3 * std::sin(static_cast<double>(item.seq * 7 + k * 3) + static_cast<double>(d));
          }
          item.weights.push_back(std::move(w));
        }
        run.planned.push_back(std::move(item));
      }
    } else if (run.step == config_.steps) {
      for (int s = 0; s < config_.shards; ++s) {
        core::WorkItem item;
        item.run = r;
        item.seq = run.next_seq++;
        item.kind = core::WorkKind::kEvaluate;
        item.weights = {run.point};
        item.begin = config_.examples * s / config_.shards;
        item.end = config_.examples * (s + 1) / config_.shards;
        item.want_composition = s == 0;
        run.planned.push_back(std::move(item));
      }
    }
    planned_total_ += run.planned.size();
  }

  FakeConfig config_;
  std::vector<Run> runs_;
  std::size_t cursor_ = 0;
  std::size_t outstanding_ = 0;
  std::size_t planned_total_ = 0;
  int next_calls_ = 0;
  int complete_calls_ = 0;
  std::map<std::pair<std::int64_t, std::int64_t>, core::WorkResult> results_;
};

/// Deterministic in the item; items with seq % 7 == 3 throw, seq % 11 == 5 fail without throwing.
inline core::WorkResult fake_handler(const core::WorkItem& item) {
  if (item.seq % 7 == 3) throw std::runtime_error("injected handler exception");
  core::WorkResult r;
  if (item.seq % 11 == 5) {
    r.ok = false;
    r.error = core::cat("run ", item.run, ": injected failed item");
    return r;
  }
  auto target = [&](std::size_t d) { return std::cos(static_cast<double>(item.run) + static_cast<double>(d)); };
  if (item.kind == core::WorkKind::kFitness) {
    for (const auto& w : item.weights) {
      double loss = 0;
      for (std::size_t d = 0; d < w.size(); ++d) loss += (w[d] - target(d)) * (w[d] - target(d));
      r.losses.push_back(loss);
    }
  } else {
    double sum = 0;
    for (double v : item.weights.at(0)) sum += v;
    for (auto i = item.begin; i < item.end; ++i) r.predictions.push_back(core::cat("r", item.run, "/", i, "/", sum));
    if (item.want_composition) {
      core::NamedArray a;
      a.name = "base_model.model.encoder.block.0.layer.0.SelfAttention.q.lora_A.weight";
      a.shape = {2, static_cast<std::int64_t>(item.weights[0].size())};
      for (int k = 0; k < 2; ++k) {
        for (double v : item.weights[0]) a.data.push_back(static_cast<float>(v * (k + 1)));
      }
      r.arrays.push_back(std::move(a));
    }
    r.values = {sum, static_cast<double>(item.end - item.begin)};
  }
  return r;
}

/// Equal in everything but the measured seconds.
inline void expect_same_result(const core::WorkResult& a, const core::WorkResult& b) {
  SCOPED_TRACE(core::cat("run ", a.run, " item ", a.seq));
  EXPECT_EQ(a.run, b.run);
  EXPECT_EQ(a.seq, b.seq);
  EXPECT_EQ(a.kind, b.kind);
  EXPECT_EQ(a.ok, b.ok);
  EXPECT_EQ(a.error, b.error);
  EXPECT_EQ(a.losses, b.losses);
  EXPECT_EQ(a.predictions, b.predictions);
  ASSERT_EQ(a.arrays.size(), b.arrays.size());
  for (std::size_t i = 0; i < a.arrays.size(); ++i) {
    EXPECT_EQ(a.arrays[i].name, b.arrays[i].name);
    EXPECT_EQ(a.arrays[i].shape, b.arrays[i].shape);
    EXPECT_EQ(a.arrays[i].data, b.arrays[i].data);
  }
  EXPECT_EQ(a.values, b.values);
}

inline void expect_same_results(const FakeScheduler& a, const FakeScheduler& b) {
  ASSERT_EQ(a.results().size(), b.results().size());
  for (const auto& [key, res] : a.results()) {
    auto it = b.results().find(key);
    ASSERT_NE(it, b.results().end()) << "run " << key.first << " item " << key.second << " missing";
    expect_same_result(res, it->second);
  }
  EXPECT_EQ(a.trajectories(), b.trajectories());
}

}  // namespace lorahub::distributed::test
