#pragma once
// Which files a checkpoint folder is read from, decided in one place: the loaders (model) read them and the
// staging of a job (broadcast to node-local folders) copies exactly them.
#include <string>
#include <vector>

namespace lorahub::core {

enum class CheckpointKind {
  kModel,   ///< model.safetensors, model.safetensors.index.json, pytorch_model.bin, pytorch_model.bin.index.json
  kAdapter  ///< adapter_model.safetensors, adapter_model.bin
};

/// The file a folder's weights are read from: the first of the kind's names (in that order of preference) that
/// is a file. Throws Error naming the folder and the names looked for when there is none.
std::string checkpoint_entry(const std::string& dir, CheckpointKind kind);

/// checkpoint_entry() and, when it is a sharded index (*.index.json), the distinct shard files its weight_map
/// names (sorted), next to it. Throws Error naming the index when it is not valid JSON or names a shard outside
/// its folder. Whether the shards exist and hold the keys is checked when they are loaded.
std::vector<std::string> checkpoint_files(const std::string& dir, CheckpointKind kind);

}  // namespace lorahub::core
