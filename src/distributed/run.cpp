#include "lorahub/distributed/run.h"

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdio>
#include <deque>
#include <exception>
#include <list>
#include <optional>
#include <thread>
#include <utility>

#include "lorahub/core/error.h"
#include "lorahub/core/log.h"
#include "lorahub/distributed/comm.h"
#include "mpi_comm.h"

namespace lorahub::distributed {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

/// Runs f() and adds its wall time to `total`, also when it throws.
template <class F>
decltype(auto) timed(double& total, F&& f) {
  struct Add {
    double& total;
    Clock::time_point start = Clock::now();
    ~Add() { total += seconds_since(start); }
  } add{total};
  return f();
}

/// Sleep between idle polls: Open MPI's blocking calls spin a core, and with more ranks than cores a
/// spinning coordinator or idle worker would steal the CPU from the ranks doing the work. Each sleep
/// is a quarter of the time idle so far (within [min, max]): doubling instead makes the coordinator
/// and a worker wait out each other's ever longer sleeps, and a trivial round trip then costs about
/// three maximal sleeps rather than a few minimal ones.
class Backoff {
 public:
  Backoff(double min_s, double max_s) : min_(min_s), max_(max_s), idle_since_(Clock::now()) {}
  void reset() { idle_since_ = Clock::now(); }
  void wait() {
    double s = std::clamp(seconds_since(idle_since_) / 4, min_, max_);
    std::this_thread::sleep_for(std::chrono::duration<double>(s));
  }

 private:
  double min_;
  double max_;
  Clock::time_point idle_since_;
};

void validate(const CoordinatorOptions& o) {
  if (o.prefetch < 1) core::fail("dist: prefetch must be >= 1, got ", o.prefetch);
  if (!(o.min_sleep_s > 0) || !(o.max_sleep_s >= o.min_sleep_s) || o.max_sleep_s > 1.0) {
    core::fail("dist: idle sleep must satisfy 0 < min_sleep_s <= max_sleep_s <= 1 s, got ", o.min_sleep_s, " and ",
               o.max_sleep_s);
  }
}

core::WorkResult failed_result(const core::WorkItem& item, const std::string& why) {
  core::WorkResult r;
  r.run = item.run;
  r.seq = item.seq;
  r.kind = item.kind;
  r.ok = false;
  r.error = core::cat("run ", item.run, " (item ", item.seq, "): ", why);
  return r;
}

core::WorkResult call_handler(const Handler& handler, const core::WorkItem& item) {
  auto start = Clock::now();
  core::WorkResult r;
  try {
    r = handler(item);
  } catch (const std::exception& e) {
    r = failed_result(item, e.what());
  } catch (...) {
    r = failed_result(item, "unknown exception");
  }
  r.run = item.run;
  r.seq = item.seq;
  r.kind = item.kind;
  if (r.seconds == 0) r.seconds = seconds_since(start);
  return r;
}

void finish_stats(RunStats& s) {
  double busy = 0;
  for (const auto& w : s.workers) busy += w.busy_seconds;
  s.efficiency = s.wall_seconds > 0 && !s.workers.empty()
                     ? busy / (s.wall_seconds * static_cast<double>(s.workers.size()))
                     : 0;
}

}  // namespace

double RunStats::coordinator_seconds_per_message() const {
  auto n = messages_sent + messages_received;
  return n ? (scheduler_seconds + mpi_seconds) / static_cast<double>(n) : 0;
}

std::string RunStats::summary() const {
  char buf[384];
  std::snprintf(buf, sizeof buf,
                "%zu items (%zu failed) in %.2f s on %zu worker(s), efficiency %.3f; coordinator %.1f us/message "
                "(scheduler %.3f s, MPI %.3f s, %zu msgs, %.1f MB; %.3f s probing while idle)",
                items, failed, wall_seconds, workers.size(), efficiency, coordinator_seconds_per_message() * 1e6,
                scheduler_seconds, mpi_seconds, messages_sent + messages_received,
                static_cast<double>(bytes_sent + bytes_received) / 1e6, idle_probe_seconds);
  return buf;
}

RunStats run_serial(core::Scheduler& scheduler, const Handler& handler, const ResultCallback& on_result) {
  auto start = Clock::now();
  RunStats stats;
  WorkerStats me;
  while (!timed(stats.scheduler_seconds, [&] { return scheduler.done(); })) {
    auto item = timed(stats.scheduler_seconds, [&] { return scheduler.next(); });
    if (!item) {
      // next() may have finished the last runs itself (e.g. runs that fail as they start).
      if (timed(stats.scheduler_seconds, [&] { return scheduler.done(); })) break;
      core::fail("dist: the scheduler is not done but has no item ready and none pending (scheduler bug)");
    }
    auto result = call_handler(handler, *item);
    ++me.items;
    me.failed += result.ok ? 0 : 1;
    me.busy_seconds += result.seconds;
    timed(stats.scheduler_seconds, [&] { scheduler.complete(result); });
    if (on_result) on_result(result, me.items);
  }
  stats.items = me.items;
  stats.failed = me.failed;
  stats.workers.push_back(me);
  stats.wall_seconds = seconds_since(start);
  finish_stats(stats);
  return stats;
}

#ifdef LORAHUB_DISTRIBUTED_MPI
namespace {

// Tags of the manager–worker protocol, on Comm's private duplicate of MPI_COMM_WORLD.
constexpr int kTagWork = 11;     // coordinator -> worker: a serialized WorkItem
constexpr int kTagResult = 12;   // worker -> coordinator: a serialized WorkResult, in the worker's arrival order
constexpr int kTagStop = 13;     // coordinator -> worker, empty: no more work; drop anything queued
constexpr int kTagStopped = 14;  // worker -> coordinator, empty: sent after the worker's last result

struct Message {
  int source = -1;
  int tag = -1;
  std::string bytes;
};

/// Nonblocking point-to-point messages with byte and time accounting.
class Link {
 public:
  explicit Link(const Comm& comm) : world_(comm.impl().world) {}
  Link(const Link&) = delete;
  Link& operator=(const Link&) = delete;
  ~Link() {
    // Only after an MPI failure can sends still be pending; MPI may yet read their buffers, so they
    // are deliberately leaked rather than freed under it.
    if (!pending_.empty()) new std::list<Pending>(std::move(pending_));
  }

  /// The next message matching source/tag, if one has arrived.
  /// A probe that finds nothing is waiting, not work done for a message: its time goes to idle_probe_seconds.
  std::optional<Message> poll(int source, int tag) {
    const auto start = Clock::now();
    int flag = 0;
    MPI_Message handle;
    MPI_Status status;
    check_mpi(MPI_Improbe(source, tag, world_, &flag, &handle, &status), "MPI_Improbe");
    if (!flag) {
      idle_probe_seconds += seconds_since(start);
      return std::nullopt;
    }
    mpi_seconds += seconds_since(start);
    return timed(mpi_seconds, [&]() -> std::optional<Message> {
      int count = 0;
      check_mpi(MPI_Get_count(&status, MPI_BYTE, &count), "MPI_Get_count");
      Message m{status.MPI_SOURCE, status.MPI_TAG, std::string(static_cast<std::size_t>(count), '\0')};
      check_mpi(MPI_Mrecv(m.bytes.data(), count, MPI_BYTE, &handle, MPI_STATUS_IGNORE), "MPI_Mrecv");
      ++received;
      bytes_received += m.bytes.size();
      return m;
    });
  }

  void send(std::string bytes, int dest, int tag) {
    if (bytes.size() > static_cast<std::size_t>(INT_MAX)) {
      core::fail("dist: a ", bytes.size(), "-byte message exceeds MPI's 2 GiB message limit");
    }
    timed(mpi_seconds, [&] {
      pending_.push_back(Pending{MPI_REQUEST_NULL, std::move(bytes)});
      auto& p = pending_.back();
      int rc = MPI_Isend(p.bytes.data(), static_cast<int>(p.bytes.size()), MPI_BYTE, dest, tag, world_, &p.request);
      if (rc != MPI_SUCCESS) pending_.pop_back();
      check_mpi(rc, "MPI_Isend");
      ++sent;
      bytes_sent += p.bytes.size();
    });
  }

  /// Frees the buffers of sends that have completed; true if any had.
  bool progress() {
    return timed(mpi_seconds, [&] {
      bool any = false;
      for (auto it = pending_.begin(); it != pending_.end();) {
        int done = 0;
        check_mpi(MPI_Test(&it->request, &done, MPI_STATUS_IGNORE), "MPI_Test");
        if (done) {
          it = pending_.erase(it);
          any = true;
        } else {
          ++it;
        }
      }
      return any;
    });
  }

  bool idle() const { return pending_.empty(); }

  std::size_t sent = 0;
  std::size_t received = 0;
  std::size_t bytes_sent = 0;
  std::size_t bytes_received = 0;
  double mpi_seconds = 0;
  double idle_probe_seconds = 0;

 private:
  struct Pending {
    MPI_Request request;
    std::string bytes;
  };
  MPI_Comm world_;
  std::list<Pending> pending_;
};

class Coordinator {
 public:
  Coordinator(Comm& comm, core::Scheduler& scheduler, const CoordinatorOptions& options)
      : comm_(comm), scheduler_(scheduler), options_(options), link_(comm) {
    for (int r = 1; r < comm.size(); ++r) {
      workers_.emplace_back();
      workers_.back().stats.rank = r;
    }
  }

  RunStats run() {
    auto start = Clock::now();
    // Whatever leaves this scope early (scheduler, on_result, corrupt message, MPI), the workers are
    // stopped first, so every rank returns.
    struct StopGuard {
      Coordinator& c;
      bool armed = true;
      ~StopGuard() {
        if (!armed) return;
        try {
          c.shutdown();
        } catch (const std::exception& e) {
          core::log_warn(core::cat("dist: could not stop the workers (", e.what(), "); aborting"));
          c.comm_.abort(1);
        }
      }
    } guard{*this};

    Backoff backoff(options_.min_sleep_s, options_.max_sleep_s);
    for (;;) {
      bool active = false;
      while (auto m = link_.poll(MPI_ANY_SOURCE, kTagResult)) {
        receive(*m);
        active = true;
      }
      if (timed(stats_.scheduler_seconds, [&] { return scheduler_.done(); })) break;
      active = dispatch() || active;
      active = link_.progress() || active;
      if (active) {
        backoff.reset();
        continue;
      }
      if (in_flight_ == 0) {
        // dispatch()'s next() may have finished the last runs itself (runs that fail as they start).
        if (timed(stats_.scheduler_seconds, [&] { return scheduler_.done(); })) break;
        core::fail("dist: the scheduler is not done but has no item ready and none in flight (scheduler bug)");
      }
      backoff.wait();
    }
    shutdown();
    guard.armed = false;

    for (const auto& w : workers_) stats_.workers.push_back(w.stats);
    stats_.messages_sent = link_.sent;
    stats_.messages_received = link_.received;
    stats_.bytes_sent = link_.bytes_sent;
    stats_.bytes_received = link_.bytes_received;
    stats_.mpi_seconds = link_.mpi_seconds;
    stats_.idle_probe_seconds = link_.idle_probe_seconds;
    stats_.wall_seconds = seconds_since(start);
    finish_stats(stats_);
    return stats_;
  }

 private:
  struct InFlight {
    std::int64_t run;
    std::int64_t seq;
    core::WorkKind kind;
    Clock::time_point sent;
  };
  struct Worker {
    WorkerStats stats;
    std::deque<InFlight> queue;  // in send order = the order the worker answers
    bool stop_sent = false;
    bool acknowledged = false;
  };

  Worker& worker(int source) {
    if (source < 1 || source > static_cast<int>(workers_.size())) {
      core::fail("dist: message from unexpected rank ", source);
    }
    return workers_[static_cast<std::size_t>(source - 1)];
  }

  /// Hands ready items to the least-loaded workers with room; true if any was sent.
  bool dispatch() {
    bool sent = false;
    const auto room = static_cast<std::size_t>(options_.prefetch);
    for (;;) {
      Worker* best = nullptr;
      for (auto& w : workers_) {
        if (w.queue.size() < room && (!best || w.queue.size() < best->queue.size())) best = &w;
      }
      if (!best) break;
      auto item = timed(stats_.scheduler_seconds, [&] { return scheduler_.next(); });
      if (!item) break;
      link_.send(core::serialize(*item), best->stats.rank, kTagWork);
      best->queue.push_back(InFlight{item->run, item->seq, item->kind, Clock::now()});
      ++in_flight_;
      sent = true;
    }
    return sent;
  }

  void receive(const Message& m) {
    auto& w = worker(m.source);
    if (w.queue.empty()) core::fail("dist: rank ", m.source, " sent a result but has no item in flight");
    core::WorkResult result;
    try {
      result = core::deserialize_result(m.bytes);
    } catch (const core::Error& e) {
      core::fail("dist: result from rank ", m.source, ": ", e.what());
    }
    const auto& expected = w.queue.front();
    if (result.run == -1 && !result.ok) {
      // The worker could not decode the item, so only the coordinator knows which one it was.
      result.run = expected.run;
      result.seq = expected.seq;
      result.kind = expected.kind;
    } else if (result.run != expected.run || result.seq != expected.seq) {
      core::fail("dist: rank ", m.source, " answered run ", result.run, " item ", result.seq, " but run ", expected.run,
                 " item ", expected.seq, " was next in its queue");
    }
    stats_.round_trip_seconds += seconds_since(expected.sent);
    w.queue.pop_front();
    --in_flight_;
    ++w.stats.items;
    w.stats.failed += result.ok ? 0 : 1;
    w.stats.busy_seconds += result.seconds;
    ++stats_.items;
    stats_.failed += result.ok ? 0 : 1;
    timed(stats_.scheduler_seconds, [&] { scheduler_.complete(result); });
    if (options_.on_result) options_.on_result(result, stats_.items);
  }

  /// Sends stop to every worker and drains their messages until each has acknowledged; results that
  /// still arrive belong to an abandoned run and are dropped.
  void shutdown() {
    for (auto& w : workers_) {
      if (w.stop_sent) continue;
      link_.send(std::string(), w.stats.rank, kTagStop);
      w.stop_sent = true;
    }
    std::size_t waiting = 0;
    for (const auto& w : workers_) waiting += w.acknowledged ? 0 : 1;
    std::size_t dropped = 0;
    Backoff backoff(options_.min_sleep_s, options_.max_sleep_s);
    while (waiting > 0 || !link_.idle()) {
      bool active = false;
      while (auto m = link_.poll(MPI_ANY_SOURCE, MPI_ANY_TAG)) {
        active = true;
        auto& w = worker(m->source);
        if (m->tag == kTagStopped && !w.acknowledged) {
          w.acknowledged = true;
          --waiting;
        } else if (m->tag == kTagResult) {
          ++dropped;
        }
      }
      active = link_.progress() || active;
      if (active) {
        backoff.reset();
      } else {
        backoff.wait();
      }
    }
    if (dropped) core::log_debug(core::cat("dist: dropped ", dropped, " result(s) that arrived after stop"));
  }

  Comm& comm_;
  core::Scheduler& scheduler_;
  const CoordinatorOptions& options_;
  Link link_;
  std::vector<Worker> workers_;
  std::size_t in_flight_ = 0;
  RunStats stats_;
};

/// Decodes and runs one item; never throws (a result too large for one message becomes a failure).
std::string process(const Handler& handler, const std::string& bytes) {
  core::WorkResult result;
  try {
    result = call_handler(handler, core::deserialize_item(bytes));
  } catch (const std::exception& e) {
    result.ok = false;  // run stays -1: the coordinator fills in which item this was
    result.error = core::cat("undecodable work item: ", e.what());
  }
  auto out = core::serialize(result);
  if (out.size() > static_cast<std::size_t>(INT_MAX)) {
    core::WorkResult small;
    small.run = result.run;
    small.seq = result.seq;
    small.kind = result.kind;
    small.ok = false;
    small.error = core::cat("run ", result.run, " (item ", result.seq, "): result of ", out.size(),
                            " bytes exceeds MPI's 2 GiB message limit");
    small.seconds = result.seconds;
    out = core::serialize(small);
  }
  return out;
}

}  // namespace

RunStats run_coordinator(Comm& comm, core::Scheduler& scheduler, const CoordinatorOptions& options) {
  if (comm.rank() != 0) core::fail("dist: run_coordinator called on rank ", comm.rank(), ", not 0");
  if (comm.size() < 2) core::fail("dist: run_coordinator needs at least one worker rank; use run() or run_serial()");
  validate(options);
  Coordinator coordinator(comm, scheduler, options);
  return coordinator.run();
}

void run_worker(Comm& comm, const Handler& handler, const CoordinatorOptions& options) {
  if (comm.rank() == 0) core::fail("dist: run_worker called on rank 0, the coordinator");
  validate(options);
  Link link(comm);
  std::deque<std::string> queue;
  bool stop = false;
  Backoff backoff(options.min_sleep_s, options.max_sleep_s);
  while (!stop) {
    bool active = false;
    while (!stop) {
      auto m = link.poll(0, MPI_ANY_TAG);
      if (!m) break;
      active = true;
      if (m->tag == kTagWork) {
        queue.push_back(std::move(m->bytes));
      } else if (m->tag == kTagStop) {
        stop = true;
      } else {
        core::log_warn(core::cat("dist: ignoring a message with unknown tag ", m->tag));
      }
    }
    active = link.progress() || active;
    if (stop) break;
    if (!queue.empty()) {
      auto out = process(handler, queue.front());
      queue.pop_front();
      link.send(std::move(out), 0, kTagResult);
      active = true;
    }
    if (active) {
      backoff.reset();
    } else {
      backoff.wait();
    }
  }
  if (!queue.empty()) core::log_debug(core::cat("dist: stop with ", queue.size(), " queued item(s) dropped"));
  link.send(std::string(), 0, kTagStopped);
  while (!link.idle()) {
    if (!link.progress()) backoff.wait();
  }
}

#else  // built without MPI: one rank, so only run_serial is ever reached

RunStats run_coordinator(Comm&, core::Scheduler&, const CoordinatorOptions&) {
  core::fail("dist: run_coordinator needs MPI, but lorahub was built with LORAHUB_WITH_MPI=OFF");
}

void run_worker(Comm&, const Handler&, const CoordinatorOptions&) {
  core::fail("dist: run_worker needs MPI, but lorahub was built with LORAHUB_WITH_MPI=OFF");
}

#endif

RunStats run(Comm& comm, core::Scheduler* scheduler, const Handler& handler, const CoordinatorOptions& options) {
  if (comm.size() == 1) {
    if (!scheduler) core::fail("distributed::run: rank 0 needs a scheduler");
    validate(options);
    return run_serial(*scheduler, handler, options.on_result);
  }
  // Agreed, so a missing scheduler on rank 0 fails every rank instead of leaving workers waiting.
  comm.agree_or_throw(comm.rank() != 0 || scheduler != nullptr, "distributed::run: rank 0 needs a scheduler");
  if (comm.rank() == 0) return run_coordinator(comm, *scheduler, options);
  validate(options);
  try {
    run_worker(comm, handler, options);
  } catch (const std::exception& e) {
    // Only MPI itself (or memory) fails here; the coordinator would wait for this rank forever.
    core::log_warn(core::cat("dist: worker failed: ", e.what(), "; aborting the job"));
    comm.abort(1);
  }
  return RunStats{};
}

}  // namespace lorahub::distributed
