#include "lorahub/model/checkpoint.h"

#include <caffe2/serialize/inline_container.h>

#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "lorahub/core/checkpoint_files.h"
#include "lorahub/core/error.h"
#include "torch_pickle.h"

namespace lorahub::model {
namespace fs = std::filesystem;
using core::fail;

namespace {

std::string first_line(const char* text) {
  std::string s(text);
  const auto nl = s.find('\n');
  return nl == std::string::npos ? s : s.substr(0, nl);
}

enum class FileKind { kSafetensors, kTorchZip, kLegacyPickle };

FileKind sniff(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, ": cannot open");
  unsigned char head[9] = {};
  in.read(reinterpret_cast<char*>(head), sizeof head);
  const auto n = in.gcount();
  if (n >= 9 && head[8] == '{') return FileKind::kSafetensors;
  if (n >= 4 && std::memcmp(head, "PK\x03\x04", 4) == 0) return FileKind::kTorchZip;
  if (n >= 2 && head[0] == 0x80 && head[1] <= 5) return FileKind::kLegacyPickle;
  // Anything else is reported by the safetensors reader, whose messages say what is wrong.
  return FileKind::kSafetensors;
}

StateDict load_safetensors_file(const std::string& path) {
  const auto file = core::SafetensorsFile::open(path);
  StateDict out;
  for (const auto& [name, info] : file->tensors()) {
    const auto options = torch::TensorOptions().dtype(to_scalar_type(info.dtype));
    const auto address = reinterpret_cast<std::uintptr_t>(info.data);
    if (info.nbytes == 0) {
      out.emplace(name, torch::empty(info.shape, options));
    } else if (address % core::dtype_size(info.dtype) == 0) {
      // The deleter keeps the mapping alive for as long as any view of it exists.
      out.emplace(name, torch::from_blob(info.data, info.shape, [file](void*) {}, options));
    } else {
      auto copy = torch::empty(info.shape, options);
      std::memcpy(copy.data_ptr(), info.data, info.nbytes);
      out.emplace(name, std::move(copy));
    }
  }
  return out;
}

StateDict load_torch_zip(const std::string& path) {
  try {
    caffe2::serialize::PyTorchStreamReader reader(path);
    if (!reader.hasRecord("data.pkl")) fail(path, ": torch.save archive has no data.pkl record");
    if (reader.hasRecord("byteorder")) {
      const auto [order, order_size] = reader.getRecord("byteorder");
      const std::string text(static_cast<const char*>(order.get()), order_size);
      if (text != "little") fail(path, ": tensors are stored in byte order '", text, "', only 'little' is supported");
    }
    auto [pickle, pickle_size] = reader.getRecord("data.pkl");
    const auto parsed = detail::parse_state_dict_pickle(
        std::string_view(static_cast<const char*>(pickle.get()), pickle_size), path);
    pickle.clear();

    std::vector<torch::Tensor> storages;
    storages.reserve(parsed.storages.size());
    for (const auto& s : parsed.storages) {
      const std::string record = "data/" + s.key;
      if (!reader.hasRecord(record)) fail(path, ": storage '", s.key, "' has no record ", record);
      auto [data, size] = reader.getRecord(record);
      const uint64_t expected = s.numel * core::dtype_size(s.dtype);  // no overflow: checked when parsed
      if (size != expected) {
        fail(path, ": record ", record, " holds ", size, " bytes, but its storage is ", s.numel, " × ",
             core::dtype_name(s.dtype), " = ", expected, " bytes");
      }
      const auto options = torch::TensorOptions().dtype(to_scalar_type(s.dtype));
      if (s.numel == 0) {
        storages.push_back(torch::empty({0}, options));
        continue;
      }
      auto owner = std::make_shared<at::DataPtr>(std::move(data));
      void* raw = owner->get();
      storages.push_back(
          torch::from_blob(raw, {static_cast<int64_t>(s.numel)}, [owner](void*) {}, options));
    }
    StateDict out;
    for (const auto& t : parsed.tensors) {
      out.emplace(t.name, storages[t.storage].as_strided(t.sizes, t.strides, t.storage_offset));
    }
    return out;
  } catch (const c10::Error& e) {
    // PyTorchStreamReader reports a damaged zip (bad magic, CRC, sizes, missing records) this way.
    fail(path, ": cannot read the torch.save zip archive: ", first_line(e.what_without_backtrace()));
  }
}

bool is_file(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, ": cannot open");
  std::ostringstream os;
  os << in.rdbuf();
  if (in.bad()) fail(path, ": read failed");
  return os.str();
}

constexpr std::int64_t kFiniteBlock = 1 << 14;

// Whether one full block of kFiniteBlock elements holds an element whose exponent bits are all ones. A fixed trip
// count and no early exit let the compiler vectorise it (at -O2 too); memcpy reads the bits without aliasing UB.
template <class Bits>
bool block_has_non_finite(const unsigned char* bytes, Bits exponent) {
  Bits bad = 0;
  for (std::int64_t i = 0; i < kFiniteBlock; ++i) {
    Bits b;
    std::memcpy(&b, bytes + i * static_cast<std::int64_t>(sizeof(Bits)), sizeof(Bits));
    bad |= static_cast<Bits>((b & exponent) == exponent);
  }
  return bad != 0;
}

// Index of the first element whose exponent bits are all ones (NaN or ±Inf: every IEEE format, bfloat16 too), or
// -1. Blocks are scanned in parallel; only a block that holds one is searched element by element.
template <class Bits>
std::int64_t first_non_finite(const void* data, std::int64_t n, Bits exponent) {
  const auto* bytes = static_cast<const unsigned char*>(data);
  auto bad_at = [&](std::int64_t i) {
    Bits b;
    std::memcpy(&b, bytes + i * static_cast<std::int64_t>(sizeof(Bits)), sizeof(Bits));
    return (b & exponent) == exponent;
  };
  std::atomic<std::int64_t> first{n};
  const std::int64_t full_blocks = n / kFiniteBlock;
  at::parallel_for(0, full_blocks, 16, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t block = begin; block < end; ++block) {
      const std::int64_t lo = block * kFiniteBlock;
      if (lo >= first.load(std::memory_order_relaxed)) return;  // an earlier bad element is known
      if (!block_has_non_finite<Bits>(bytes + lo * static_cast<std::int64_t>(sizeof(Bits)), exponent)) continue;
      for (std::int64_t i = lo; i < lo + kFiniteBlock; ++i) {
        if (!bad_at(i)) continue;
        std::int64_t current = first.load();
        while (i < current && !first.compare_exchange_weak(current, i)) {
        }
        return;  // later blocks of this range only hold larger indices
      }
    }
  });
  if (first.load() < n) return first.load();
  for (std::int64_t i = full_blocks * kFiniteBlock; i < n; ++i) {
    if (bad_at(i)) return i;
  }
  return -1;
}

}  // namespace

void check_finite(const torch::Tensor& t, const std::string& file, const std::string& key) {
  if (!t.defined() || !t.is_floating_point() || t.numel() == 0) return;
  const std::int64_t n = t.numel();
  std::int64_t bad = -1;
  bool scanned = false;
  if (t.device().is_cpu() && t.is_contiguous()) {
    scanned = true;
    switch (t.scalar_type()) {
      case torch::kFloat32: bad = first_non_finite<std::uint32_t>(t.data_ptr(), n, 0x7f800000u); break;
      case torch::kFloat64: bad = first_non_finite<std::uint64_t>(t.data_ptr(), n, 0x7ff0000000000000ull); break;
      case torch::kBFloat16: bad = first_non_finite<std::uint16_t>(t.data_ptr(), n, 0x7f80); break;
      case torch::kFloat16: bad = first_non_finite<std::uint16_t>(t.data_ptr(), n, 0x7c00); break;
      default: scanned = false;
    }
  }
  if (!scanned) {
    const auto non_finite = torch::isfinite(t).logical_not_().reshape({-1});
    if (non_finite.any().item<bool>()) bad = non_finite.nonzero().select(1, 0)[0].item<std::int64_t>();
  }
  if (bad < 0) return;
  const double value = t.reshape({-1})[bad].item<double>();
  std::ostringstream where;
  where << '[';
  std::int64_t rest = bad;
  std::vector<std::int64_t> index(static_cast<std::size_t>(t.dim()));
  for (std::int64_t d = t.dim() - 1; d >= 0; --d) {
    index[static_cast<std::size_t>(d)] = rest % t.size(d);
    rest /= t.size(d);
  }
  for (std::size_t d = 0; d < index.size(); ++d) where << (d ? ", " : "") << index[d];
  where << ']';
  fail(file, ": key '", key, "' (", c10::toString(t.scalar_type()), " ", t.sizes(), ") holds ",
       std::isnan(value) ? "NaN" : (value > 0 ? "+Inf" : "-Inf"), " at ", where.str(), " (element ", bad, " of ", n,
       "); weights must be finite");
}

torch::ScalarType to_scalar_type(core::DType dtype) {
  switch (dtype) {
    case core::DType::kF64: return torch::kFloat64;
    case core::DType::kF32: return torch::kFloat32;
    case core::DType::kF16: return torch::kFloat16;
    case core::DType::kBF16: return torch::kBFloat16;
    case core::DType::kI64: return torch::kInt64;
    case core::DType::kI32: return torch::kInt32;
    case core::DType::kI16: return torch::kInt16;
    case core::DType::kI8: return torch::kInt8;
    case core::DType::kU8: return torch::kUInt8;
    case core::DType::kBool: return torch::kBool;
  }
  fail("to_scalar_type: invalid DType value ", static_cast<int>(dtype));
}

core::DType from_scalar_type(torch::ScalarType type, const std::string& where) {
  switch (type) {
    case torch::kFloat64: return core::DType::kF64;
    case torch::kFloat32: return core::DType::kF32;
    case torch::kFloat16: return core::DType::kF16;
    case torch::kBFloat16: return core::DType::kBF16;
    case torch::kInt64: return core::DType::kI64;
    case torch::kInt32: return core::DType::kI32;
    case torch::kInt16: return core::DType::kI16;
    case torch::kInt8: return core::DType::kI8;
    case torch::kUInt8: return core::DType::kU8;
    case torch::kBool: return core::DType::kBool;
    default: break;
  }
  fail(where.empty() ? "" : where + ": ", "dtype ", c10::toString(type), " cannot be stored in a tensor file");
}

StateDict load_tensor_file(const std::string& path) {
  switch (sniff(path)) {
    case FileKind::kTorchZip:
      return load_torch_zip(path);
    case FileKind::kLegacyPickle:
      fail(path, ": legacy (pre-1.6, non-zip) torch.save format is not supported; re-save it with a current "
                 "torch.save or as safetensors");
    case FileKind::kSafetensors:
      break;
  }
  return load_safetensors_file(path);
}

StateDict load_sharded(const std::string& index_path, KeyFiles* files) {
  const nlohmann::json index = core::parse_json_unique_keys(read_text(index_path), index_path);
  const auto map_it = index.is_object() ? index.find("weight_map") : index.end();
  if (map_it == index.end() || !map_it->is_object()) fail(index_path, ": no \"weight_map\" object");
  if (map_it->empty()) fail(index_path, ": \"weight_map\" is empty");

  std::map<std::string, std::string> shard_of;
  std::map<std::string, std::vector<std::string>> keys_of;
  for (const auto& [key, shard] : map_it->items()) {
    if (!shard.is_string()) fail(index_path, ": weight_map entry for key '", key, "' is not a file name");
    const auto& name = shard.get_ref<const std::string&>();
    // Shards sit next to the index; a path could point anywhere.
    if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos) {
      fail(index_path, ": key '", key, "' maps to '", name, "', which is not a file name in the same folder");
    }
    shard_of[key] = name;
    keys_of[name].push_back(key);
  }

  const fs::path dir = fs::path(index_path).parent_path();
  StateDict out;
  for (const auto& [shard, keys] : keys_of) {
    const std::string shard_path = (dir / shard).string();
    if (!is_file(shard_path)) {
      fail(index_path, ": shard '", shard, "' (for key '", keys.front(), "') does not exist in ", dir.string());
    }
    StateDict part = load_tensor_file(shard_path);
    for (auto& [name, tensor] : part) {
      const auto it = shard_of.find(name);
      if (it == shard_of.end()) fail(shard_path, ": key '", name, "' is not listed in ", index_path);
      if (it->second != shard) {
        fail(shard_path, ": key '", name, "' is also in this shard, but ", index_path, " maps it to shard '",
             it->second, "'");
      }
      out.emplace(name, std::move(tensor));
      if (files) (*files)[name] = shard_path;
    }
    for (const auto& key : keys) {
      if (!out.count(key)) fail(index_path, ": maps key '", key, "' to shard '", shard, "', which does not hold it");
    }
  }
  return out;
}

namespace {
StateDict load_one(const std::string& path, KeyFiles* files) {
  StateDict out = load_tensor_file(path);
  if (files) {
    for (const auto& [name, t] : out) (*files)[name] = path;
  }
  return out;
}
}  // namespace

StateDict load_checkpoint(const std::string& dir_or_file, KeyFiles* files) {
  if (is_file(dir_or_file)) {
    const bool index = dir_or_file.size() >= 11 && dir_or_file.compare(dir_or_file.size() - 11, 11, ".index.json") == 0;
    return index ? load_sharded(dir_or_file, files) : load_one(dir_or_file, files);
  }
  std::error_code ec;
  if (!fs::is_directory(dir_or_file, ec)) fail(dir_or_file, ": no such checkpoint file or folder");
  const std::string entry = core::checkpoint_entry(dir_or_file, core::CheckpointKind::kModel);
  return fs::path(entry).extension() == ".json" ? load_sharded(entry, files) : load_one(entry, files);
}

StateDict load_adapter_weights(const std::string& dir, std::string* file) {
  const std::string path = is_file(dir) ? dir : core::checkpoint_entry(dir, core::CheckpointKind::kAdapter);
  if (file) *file = path;
  return load_tensor_file(path);
}

void save_safetensors(const std::string& path, const StateDict& tensors,
                      const std::map<std::string, std::string>& metadata) {
  std::vector<torch::Tensor> keep;
  std::vector<core::TensorRef> refs;
  keep.reserve(tensors.size());
  refs.reserve(tensors.size());
  for (const auto& [name, tensor] : tensors) {
    if (!tensor.defined()) fail(path, ": tensor '", name, "' is undefined");
    keep.push_back(tensor.detach().to(torch::kCPU).contiguous());
    const auto& t = keep.back();
    refs.push_back({name, from_scalar_type(t.scalar_type(), path + ": tensor '" + name + "'"), t.sizes().vec(),
                    t.data_ptr(), t.nbytes()});
  }
  core::write_safetensors(path, refs, metadata);
}

std::string describe_state_dict(const StateDict& tensors) {
  std::ostringstream os;
  for (const auto& [name, t] : tensors) {
    os << name << ' ';
    if (!t.defined()) {
      os << "undefined\n";
      continue;
    }
    switch (t.scalar_type()) {
      case torch::kFloat64: case torch::kFloat32: case torch::kFloat16: case torch::kBFloat16:
      case torch::kInt64: case torch::kInt32: case torch::kInt16: case torch::kInt8: case torch::kUInt8:
      case torch::kBool:
        os << core::dtype_name(from_scalar_type(t.scalar_type()));
        break;
      default:
        os << c10::toString(t.scalar_type());
    }
    os << " [";
    for (int64_t d = 0; d < t.dim(); ++d) os << (d ? ", " : "") << t.size(d);
    os << "]\n";
  }
  return os.str();
}

}  // namespace lorahub::model
