#include "io/journal.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "lorahub/core/error.h"

namespace lorahub::io::detail {
namespace {

// ---- crash injection ------------------------------------------------------------------------------

std::atomic<long> g_crash_target{0};
std::atomic<long> g_crash_passed{0};
std::atomic<bool> g_crash_torn{false};

[[noreturn]] void die() {
  std::raise(SIGKILL);
  _exit(137);
}

// Returns true when the caller must write the first half of its bytes and then call die().
bool crash_point(bool can_tear) {
  long n = ++g_crash_passed;
  if (n != g_crash_target.load()) return false;
  if (can_tear && g_crash_torn.load()) return true;
  die();
}

// ---- POSIX helpers --------------------------------------------------------------------------------

std::string sys_error(const std::string& what, int err) {
  return core::cat(what, ": ", std::strerror(err), " (errno ", err, ")");
}

[[noreturn]] void fail_errno(const std::string& what) { throw core::Error(sys_error(what, errno)); }

class FdGuard {
 public:
  explicit FdGuard(int fd) : fd_(fd) {}
  ~FdGuard() {
    if (fd_ >= 0) ::close(fd_);
  }
  FdGuard(const FdGuard&) = delete;
  FdGuard& operator=(const FdGuard&) = delete;
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

void pwrite_all(int fd, const void* buf, std::size_t n, std::uint64_t off, const std::string& what) {
  const char* p = static_cast<const char*>(buf);
  while (n > 0) {
    ssize_t w = ::pwrite(fd, p, n, static_cast<off_t>(off));
    if (w < 0) {
      if (errno == EINTR) continue;
      fail_errno(what);
    }
    p += w;
    n -= static_cast<std::size_t>(w);
    off += static_cast<std::uint64_t>(w);
  }
}

void write_all(int fd, const void* buf, std::size_t n, const std::string& what) {
  const char* p = static_cast<const char*>(buf);
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      fail_errno(what);
    }
    p += w;
    n -= static_cast<std::size_t>(w);
  }
}

// Bytes past the end of the file read as zeros, as HDF5 expects of a driver.
void pread_zero(int fd, void* buf, std::size_t n, std::uint64_t off, const std::string& what) {
  char* p = static_cast<char*>(buf);
  while (n > 0) {
    ssize_t r = ::pread(fd, p, n, static_cast<off_t>(off));
    if (r < 0) {
      if (errno == EINTR) continue;
      fail_errno(what);
    }
    if (r == 0) {
      std::memset(p, 0, n);
      return;
    }
    p += r;
    n -= static_cast<std::size_t>(r);
    off += static_cast<std::uint64_t>(r);
  }
}

void sync_fd(int fd, const std::string& what) {
  if (::fsync(fd) != 0) fail_errno(what);
}

// Returns false when another open file description holds a conflicting lock. File systems
// without flock (some Lustre/NFS mounts) count as locked: there is nothing better to do there.
bool try_flock(int fd, int op, const std::string& what) {
  for (;;) {
    if (::flock(fd, op | LOCK_NB) == 0) return true;
    if (errno == EINTR) continue;
    if (errno == EWOULDBLOCK) return false;
    if (errno == ENOSYS || errno == ENOLCK || errno == EOPNOTSUPP) return true;
    fail_errno(what);
  }
}

std::string parent_dir(const std::string& path) {
  auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::string base_name(const std::string& path) {
  auto slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// ---- journal format -------------------------------------------------------------------------------
// header: "LHUNDO01", base size, writer pid, FNV-1a of the previous 24 bytes            (32 bytes)
// record: tag, address, length, <length old bytes>, FNV-1a of everything before it in the record
// Native byte order: a journal lives next to its file for the seconds of one write.

constexpr char kMagic[8] = {'L', 'H', 'U', 'N', 'D', 'O', '0', '1'};
constexpr std::uint64_t kRecordTag = 0x31524e524a55484cULL;
constexpr std::size_t kHeaderSize = 32;
constexpr std::size_t kRecordHead = 24;
constexpr std::size_t kMaxRecordBytes = 4 << 20;

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

// A torn or partial tail (a kill while appending) ends the record list: the overwrite that record
// was guarding had not started yet.
ParsedJournal parse_journal(int fd, const std::string& path) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) fail_errno("stat of journal " + path);
  std::vector<char> data(static_cast<std::size_t>(st.st_size));
  pread_zero(fd, data.data(), data.size(), 0, "reading journal " + path);
  ParsedJournal out;
  if (data.size() < kHeaderSize || std::memcmp(data.data(), kMagic, 8) != 0 ||
      fnv1a(data.data(), 24) != get_u64(data.data() + 24)) {
    return out;
  }
  out.valid = true;
  out.base_size = get_u64(data.data() + 8);
  std::size_t off = kHeaderSize;
  while (data.size() - off >= kRecordHead + 8) {
    const char* p = data.data() + off;
    if (get_u64(p) != kRecordTag) break;
    std::uint64_t addr = get_u64(p + 8);
    std::uint64_t len = get_u64(p + 16);
    if (len > data.size() - off - kRecordHead - 8) break;
    if (fnv1a(p, kRecordHead + len) != get_u64(p + kRecordHead + len)) break;
    out.records.emplace_back(addr, std::vector<char>(p + kRecordHead, p + kRecordHead + len));
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
      pwrite_all(fd.get(), it->second.data(), it->second.size() / 2, it->first, what);
      die();
    }
    pwrite_all(fd.get(), it->second.data(), it->second.size(), it->first, what);
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

// ---- the file driver ------------------------------------------------------------------------------

constexpr haddr_t kMaxAddr = (static_cast<haddr_t>(1) << (8 * sizeof(off_t) - 1)) - 1;

struct State {
  int fd = -1;
  std::string name;
  haddr_t eoa = 0;
  haddr_t eof = 0;
  dev_t device = 0;
  ino_t inode = 0;
  bool writable = false;
  bool dirty = false;
  DriverConfig config;
  std::map<haddr_t, haddr_t> saved;  // journaled [begin, end) ranges, disjoint and merged
};

struct DriverFile {
  H5FD_t pub;  // first: HDF5 hands this pointer back to every callback
  State* state;
};
static_assert(std::is_standard_layout_v<DriverFile>, "DriverFile must be pointer-interconvertible");

State& state_of(const H5FD_t* file) { return *reinterpret_cast<const DriverFile*>(file)->state; }

void push_error(const char* func, hid_t minor, const std::string& message) {
  H5Epush2(H5E_DEFAULT, __FILE__, func, __LINE__, H5E_ERR_CLS, H5E_VFL, minor, "%s", message.c_str());
}

// Ranges of [begin, end) not yet in `saved`.
std::vector<std::pair<haddr_t, haddr_t>> unsaved(const std::map<haddr_t, haddr_t>& saved, haddr_t begin,
                                                 haddr_t end) {
  std::vector<std::pair<haddr_t, haddr_t>> gaps;
  haddr_t cur = begin;
  auto it = saved.upper_bound(cur);
  if (it != saved.begin()) {
    auto prev = std::prev(it);
    if (prev->second > cur) cur = prev->second;
  }
  while (cur < end) {
    it = saved.lower_bound(cur);
    haddr_t gap_end = (it == saved.end() || it->first > end) ? end : it->first;
    if (gap_end > cur) gaps.emplace_back(cur, gap_end);
    if (it == saved.end() || it->first >= end) break;
    cur = it->second;
  }
  return gaps;
}

void mark_saved(std::map<haddr_t, haddr_t>& saved, haddr_t begin, haddr_t end) {
  auto it = saved.lower_bound(begin);
  if (it != saved.begin()) {
    auto prev = std::prev(it);
    if (prev->second >= begin) it = prev;
  }
  while (it != saved.end() && it->first <= end) {
    begin = std::min(begin, it->first);
    end = std::max(end, it->second);
    it = saved.erase(it);
  }
  saved.emplace(begin, end);
}

// Before bytes that existed when the transaction began are overwritten, their old contents go to
// the journal, fsynced, once per byte.
void journal_old_bytes(State& s, haddr_t begin, haddr_t end) {
  if (s.config.journal_fd < 0) return;
  end = std::min<haddr_t>(end, s.config.base_size);
  if (begin >= end) return;
  for (auto [gap_begin, gap_end] : unsaved(s.saved, begin, end)) {
    for (haddr_t a = gap_begin; a < gap_end;) {
      std::size_t len = static_cast<std::size_t>(std::min<haddr_t>(gap_end - a, kMaxRecordBytes));
      std::vector<char> record;
      record.reserve(kRecordHead + len + 8);
      put_u64(record, kRecordTag);
      put_u64(record, a);
      put_u64(record, len);
      record.resize(kRecordHead + len);
      pread_zero(s.fd, record.data() + kRecordHead, len, a, "reading old bytes of " + s.name);
      put_u64(record, fnv1a(record.data(), record.size()));
      std::string what = "appending to the journal of " + s.name;
      if (crash_point(true)) {
        write_all(s.config.journal_fd, record.data(), record.size() / 2, what);
        die();
      }
      write_all(s.config.journal_fd, record.data(), record.size(), what);
      sync_fd(s.config.journal_fd, "syncing the journal of " + s.name);
      a += len;
    }
  }
  mark_saved(s.saved, begin, end);
}

H5FD_t* drv_open(const char* name, unsigned flags, hid_t fapl, haddr_t maxaddr) {
  try {
    if (name == nullptr || *name == '\0') core::fail("empty file name");
    if (maxaddr == 0 || maxaddr == HADDR_UNDEF || maxaddr > kMaxAddr) core::fail("bad maxaddr for ", name);
    DriverConfig config;
    if (const void* info = H5Pget_driver_info(fapl)) config = *static_cast<const DriverConfig*>(info);
    int oflags = ((flags & H5F_ACC_RDWR) ? O_RDWR : O_RDONLY) | O_CLOEXEC;
    if (flags & H5F_ACC_TRUNC) oflags |= O_TRUNC;
    if (flags & H5F_ACC_CREAT) oflags |= O_CREAT;
    if (flags & H5F_ACC_EXCL) oflags |= O_EXCL;
    int raw = ::open(name, oflags, 0666);
    if (raw < 0) fail_errno(core::cat("unable to open file '", name, "'"));
    FdGuard fd(raw);
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) fail_errno(core::cat("stat of '", name, "'"));
    auto state = std::make_unique<State>();
    state->name = name;
    state->eof = static_cast<haddr_t>(st.st_size);
    state->device = st.st_dev;
    state->inode = st.st_ino;
    state->writable = (flags & H5F_ACC_RDWR) != 0;
    state->config = config;
    auto* file = new DriverFile{};
    state->fd = fd.release();
    file->state = state.release();
    return &file->pub;
  } catch (const std::exception& e) {
    push_error("lorahub_journal_open", H5E_CANTOPENFILE, e.what());
    return nullptr;
  }
}

herr_t drv_close(H5FD_t* file) {
  auto* df = reinterpret_cast<DriverFile*>(file);
  std::unique_ptr<State> s(df->state);
  delete df;
  std::string error;
  try {
    if (s->writable && s->dirty) {
      crash_point(false);
      sync_fd(s->fd, "fsync of " + s->name);
    }
  } catch (const std::exception& e) {
    error = e.what();
  }
  if (::close(s->fd) != 0 && error.empty()) error = sys_error("closing " + s->name, errno);
  if (!error.empty()) {
    push_error("lorahub_journal_close", H5E_CANTCLOSEFILE, error);
    return -1;
  }
  return 0;
}

int drv_cmp(const H5FD_t* a, const H5FD_t* b) {
  const State& x = state_of(a);
  const State& y = state_of(b);
  if (x.device != y.device) return x.device < y.device ? -1 : 1;
  if (x.inode != y.inode) return x.inode < y.inode ? -1 : 1;
  return 0;
}

herr_t drv_query(const H5FD_t*, unsigned long* flags) {
  if (flags != nullptr) {
    *flags = H5FD_FEAT_AGGREGATE_METADATA | H5FD_FEAT_ACCUMULATE_METADATA | H5FD_FEAT_DATA_SIEVE |
             H5FD_FEAT_AGGREGATE_SMALLDATA | H5FD_FEAT_DEFAULT_VFD_COMPATIBLE;
  }
  return 0;
}

haddr_t drv_get_eoa(const H5FD_t* file, H5FD_mem_t) { return state_of(file).eoa; }

herr_t drv_set_eoa(H5FD_t* file, H5FD_mem_t, haddr_t addr) {
  if (addr > kMaxAddr) {
    push_error("lorahub_journal_set_eoa", H5E_OVERFLOW, "address beyond the driver's limit");
    return -1;
  }
  state_of(file).eoa = addr;
  return 0;
}

haddr_t drv_get_eof(const H5FD_t* file, H5FD_mem_t) { return state_of(file).eof; }

herr_t drv_get_handle(H5FD_t* file, hid_t, void** handle) {
  if (handle == nullptr) return -1;
  *handle = &state_of(file).fd;
  return 0;
}

bool bad_range(const State& s, haddr_t addr, size_t size) {
  return addr == HADDR_UNDEF || addr > kMaxAddr || size > kMaxAddr || addr + size > kMaxAddr ||
         addr + size > s.eoa;
}

herr_t drv_read(H5FD_t* file, H5FD_mem_t, hid_t, haddr_t addr, size_t size, void* buf) {
  State& s = state_of(file);
  try {
    if (bad_range(s, addr, size)) {
      core::fail("read of ", size, " bytes at ", addr, " past the end of allocation ", s.eoa, " in ", s.name);
    }
    pread_zero(s.fd, buf, size, addr, "reading " + s.name);
    return 0;
  } catch (const std::exception& e) {
    push_error("lorahub_journal_read", H5E_READERROR, e.what());
    return -1;
  }
}

herr_t drv_write(H5FD_t* file, H5FD_mem_t, hid_t, haddr_t addr, size_t size, const void* buf) {
  State& s = state_of(file);
  try {
    if (bad_range(s, addr, size)) {
      core::fail("write of ", size, " bytes at ", addr, " past the end of allocation ", s.eoa, " in ", s.name);
    }
    journal_old_bytes(s, addr, addr + size);
    std::string what = "writing " + s.name;
    s.dirty = true;
    if (crash_point(true)) {
      pwrite_all(s.fd, buf, size / 2, addr, what);
      die();
    }
    pwrite_all(s.fd, buf, size, addr, what);
    s.eof = std::max<haddr_t>(s.eof, addr + size);
    return 0;
  } catch (const std::exception& e) {
    push_error("lorahub_journal_write", H5E_WRITEERROR, e.what());
    return -1;
  }
}

herr_t drv_flush(H5FD_t*, hid_t, hbool_t) { return 0; }

herr_t drv_truncate(H5FD_t* file, hid_t, hbool_t) {
  State& s = state_of(file);
  try {
    if (s.eoa == s.eof) return 0;
    // Shrinking below the old size discards old bytes: journal them like an overwrite.
    if (s.eoa < s.eof) journal_old_bytes(s, s.eoa, s.eof);
    s.dirty = true;
    crash_point(false);
    if (::ftruncate(s.fd, static_cast<off_t>(s.eoa)) != 0) fail_errno("truncating " + s.name);
    s.eof = s.eoa;
    return 0;
  } catch (const std::exception& e) {
    push_error("lorahub_journal_truncate", H5E_WRITEERROR, e.what());
    return -1;
  }
}

herr_t drv_lock(H5FD_t* file, hbool_t rw) {
  State& s = state_of(file);
  try {
    auto deadline = std::chrono::steady_clock::now() +
                    std::chrono::duration<double>(std::max(0.0, s.config.lock_wait_s));
    for (;;) {
      if (try_flock(s.fd, rw ? LOCK_EX : LOCK_SH, "locking " + s.name)) return 0;
      if (std::chrono::steady_clock::now() >= deadline) {
        core::fail(s.name, " is locked by another process (an open reader such as h5py or HDFView, or "
                   "another writer); waited ", s.config.lock_wait_s, " s");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  } catch (const std::exception& e) {
    push_error("lorahub_journal_lock", H5E_CANTLOCKFILE, e.what());
    return -1;
  }
}

herr_t drv_unlock(H5FD_t* file) {
  State& s = state_of(file);
  if (::flock(s.fd, LOCK_UN) != 0 && errno != ENOSYS && errno != ENOLCK && errno != EOPNOTSUPP) {
    push_error("lorahub_journal_unlock", H5E_CANTUNLOCKFILE, sys_error("unlocking " + s.name, errno));
    return -1;
  }
  return 0;
}

const H5FD_class_t kDriverClass = {
    "lorahub_journal",
    kMaxAddr,
    H5F_CLOSE_WEAK,
    nullptr,                                    // terminate
    nullptr, nullptr, nullptr,                  // no driver-info block: plain sec2 readers open the file
    sizeof(DriverConfig), nullptr, nullptr, nullptr,  // config copied bytewise
    0, nullptr, nullptr,                        // dxpl
    &drv_open,
    &drv_close,
    &drv_cmp,
    &drv_query,
    nullptr,  // get_type_map
    nullptr,  // alloc: the library allocates from the end of address space
    nullptr,  // free
    &drv_get_eoa,
    &drv_set_eoa,
    &drv_get_eof,
    &drv_get_handle,
    &drv_read,
    &drv_write,
    &drv_flush,
    &drv_truncate,
    &drv_lock,
    &drv_unlock,
    H5FD_FLMAP_DICHOTOMY,
};

static_assert(std::is_trivially_copyable_v<DriverConfig>, "the driver config is copied bytewise");

hid_t driver_id() {
  static hid_t id = H5I_INVALID_HID;
  static std::mutex mutex;
  std::lock_guard<std::mutex> lock(mutex);
  h5::silence_errors();
  if (id < 0 || H5Iis_valid(id) <= 0) id = h5::check(H5FDregister(&kDriverClass), "H5FDregister");
  return id;
}

}  // namespace

h5::PropertyList make_fapl(const DriverConfig& config) {
  h5::PropertyList fapl(H5P_FILE_ACCESS);
  h5::check(H5Pset_driver(fapl.id(), driver_id(), &config), "H5Pset_driver");
  h5::check(H5Pset_fclose_degree(fapl.id(), H5F_CLOSE_STRONG), "H5Pset_fclose_degree");
  H5AC_cache_config_t mdc;
  std::memset(&mdc, 0, sizeof mdc);
  mdc.version = H5AC__CURR_CACHE_CONFIG_VERSION;
  h5::check(H5Pget_mdc_config(fapl.id(), &mdc), "H5Pget_mdc_config");
  constexpr std::size_t kCacheBytes = 32 << 20;
  mdc.set_initial_size = 1;
  mdc.initial_size = kCacheBytes;
  mdc.min_size = std::min(mdc.min_size, kCacheBytes);
  mdc.max_size = std::max(mdc.max_size, kCacheBytes);
  mdc.decr_mode = H5C_decr__off;
  h5::check(H5Pset_mdc_config(fapl.id(), &mdc), "H5Pset_mdc_config");
  return fapl;
}

// ---- Journal --------------------------------------------------------------------------------------

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
    write_all(fd.get(), header.data(), header.size(), "writing journal " + tmp);
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

void sync_file(const std::string& path) {
  int raw = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (raw < 0) fail_errno("opening " + path + " to fsync it");
  FdGuard fd(raw);
  sync_fd(fd.get(), "fsync of " + path);
}

void sync_parent_dir(const std::string& path) {
  std::string dir = parent_dir(path);
  int raw = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (raw < 0) fail_errno("opening directory " + dir + " to fsync it");
  FdGuard fd(raw);
  // Some network file systems cannot fsync a directory; their metadata is synchronous anyway.
  if (::fsync(fd.get()) != 0 && errno != EINVAL && errno != EROFS) fail_errno("fsync of directory " + dir);
}

void arm_crash(long n, bool torn) {
  g_crash_torn.store(torn);
  g_crash_passed.store(0);
  g_crash_target.store(n);
}

long crash_points_passed() { return g_crash_passed.load(); }

}  // namespace lorahub::io::detail
