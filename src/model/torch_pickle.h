#pragma once
// A restricted reader for the data.pkl of a torch.save zip archive holding a (possibly ordered) dict
// of tensors. It interprets only the pickle opcodes torch.save emits and calls nothing: the few
// globals it accepts (OrderedDict, the tensor-rebuild helpers, storage types) are recognised by name
// and rebuilt here, and any other global is an error. Torch-free; checkpoint.cpp adds the storages.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "lorahub/core/safetensors.h"

namespace lorahub::model::detail {

/// A storage named by a persistent id ('storage', torch.<T>Storage, key, location, numel); its bytes
/// are the archive record data/<key>.
struct PickledStorage {
  std::string key;
  core::DType dtype = core::DType::kF32;
  uint64_t numel = 0;
  std::string location;
};

/// A tensor as _rebuild_tensor_v2 describes it: a strided view of storages[storage]. The view is
/// checked to lie inside the storage.
struct PickledTensor {
  std::string name;
  std::size_t storage = 0;
  int64_t storage_offset = 0;
  std::vector<int64_t> sizes;
  std::vector<int64_t> strides;
};

struct PickledStateDict {
  std::vector<PickledStorage> storages;  // only those some tensor uses, in first-use order
  std::vector<PickledTensor> tensors;    // in the pickle's order; names are unique
};

/// Interprets `pickle` (data.pkl) whose result must be a dict or OrderedDict from str to tensor.
/// Throws core::Error naming `source` (the file) and, where one is known, the key.
PickledStateDict parse_state_dict_pickle(std::string_view pickle, const std::string& source);

}  // namespace lorahub::model::detail
