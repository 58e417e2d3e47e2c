#include "io/journal_driver.h"

#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "io/journal.h"
#include "io/posix_io.h"
#include "lorahub/core/error.h"

namespace lorahub::io::detail {
namespace {

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
  // After a failed write the rest of the transaction lives here, not on disk (see WriteFailure).
  bool failed = false;
  std::vector<std::pair<haddr_t, std::vector<char>>> unwritten;  // in write order
  haddr_t zero_from = HADDR_UNDEF;  // a truncation kept in memory: disk bytes from here read as zeros
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

// Records the first write error and switches the file to memory. False when the opener gave nowhere to
// record it: the error then goes to HDF5, the best that can be done without a WriteFailure.
bool keep_in_memory(State& s, const std::string& error) {
  if (s.config.failure == nullptr) return false;
  if (!s.failed) {
    s.failed = true;
    s.config.failure->failed = true;
    s.config.failure->message = error;
  }
  return true;
}

// What the file holds after a failure: the disk's bytes (up to a truncation) under the writes since.
void overlay_unwritten(const State& s, haddr_t addr, std::size_t size, char* buf) {
  if (s.zero_from < addr + size) {
    haddr_t from = std::max(s.zero_from, addr);
    std::memset(buf + (from - addr), 0, static_cast<std::size_t>(addr + size - from));
  }
  for (const auto& [at, bytes] : s.unwritten) {
    haddr_t begin = std::max(at, addr);
    haddr_t end = std::min<haddr_t>(at + bytes.size(), addr + size);
    if (begin < end) std::memcpy(buf + (begin - addr), bytes.data() + (begin - at), static_cast<std::size_t>(end - begin));
  }
}

void truncate_unwritten(State& s) {
  s.zero_from = std::min(s.zero_from, s.eoa);
  for (auto it = s.unwritten.begin(); it != s.unwritten.end();) {
    if (it->first >= s.eoa) {
      it = s.unwritten.erase(it);
      continue;
    }
    if (it->first + it->second.size() > s.eoa) it->second.resize(static_cast<std::size_t>(s.eoa - it->first));
    ++it;
  }
  s.eof = s.eoa;
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
    append_undo_records(s.config.journal_fd, s.fd, gap_begin, gap_end - gap_begin, s.name);
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
    if (s->writable && s->dirty && !s->failed) {
      crash_point(false);
      sync_fd(s->fd, "fsync of " + s->name);
    }
  } catch (const std::exception& e) {
    error = e.what();
  }
  if (::close(s->fd) != 0 && error.empty()) error = sys_error("closing " + s->name, errno);
  if (error.empty() || keep_in_memory(*s, error)) return 0;
  push_error("lorahub_journal_close", H5E_CANTCLOSEFILE, error);
  return -1;
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
    if (s.failed) overlay_unwritten(s, addr, size, static_cast<char*>(buf));
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
    if (!s.failed) {
      journal_old_bytes(s, addr, addr + size);
      std::string what = "writing " + s.name;
      s.dirty = true;
      if (crash_point(true)) {
        pwrite_all(s.fd, buf, size / 2, addr, what, Space::kAllocates);
        die();
      }
      pwrite_all(s.fd, buf, size, addr, what, Space::kAllocates);
      s.eof = std::max<haddr_t>(s.eof, addr + size);
      return 0;
    }
  } catch (const std::exception& e) {
    if (!keep_in_memory(s, e.what())) {
      push_error("lorahub_journal_write", H5E_WRITEERROR, e.what());
      return -1;
    }
  }
  const char* bytes = static_cast<const char*>(buf);
  s.unwritten.emplace_back(addr, std::vector<char>(bytes, bytes + size));
  s.eof = std::max<haddr_t>(s.eof, addr + size);
  return 0;
}

herr_t drv_flush(H5FD_t*, hid_t, hbool_t) { return 0; }

herr_t drv_truncate(H5FD_t* file, hid_t, hbool_t) {
  State& s = state_of(file);
  try {
    if (s.eoa == s.eof) return 0;
    if (!s.failed) {
      // Shrinking below the old size discards old bytes: journal them like an overwrite.
      if (s.eoa < s.eof) journal_old_bytes(s, s.eoa, s.eof);
      s.dirty = true;
      crash_point(false);
      if (::ftruncate(s.fd, static_cast<off_t>(s.eoa)) != 0) fail_errno("truncating " + s.name);
      s.eof = s.eoa;
      return 0;
    }
  } catch (const std::exception& e) {
    if (!keep_in_memory(s, e.what())) {
      push_error("lorahub_journal_truncate", H5E_WRITEERROR, e.what());
      return -1;
    }
  }
  truncate_unwritten(s);
  return 0;
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
  // The 1.10 format checksums every metadata block (superblock, object headers, B-trees, heaps), so a
  // damaged file gives an error instead of whatever the damaged bytes happen to say.
  h5::check(H5Pset_libver_bounds(fapl.id(), H5F_LIBVER_V110, H5F_LIBVER_V110), "H5Pset_libver_bounds");
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

}  // namespace lorahub::io::detail
