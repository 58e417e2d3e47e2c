#pragma once
// Writes finished runs to the result file on a thread of its own, so the coordinator keeps handing out
// work while HDF5 writes and fsyncs (tens of milliseconds per run).
#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>

#include "lorahub/io/result_store.h"

namespace lorahub::runner {

class RecordWriter {
 public:
  explicit RecordWriter(io::ResultStore& store) : store_(store), thread_([this] { loop(); }) {}
  ~RecordWriter() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }
  RecordWriter(const RecordWriter&) = delete;
  RecordWriter& operator=(const RecordWriter&) = delete;

  /// Queues a run; rethrows the error of an earlier write, if any.
  void push(io::RunRecord record) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (error_) std::rethrow_exception(error_);
    queue_.push_back(std::move(record));
    cv_.notify_all();
  }
  /// Rethrows the error of an earlier write, if any (the coordinator polls this between results, so a
  /// full disk stops the job within one work item instead of at the next finished run).
  void check() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (error_) std::rethrow_exception(error_);
  }
  /// Waits until every queued run is written; rethrows a write error.
  void flush() {
    std::unique_lock<std::mutex> lock(mutex_);
    cv_.wait(lock, [this] { return (queue_.empty() && !busy_) || error_; });
    if (error_) std::rethrow_exception(error_);
  }

 private:
  void loop() {
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
      cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;
      auto record = std::move(queue_.front());
      queue_.pop_front();
      busy_ = true;
      lock.unlock();
      std::exception_ptr error;
      try {
        store_.write_run(record);
      } catch (...) {
        error = std::current_exception();
      }
      lock.lock();
      busy_ = false;
      if (error && !error_) error_ = error;
      // After a failed write the job ends: the runs still queued are left to --resume rather than
      // each failing in turn against the same full disk.
      if (error_) queue_.clear();
      cv_.notify_all();
    }
  }

  io::ResultStore& store_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<io::RunRecord> queue_;
  bool busy_ = false;
  bool stop_ = false;
  std::exception_ptr error_;
  std::thread thread_;
};

}  // namespace lorahub::runner
