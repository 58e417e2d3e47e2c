#include "io/journal.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>
#include <vector>

#include "io/posix_io.h"
#include "lorahub/core/error.h"

namespace lorahub::io::detail {
namespace {

// ---- journal format -------------------------------------------------------------------------------
// header: "LHUNDO01", base size, writer pid, FNV-1a of the previous 24 bytes            (32 bytes)
// record: tag, address, length, <length old bytes>, FNV-1a of everything before it in the record
// Native byte order: a journal lives next to its file for the seconds of one write.

constexpr char kMagic[8] = {'L', 'H', 'U', 'N', 'D', 'O', '0', '1'};
constexpr std::uint64_t kRecordTag = 0x31524e524a55484cULL;
constexpr std::size_t kHeaderSize = 32;
constexpr std::size_t kRecordHead = 24;
constexpr std::size_t kMaxRecordBytes = 4 << 20;  // bounds the memory one record needs

std::uint64_t fnv1a(const char* data, std::size_t n) {
  std::uint64_t h = 14695981039346656037ULL;
  for (std::size_t i = 0; i < n; ++i) {
    h ^= static_cast<unsigned char>(data[i]);
    h *= 1099511628211ULL;
  }
  return h;
}

void put_u64(std::vector<char>& buf, std::uint64_t v) {
  char b[8];
  std::memcpy(b, &v, 8);
  buf.insert(buf.end(), b, b + 8);
}

std::uint64_t get_u64(const char* p) {
  std::uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

struct ParsedJournal {
  bool valid = false;
  std::uint64_t base_size = 0;
  std::vector<std::pair<std::uint64_t, std::vector<char>>> records;
};

// A torn or partial tail ends the record list: a kill (or a full disk) while appending leaves a prefix
// of the record whose overwrite had not started. Anything else that fails its checksum is damage: the
// journal cannot say what the file held, so it is left in place and the file is not used.
bool torn_tail(const std::vector<char>& data, std::size_t off) {
  const std::size_t left = data.size() - off;
  const char* p = data.data() + off;
  if (std::all_of(p, p + left, [](char c) { return c == 0; })) return true;  // appended size, lost bytes
  if (left < kRecordHead + 8) return left < 8 || get_u64(p) == kRecordTag;
  return get_u64(p) == kRecordTag && get_u64(p + 16) > left - kRecordHead - 8;
}

[[noreturn]] void damaged_journal(const std::string& path, const std::string& why) {
  core::fail("journal ", path, " is damaged (", why, "): the write it guarded cannot be rolled back, so its results ",
             "file may be half-written. Move the journal aside to read the file as it is (HDF5's checksums report ",
             "what is inconsistent) and `lorahub merge` the readable runs into a new file");
}

// valid is false for an empty journal: a committed transaction (commit empties it before deleting it).
ParsedJournal parse_journal(int fd, const std::string& path) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) fail_errno("stat of journal " + path);
  std::vector<char> data(static_cast<std::size_t>(st.st_size));
  pread_zero(fd, data.data(), data.size(), 0, "reading journal " + path);
  ParsedJournal out;
  if (data.empty()) return out;
  // The header is fsynced before the journal gets its name, so a named journal always has a whole one.
  if (data.size() < kHeaderSize || std::memcmp(data.data(), kMagic, 8) != 0 ||
      fnv1a(data.data(), 24) != get_u64(data.data() + 24)) {
    damaged_journal(path, core::cat("bad header in its ", data.size(), " bytes"));
  }
  out.valid = true;
  out.base_size = get_u64(data.data() + 8);
  std::size_t off = kHeaderSize;
  while (off < data.size()) {
    const char* p = data.data() + off;
    const std::size_t left = data.size() - off;
    const std::uint64_t len = left >= kRecordHead ? get_u64(p + 16) : 0;
    if (left < kRecordHead + 8 || get_u64(p) != kRecordTag || len > left - kRecordHead - 8 ||
        fnv1a(p, kRecordHead + len) != get_u64(p + kRecordHead + len)) {
      if (torn_tail(data, off)) break;
      damaged_journal(path, core::cat("record ", out.records.size() + 1, " at byte ", off, " fails its checksum"));
    }
    out.records.emplace_back(get_u64(p + 8), std::vector<char>(p + kRecordHead, p + kRecordHead + len));
    off += kRecordHead + len + 8;
  }
  return out;
}

// Records are applied newest first so the oldest copy of any byte is what remains.
void restore(const ParsedJournal& journal, const std::string& file, const std::string& journal_path) {
  int raw = ::open(file.c_str(), O_RDWR | O_CLOEXEC);
  if (raw < 0) {
    fail_errno(core::cat("opening ", file, " for writing to roll back an interrupted write (journal ",
                         journal_path, "; open it once with write permission)"));
  }
  FdGuard fd(raw);
  std::string what = "rolling back " + file + " from " + journal_path;
  for (auto it = journal.records.rbegin(); it != journal.records.rend(); ++it) {
    if (crash_point(true)) {
      pwrite_all(fd.get(), it->second.data(), it->second.size() / 2, it->first, what, Space::kReuses);
      die();
    }
    pwrite_all(fd.get(), it->second.data(), it->second.size(), it->first, what, Space::kReuses);
  }
  crash_point(false);
  if (::ftruncate(fd.get(), static_cast<off_t>(journal.base_size)) != 0) fail_errno(what);
  crash_point(false);
  sync_fd(fd.get(), what);
}

void remove_journal(const std::string& path) {
  crash_point(false);
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) fail_errno("deleting journal " + path);
  crash_point(false);
  sync_parent_dir(path);
}

// Temporaries of killed writers: a journal being set up ("<file>-journal.tmp.<pid>") or a file
// being created ("<file>.tmp.<pid>"). A live owner holds a lock on them; stale ones are removed.
void remove_stale_temps(const std::string& file) {
  std::string dir = parent_dir(file);
  std::string prefixes[2] = {base_name(Journal::path_for(file)) + ".tmp.", base_name(file) + ".tmp."};
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return;
  std::vector<std::string> stale;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    for (const auto& prefix : prefixes) {
      if (name.size() > prefix.size() && name.compare(0, prefix.size(), prefix) == 0) {
        stale.push_back(dir + "/" + name);
      }
    }
  }
  ::closedir(d);
  for (const auto& path : stale) {
    int raw = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (raw < 0) continue;
    FdGuard fd(raw);
    if (::flock(fd.get(), LOCK_EX | LOCK_NB) == 0) ::unlink(path.c_str());
  }
}

}  // namespace

void append_undo_records(int journal_fd, int file_fd, std::uint64_t addr, std::uint64_t len, const std::string& file) {
  const std::string what = "appending to the journal of " + file;
  for (std::uint64_t end = addr + len; addr < end;) {
    std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(end - addr, kMaxRecordBytes));
    std::vector<char> record;
    record.reserve(kRecordHead + n + 8);
    put_u64(record, kRecordTag);
    put_u64(record, addr);
    put_u64(record, n);
    record.resize(kRecordHead + n);
    pread_zero(file_fd, record.data() + kRecordHead, n, addr, "reading old bytes of " + file);
    put_u64(record, fnv1a(record.data(), record.size()));
    if (crash_point(true)) {
      write_all(journal_fd, record.data(), record.size() / 2, what, Space::kAllocates);
      die();
    }
    write_all(journal_fd, record.data(), record.size(), what, Space::kAllocates);
    sync_fd(journal_fd, "syncing the journal of " + file);
    addr += n;
  }
}

std::string Journal::path_for(const std::string& file) { return file + "-journal"; }

Journal::Journal(int fd, std::string file, std::uint64_t base_size)
    : fd_(fd), file_(std::move(file)), path_(path_for(file_)), base_size_(base_size) {}

Journal::Journal(Journal&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      file_(std::move(other.file_)),
      path_(std::move(other.path_)),
      base_size_(other.base_size_) {}

Journal::~Journal() {
  if (fd_ >= 0) ::close(fd_);
}

Journal Journal::begin(const std::string& file) {
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0) fail_errno("stat of results file " + file);
  std::string path = path_for(file);
  std::string tmp = core::cat(path, ".tmp.", ::getpid());
  ::unlink(tmp.c_str());
  int raw = ::open(tmp.c_str(), O_RDWR | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0644);
  if (raw < 0) fail_errno("creating journal " + tmp);
  FdGuard fd(raw);
  try {
    if (!try_flock(fd.get(), LOCK_EX, "locking journal " + tmp)) core::fail("journal ", tmp, " is locked");
    std::vector<char> header(kMagic, kMagic + 8);
    put_u64(header, static_cast<std::uint64_t>(st.st_size));
    put_u64(header, static_cast<std::uint64_t>(::getpid()));
    put_u64(header, fnv1a(header.data(), header.size()));
    write_all(fd.get(), header.data(), header.size(), "writing journal " + tmp, Space::kAllocates);
    sync_fd(fd.get(), "syncing journal " + tmp);
    crash_point(false);
    // link() does not replace an existing journal, so two writers cannot both start.
    if (::link(tmp.c_str(), path.c_str()) != 0) {
      int err = errno;
      if (err == EEXIST || ::access(path.c_str(), F_OK) == 0) {
        core::fail("results file ", file, " already has a journal ", path,
                   ": another process is writing it");
      }
      if (::rename(tmp.c_str(), path.c_str()) != 0) fail_errno("renaming journal " + tmp + " to " + path);
    }
  } catch (...) {
    ::unlink(tmp.c_str());
    throw;
  }
  ::unlink(tmp.c_str());
  sync_parent_dir(path);
  return Journal(fd.release(), file, static_cast<std::uint64_t>(st.st_size));
}

void Journal::commit() {
  // An empty journal is a committed one, so the commit point is this truncate.
  crash_point(false);
  if (::ftruncate(fd_, 0) != 0) fail_errno("emptying journal " + path_);
  remove_journal(path_);
  drop();
}

void Journal::rollback() {
  ParsedJournal parsed = parse_journal(fd_, path_);
  if (parsed.valid) restore(parsed, file_, path_);
  remove_journal(path_);
  drop();
}

void Journal::drop() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

bool recover(const std::string& file) {
  remove_stale_temps(file);
  std::string path = Journal::path_for(file);
  int raw = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (raw < 0) {
    if (errno == ENOENT) return false;
    fail_errno(core::cat("opening journal ", path, " of ", file,
                         " (an interrupted write must be rolled back; this needs write permission)"));
  }
  FdGuard fd(raw);
  if (!try_flock(fd.get(), LOCK_EX, "locking journal " + path)) {
    core::fail("results file ", file, " is being written by another process (its journal ", path,
               " is locked)");
  }
  // The writer may have committed and deleted the journal between our open and our lock.
  struct stat held {}, named {};
  if (::fstat(fd.get(), &held) != 0) fail_errno("stat of journal " + path);
  if (::stat(path.c_str(), &named) != 0 || held.st_ino != named.st_ino || held.st_dev != named.st_dev) {
    return false;
  }
  ParsedJournal parsed = parse_journal(fd.get(), path);
  // A journal whose file was deleted has nothing left to protect.
  bool file_present = ::access(file.c_str(), F_OK) == 0;
  if (parsed.valid && file_present) restore(parsed, file, path);
  remove_journal(path);
  return parsed.valid && file_present;
}

}  // namespace lorahub::io::detail
