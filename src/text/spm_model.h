#pragma once
// A sentencepiece model reached through liblorahub_spm_shim.so (see spm_shim/spm_shim.h for why
// the shim exists). Internal to lorahub_text.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

struct LorahubSpm;

namespace lorahub::text {

/// Where the shim was found and opened; loads it on first use. Search order: $LORAHUB_SPM_SHIM;
/// <dir of /proc/self/exe>/liblorahub_spm_shim.so; <that dir>/../lib/liblorahub_spm_shim.so; the
/// build-tree path compiled in. Throws core::Error naming every path tried.
const std::string& spm_shim_location();

/// One loaded sentencepiece model. Immutable after loading; all methods are thread-safe.
class SpmModel {
 public:
  /// Throws core::Error naming `path` when the file is missing or is not a sentencepiece model.
  static std::shared_ptr<const SpmModel> load_file(const std::string& path);
  /// `name` is used only in error messages.
  static std::shared_ptr<const SpmModel> load_bytes(std::string_view bytes, const std::string& name);

  ~SpmModel();
  SpmModel(const SpmModel&) = delete;
  SpmModel& operator=(const SpmModel&) = delete;

  /// The model's own segmentation of `text` (no special-token handling, no EOS).
  std::vector<int32_t> encode(std::string_view text) const;
  /// ids must lie in [0, piece_count()).
  std::string decode(const std::vector<int32_t>& ids) const;
  std::string id_to_piece(int32_t id) const;
  /// The unknown id when the model has no such piece.
  int32_t piece_to_id(std::string_view piece) const;
  int32_t piece_count() const { return piece_count_; }
  int32_t unk_id() const { return unk_id_; }
  bool is_control(int32_t id) const;
  bool is_unknown(int32_t id) const;
  const std::string& name() const { return name_; }

 private:
  SpmModel(LorahubSpm* handle, std::string name);
  LorahubSpm* handle_;
  std::string name_;
  int32_t piece_count_;
  int32_t unk_id_;
};

}  // namespace lorahub::text
