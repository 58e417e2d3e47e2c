#pragma once
// Tensor files: safetensors (memory-mapped, zero-copy), PyTorch torch.save zip archives (read by a
// restricted unpickler that executes nothing) and sharded checkpoints of either.
#include <map>
#include <string>

#include <torch/types.h>

#include "lorahub/core/safetensors.h"

namespace lorahub::model {

/// Tensors by state-dict name (sorted). Tensors that shared a storage in the file still do.
using StateDict = std::map<std::string, torch::Tensor>;
/// The file each key was read from (a shard, for sharded checkpoints), for error messages.
using KeyFiles = std::map<std::string, std::string>;

/// torch dtype of a file dtype, and back (the latter throws core::Error naming `where` for dtypes
/// safetensors cannot hold).
torch::ScalarType to_scalar_type(core::DType dtype);
core::DType from_scalar_type(torch::ScalarType type, const std::string& where = "");

/// Loads one tensor file, recognised by its content (not its extension): a safetensors file, whose
/// tensors are views of a copy-on-write mapping of the file (copied only when a tensor is not aligned
/// for its dtype), or a torch.save zip archive (`pytorch_model.bin`, `adapter_model.bin`) holding a
/// dict or OrderedDict of CPU tensors. Throws core::Error naming the file and key on bad input.
StateDict load_tensor_file(const std::string& path);

/// Loads a model checkpoint: `dir_or_file` itself when it is a file, else the first of
/// model.safetensors, model.safetensors.index.json, pytorch_model.bin, pytorch_model.bin.index.json
/// in that folder. A sharded index's weight_map must match its shards exactly (every shard present,
/// every key in the shard it names, no key in two shards, no shard key missing from the map).
/// `files`, when given, receives the file of every key.
StateDict load_checkpoint(const std::string& dir_or_file, KeyFiles* files = nullptr);

/// Loads an adapter's weights: `dir` itself when it is a file, else adapter_model.safetensors or
/// adapter_model.bin in that folder. `file`, when given, receives the path read.
StateDict load_adapter_weights(const std::string& dir, std::string* file = nullptr);

/// Loads a sharded checkpoint from its index (`*.index.json`, HF layout: {"weight_map": {key: shard}}),
/// validating it as load_checkpoint describes; `files`, when given, receives the shard of every key.
StateDict load_sharded(const std::string& index_path, KeyFiles* files = nullptr);

/// Writes `tensors` as a safetensors file (contiguous CPU copies; atomic, see core::write_safetensors).
void save_safetensors(const std::string& path, const StateDict& tensors,
                      const std::map<std::string, std::string>& metadata = {});

/// Throws core::Error naming `file`, `key`, the shape, and the first bad element's index and value when the
/// floating tensor `t` (any device) holds a NaN or an infinity; integer and bool tensors pass. Reads every
/// element once; a contiguous CPU tensor is scanned in place (no temporary), on the intra-op threads.
void check_finite(const torch::Tensor& t, const std::string& file, const std::string& key);

/// One line per tensor, "name DTYPE [d0, d1, ...]", in name order (for `lorahub inspect`).
std::string describe_state_dict(const StateDict& tensors);

}  // namespace lorahub::model
