#include "lorahub/core/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <map>
#include <mutex>
#include <set>
#include <tuple>

#include "lorahub/core/error.h"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "safetensors data is little-endian; this reader maps it without swapping");

namespace lorahub::core {
namespace {

// The reference implementation's limit; a real header is a few hundred kB at most.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

// Keys come from untrusted files: keep messages one readable line.
std::string quote(std::string_view s) {
  std::string out = "'";
  const std::size_t limit = 200;
  for (std::size_t i = 0; i < s.size() && i < limit; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  if (s.size() > limit) out += "...";
  return out + "'";
}

std::string errno_text() { return std::strerror(errno); }

// A JSON number that is a non-negative integer (nlohmann stores those as number_unsigned).
bool as_unsigned(const nlohmann::json& j, uint64_t& out) {
  if (!j.is_number_unsigned()) return false;
  out = j.get<uint64_t>();
  return true;
}

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int release() {
    const int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_;
};

void write_all(int fd, const void* data, std::size_t n, const std::string& path) {
  const auto* p = static_cast<const char*>(data);
  while (n > 0) {
    const std::size_t chunk = std::min<std::size_t>(n, std::size_t{1} << 30);
    const ssize_t w = ::write(fd, p, chunk);
    if (w < 0) {
      if (errno == EINTR) continue;
      fail(path, ": write failed: ", errno_text());
    }
    p += w;
    n -= static_cast<std::size_t>(w);
  }
}

}  // namespace

std::size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::kF64:
    case DType::kI64:
      return 8;
    case DType::kF32:
    case DType::kI32:
      return 4;
    case DType::kF16:
    case DType::kBF16:
    case DType::kI16:
      return 2;
    case DType::kI8:
    case DType::kU8:
    case DType::kBool:
      return 1;
  }
  fail("dtype_size: invalid DType value ", static_cast<int>(dtype));
}

const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::kF64: return "F64";
    case DType::kF32: return "F32";
    case DType::kF16: return "F16";
    case DType::kBF16: return "BF16";
    case DType::kI64: return "I64";
    case DType::kI32: return "I32";
    case DType::kI16: return "I16";
    case DType::kI8: return "I8";
    case DType::kU8: return "U8";
    case DType::kBool: return "BOOL";
  }
  fail("dtype_name: invalid DType value ", static_cast<int>(dtype));
}

DType parse_dtype(std::string_view name, const std::string& where) {
  static const std::pair<const char*, DType> kNames[] = {
      {"F64", DType::kF64}, {"F32", DType::kF32}, {"F16", DType::kF16}, {"BF16", DType::kBF16},
      {"I64", DType::kI64}, {"I32", DType::kI32}, {"I16", DType::kI16}, {"I8", DType::kI8},
      {"U8", DType::kU8},   {"BOOL", DType::kBool}};
  for (const auto& [text, dtype] : kNames) {
    if (name == text) return dtype;
  }
  fail(where.empty() ? "" : where + ": ", "unsupported dtype ", quote(name),
       " (supported: F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL)");
}

nlohmann::json parse_json_unique_keys(std::string_view text, const std::string& source) {
  using nlohmann::json;
  // One scope per open object or array; objects remember their keys, and the last key of each names
  // where a duplicate sits ("duplicate key 'dtype' in 'w'").
  struct Scope {
    bool object;
    std::set<std::string> keys;
    std::string last_key;
  };
  std::vector<Scope> scopes;
  json::parser_callback_t callback = [&](int /*depth*/, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start:
        scopes.push_back({true, {}, {}});
        break;
      case json::parse_event_t::array_start:
        scopes.push_back({false, {}, {}});
        break;
      case json::parse_event_t::object_end:
      case json::parse_event_t::array_end:
        if (!scopes.empty()) scopes.pop_back();
        break;
      case json::parse_event_t::key:
        if (!scopes.empty() && scopes.back().object && parsed.is_string()) {
          const auto& key = parsed.get_ref<const std::string&>();
          if (!scopes.back().keys.insert(key).second) {
            std::string where;
            for (std::size_t k = scopes.size() - 1; k-- > 0;) {
              if (scopes[k].object) {
                where = " in " + quote(scopes[k].last_key);
                break;
              }
            }
            fail(source, ": duplicate key ", quote(key), where);
          }
          scopes.back().last_key = key;
        }
        break;
      case json::parse_event_t::value:
        break;
    }
    return true;
  };
  try {
    return json::parse(text.begin(), text.end(), callback);
  } catch (const json::exception& e) {
    fail(source, ": invalid JSON: ", e.what());
  }
}

namespace {

// Live mappings, [begin, end) by begin: what release_mapped_pages may touch.
std::mutex g_mappings_mutex;
std::map<std::uintptr_t, std::uintptr_t> g_mappings;

}  // namespace

std::size_t release_mapped_pages(const void* data, std::size_t nbytes) {
  const auto begin = reinterpret_cast<std::uintptr_t>(data);
  const auto end = begin + nbytes;
  {
    std::lock_guard<std::mutex> lock(g_mappings_mutex);
    auto it = g_mappings.upper_bound(begin);
    if (it == g_mappings.begin()) return 0;
    --it;
    if (begin < it->first || end > it->second) return 0;
  }
  const auto page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
  const auto first = (begin + page - 1) / page * page;
  const auto last = end / page * page;
  if (last <= first) return 0;
  if (::madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED) != 0) return 0;
  return last - first;
}

std::shared_ptr<SafetensorsFile> SafetensorsFile::open(const std::string& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) fail(path, ": cannot open: ", errno_text());
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) fail(path, ": cannot stat: ", errno_text());
  if (!S_ISREG(st.st_mode)) fail(path, ": not a regular file");
  const auto file_size = static_cast<uint64_t>(st.st_size);
  if (file_size < 8) {
    fail(path, ": truncated safetensors file: ", file_size,
         " bytes, shorter than the 8-byte header length field");
  }

  std::shared_ptr<SafetensorsFile> file(new SafetensorsFile());
  file->path_ = path;
  void* map = ::mmap(nullptr, file_size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd.get(), 0);
  if (map == MAP_FAILED) fail(path, ": mmap of ", file_size, " bytes failed: ", errno_text());
  file->map_ = map;
  file->size_ = file_size;
  {
    std::lock_guard<std::mutex> lock(g_mappings_mutex);
    g_mappings[reinterpret_cast<std::uintptr_t>(map)] = reinterpret_cast<std::uintptr_t>(map) + file_size;
  }

  const auto* base = static_cast<const std::byte*>(map);
  uint64_t header_len = 0;
  std::memcpy(&header_len, base, 8);
  if (header_len > file_size - 8) {
    fail(path, ": header length ", header_len, " exceeds the ", file_size - 8,
         " bytes that follow the length field (truncated or corrupt file)");
  }
  if (header_len > kMaxHeaderBytes) {
    fail(path, ": header length ", header_len, " exceeds the limit of ", kMaxHeaderBytes, " bytes");
  }
  if (header_len < 2) fail(path, ": header length ", header_len, " is too small for a JSON object");

  const std::string_view header(reinterpret_cast<const char*>(base + 8), header_len);
  if (header.front() != '{') {
    fail(path, ": header does not start with '{' (not a safetensors file?)");
  }
  const nlohmann::json root = parse_json_unique_keys(header, path + " (safetensors header)");
  if (!root.is_object()) fail(path, ": safetensors header is not a JSON object");

  auto* data = static_cast<std::byte*>(map) + 8 + header_len;
  const uint64_t data_size = file_size - 8 - header_len;
  struct Span {
    uint64_t begin, end;
    const std::string* name;
  };
  std::vector<Span> spans;
  spans.reserve(root.size());

  for (const auto& [key, entry] : root.items()) {
    if (key == "__metadata__") {
      if (entry.is_null()) continue;
      if (!entry.is_object()) fail(path, ": key '__metadata__' must be an object of strings");
      for (const auto& [mkey, mvalue] : entry.items()) {
        if (!mvalue.is_string()) {
          fail(path, ": key '__metadata__' entry ", quote(mkey), " is ", mvalue.type_name(),
               ", expected a string");
        }
        file->metadata_[mkey] = mvalue.get<std::string>();
      }
      continue;
    }
    const std::string where = path + ": tensor " + quote(key);
    if (!entry.is_object()) fail(where, ": entry is ", entry.type_name(), ", expected an object");
    const auto dtype_it = entry.find("dtype");
    const auto shape_it = entry.find("shape");
    const auto offsets_it = entry.find("data_offsets");
    if (dtype_it == entry.end() || !dtype_it->is_string()) {
      fail(where, ": missing or non-string 'dtype'");
    }
    if (shape_it == entry.end() || !shape_it->is_array()) {
      fail(where, ": missing or non-array 'shape'");
    }
    if (offsets_it == entry.end() || !offsets_it->is_array() || offsets_it->size() != 2) {
      fail(where, ": 'data_offsets' must be an array [begin, end]");
    }

    TensorInfo info;
    info.name = key;
    info.dtype = parse_dtype(dtype_it->get_ref<const std::string&>(), where);
    uint64_t numel = 1;
    for (const auto& dim : *shape_it) {
      uint64_t d = 0;
      if (!as_unsigned(dim, d) || d > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        fail(where, ": shape ", shape_it->dump(), " has an entry that is not a non-negative integer");
      }
      if (__builtin_mul_overflow(numel, d, &numel) ||
          numel > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        fail(where, ": shape ", shape_it->dump(), " has too many elements");
      }
      info.shape.push_back(static_cast<int64_t>(d));
    }
    uint64_t nbytes = 0;
    if (__builtin_mul_overflow(numel, dtype_size(info.dtype), &nbytes)) {
      fail(where, ": shape ", shape_it->dump(), " × ", dtype_name(info.dtype), " overflows");
    }
    uint64_t begin = 0, end = 0;
    if (!as_unsigned((*offsets_it)[0], begin) || !as_unsigned((*offsets_it)[1], end)) {
      fail(where, ": data_offsets ", offsets_it->dump(), " are not non-negative integers");
    }
    if (begin > end) fail(where, ": data_offsets [", begin, ", ", end, "] have begin > end");
    if (end > data_size) {
      fail(where, ": data_offsets [", begin, ", ", end, "] reach beyond the data region of ",
           data_size, " bytes");
    }
    if (end - begin != nbytes) {
      fail(where, ": shape ", shape_it->dump(), " × ", dtype_name(info.dtype), " needs ", nbytes,
           " bytes but data_offsets [", begin, ", ", end, "] hold ", end - begin);
    }
    info.data = data + begin;
    info.nbytes = static_cast<std::size_t>(nbytes);
    auto [it, inserted] = file->tensors_.emplace(key, std::move(info));
    if (!inserted) fail(where, ": duplicate tensor name");
    spans.push_back({begin, end, &it->first});
  }

  // Like the reference implementation: tensors must tile the data region exactly.
  std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) {
    return std::tie(a.begin, a.end) < std::tie(b.begin, b.end);
  });
  uint64_t expected = 0;
  const std::string* previous = nullptr;
  for (const auto& span : spans) {
    if (span.begin < expected) {
      fail(path, ": tensor ", quote(*span.name), " at [", span.begin, ", ", span.end,
           ") overlaps tensor ", quote(*previous), " which ends at ", expected);
    }
    if (span.begin > expected) {
      fail(path, ": tensor ", quote(*span.name), " starts at ", span.begin, " but the data before it ends at ",
           expected, " (gap of ", span.begin - expected, " bytes)");
    }
    expected = span.end;
    previous = span.name;
  }
  if (expected != data_size) {
    fail(path, ": tensors cover ", expected, " of the ", data_size, " data bytes",
         previous ? " (last tensor " + quote(*previous) + ")" : std::string(),
         "; the rest belongs to no tensor");
  }
  return file;
}

SafetensorsFile::~SafetensorsFile() {
  if (map_ != nullptr) {
    {
      std::lock_guard<std::mutex> lock(g_mappings_mutex);
      g_mappings.erase(reinterpret_cast<std::uintptr_t>(map_));
    }
    ::munmap(map_, size_);
  }
}

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> out;
  out.reserve(tensors_.size());
  for (const auto& [name, info] : tensors_) out.push_back(name);
  return out;
}

bool SafetensorsFile::contains(const std::string& name) const { return tensors_.count(name) != 0; }

const TensorInfo& SafetensorsFile::info(const std::string& name) const {
  const auto it = tensors_.find(name);
  if (it == tensors_.end()) fail(path_, ": no tensor ", quote(name));
  return it->second;
}

void write_safetensors(const std::string& path, const std::vector<TensorRef>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  std::vector<const TensorRef*> order;
  order.reserve(tensors.size());
  for (const auto& t : tensors) order.push_back(&t);
  std::sort(order.begin(), order.end(),
            [](const TensorRef* a, const TensorRef* b) { return a->name < b->name; });

  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    auto& meta = header["__metadata__"];
    meta = nlohmann::ordered_json::object();
    for (const auto& [k, v] : metadata) meta[k] = v;
  }
  uint64_t offset = 0;
  for (std::size_t i = 0; i < order.size(); ++i) {
    const TensorRef& t = *order[i];
    const std::string where = path + ": tensor " + quote(t.name);
    if (t.name == "__metadata__") fail(where, ": name is reserved");
    if (i > 0 && order[i - 1]->name == t.name) fail(where, ": duplicate tensor name");
    uint64_t numel = 1;
    for (const int64_t d : t.shape) {
      if (d < 0) fail(where, ": negative dimension ", d);
      if (__builtin_mul_overflow(numel, static_cast<uint64_t>(d), &numel)) {
        fail(where, ": shape has too many elements");
      }
    }
    uint64_t nbytes = 0;
    if (__builtin_mul_overflow(numel, dtype_size(t.dtype), &nbytes) || nbytes != t.nbytes) {
      fail(where, ": ", numel, " elements of ", dtype_name(t.dtype), " need ", numel * dtype_size(t.dtype),
           " bytes but ", t.nbytes, " were given");
    }
    if (t.nbytes > 0 && t.data == nullptr) fail(where, ": data is null");
    header[t.name] = {{"dtype", dtype_name(t.dtype)},
                      {"shape", t.shape},
                      {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const nlohmann::json::exception& e) {
    fail(path, ": cannot encode the header (names must be UTF-8): ", e.what());
  }
  text.append((8 - text.size() % 8) % 8, ' ');
  const uint64_t header_len = text.size();

  const std::string tmp = path + ".tmp";
  Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (fd.get() < 0) fail(tmp, ": cannot create: ", errno_text());
  try {
    write_all(fd.get(), &header_len, 8, tmp);
    write_all(fd.get(), text.data(), text.size(), tmp);
    for (const TensorRef* t : order) {
      if (t->nbytes > 0) write_all(fd.get(), t->data, t->nbytes, tmp);
    }
    if (::fsync(fd.get()) != 0) fail(tmp, ": fsync failed: ", errno_text());
    if (::close(fd.release()) != 0) fail(tmp, ": close failed: ", errno_text());
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
      fail(path, ": cannot rename ", tmp, " into place: ", errno_text());
    }
  } catch (...) {
    ::unlink(tmp.c_str());
    throw;
  }
  // Make the rename itself durable; a failure here leaves a complete file, so it is not an error.
  const auto slash = path.find_last_of('/');
  const std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  Fd dir_fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir_fd.get() >= 0) ::fsync(dir_fd.get());
}

}  // namespace lorahub::core
