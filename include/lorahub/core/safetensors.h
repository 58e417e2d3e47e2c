#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace lorahub::core {

/// Element types of safetensors files (names as in the format: "F32", "BF16", "I64", ...).
enum class DType { kF64, kF32, kF16, kBF16, kI64, kI32, kI16, kI8, kU8, kBool };

/// Bytes per element.
std::size_t dtype_size(DType dtype);
/// The safetensors name: "F64", "F32", "F16", "BF16", "I64", "I32", "I16", "I8", "U8", "BOOL".
const char* dtype_name(DType dtype);
/// Inverse of dtype_name; throws Error naming `name` and `where` for anything else.
DType parse_dtype(std::string_view name, const std::string& where = "");

/// Parses JSON text like nlohmann::json::parse, but rejects duplicate keys in any object (the
/// plain parser silently keeps the last one). Errors name `source` (a file) and the key.
nlohmann::json parse_json_unique_keys(std::string_view text, const std::string& source);

/// One tensor of an open SafetensorsFile. `data` points into the file's mapping.
struct TensorInfo {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;  // row-major; [] is a scalar (one element)
  std::byte* data = nullptr;
  std::size_t nbytes = 0;
};

/// A safetensors file mapped into memory (MAP_PRIVATE, read/write: copy-on-write). Tensors alias the
/// mapping, so opening a file costs no copy of the weights; a write to a tensor copies only the
/// touched pages and never reaches the file. The mapping lives as long as the object. As with any
/// mapping, the file must not be truncated while open (reads past its new end raise SIGBUS).
class SafetensorsFile {
 public:
  /// Maps and fully validates `path` (header length, JSON, dtypes, shapes, offsets: in range,
  /// consistent with shape × dtype, non-overlapping, covering the data with no gaps; no duplicate
  /// keys). Throws Error naming the file and the offending key.
  static std::shared_ptr<SafetensorsFile> open(const std::string& path);

  /// Unmaps the file: TensorInfo::data pointers die with it (model::load_tensor_file's tensors hold
  /// a reference, so they keep it alive).
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  /// Tensor names in sorted order.
  std::vector<std::string> names() const;
  /// True when the file holds a tensor called `name`.
  bool contains(const std::string& name) const;
  /// Throws Error naming the file and `name` when there is no such tensor.
  const TensorInfo& info(const std::string& name) const;
  /// All tensors, keyed (and sorted) by name.
  const std::map<std::string, TensorInfo>& tensors() const { return tensors_; }
  /// The `__metadata__` string map (empty when absent).
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  /// The path the file was opened with.
  const std::string& path() const { return path_; }
  /// Size of the whole file in bytes.
  std::size_t file_size() const { return size_; }

 private:
  SafetensorsFile() = default;
  std::string path_;
  void* map_ = nullptr;
  std::size_t size_ = 0;
  std::map<std::string, TensorInfo> tensors_;
  std::map<std::string, std::string> metadata_;
};

/// When [data, data + nbytes) lies inside a live SafetensorsFile mapping, hands its whole pages back to the
/// kernel (madvise MADV_DONTNEED): they leave the process's resident set and, if touched again, read back from
/// the file. For data already copied elsewhere (e.g. converted to another dtype while loading), so that peak
/// memory stays near the size of the converted weights. Pages written in place (copy-on-write) would revert to
/// the file's bytes: never call it on data that was modified. Returns the bytes released (0 outside a mapping).
std::size_t release_mapped_pages(const void* data, std::size_t nbytes);

/// A tensor to write: `nbytes` bytes of row-major, little-endian data at `data`.
struct TensorRef {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  const void* data = nullptr;
  std::size_t nbytes = 0;
};

/// Writes a standard safetensors file: tensors in name order, header padded with spaces so the data
/// starts at a multiple of 8, `__metadata__` when `metadata` is not empty. Atomic: writes
/// `path.tmp`, fsyncs it and renames it over `path`. Throws Error on duplicate names, a byte count
/// that disagrees with shape × dtype, or any I/O failure.
void write_safetensors(const std::string& path, const std::vector<TensorRef>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace lorahub::core
