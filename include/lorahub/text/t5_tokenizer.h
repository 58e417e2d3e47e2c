#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace lorahub::text {

class SpmModel;

/// How encode_batch pads its rows (Hugging Face's `padding=` argument).
enum class Padding {
  kNone,       ///< no padding: every row must already have the same length
  kLongest,    ///< pad to the longest row of the batch (`padding=True` / "longest")
  kMaxLength,  ///< pad to EncodeOptions::max_length ("max_length")
};

struct EncodeOptions {
  Padding padding = Padding::kLongest;
  /// Used by truncation and by Padding::kMaxLength. 512 is Flan-T5's `model_max_length`, which HF
  /// uses when `truncation=True` is given without `max_length`.
  std::size_t max_length = 512;
  /// Cut each row so that, with its `</s>`, it is at most max_length ids (HF `truncation=True`).
  bool truncation = false;
  bool add_eos = true;
};

/// A padded batch: row-major [rows, cols] int64 matrices, right-padded with pad_id / mask 0.
struct BatchEncoding {
  std::vector<int64_t> input_ids;       ///< [rows, cols]
  std::vector<int64_t> attention_mask;  ///< [rows, cols]: 1 for real ids (including </s>), 0 for pad
  std::vector<std::size_t> lengths;     ///< [rows]: ids per row before padding
  std::size_t rows = 0;
  std::size_t cols = 0;
};

/// T5's tokenizer with the semantics of Hugging Face transformers 4.26's slow `T5Tokenizer`
/// (legacy behaviour) on a sentencepiece `spiece.model`:
///  - `</s>`, `<pad>`, `<unk>` and `<extra_id_N>` (N < extra_ids) written literally in the text are
///    split out first and map to their ids; the Unicode whitespace on both sides of each is
///    dropped; every other chunk is segmented by sentencepiece on its own;
///  - `</s>` is appended unless the ids already end with it;
///  - `<extra_id_N>` is id vocab_size() - 1 - N, above the sentencepiece pieces;
///  - decode drops pad / eos / unk / extra ids when skipping special tokens and applies HF's
///    `clean_up_tokenization` (" ." -> ".", " n't" -> "n't", ...).
/// Sentencepiece runs inside liblorahub_spm_shim.so, loaded with dlopen (see spm_shim_location()).
/// Copies share the loaded model; every method is const and thread-safe.
class T5Tokenizer {
 public:
  /// Loads `spiece.model`. Throws core::Error naming the file when it is missing, is not a
  /// sentencepiece model, or lacks the `</s>` / `<pad>` pieces every T5 vocabulary has.
  static T5Tokenizer load(const std::string& spiece_model_path, int extra_ids = 100);
  /// The same from the serialized model bytes (e.g. broadcast from rank 0); `name` is for errors.
  static T5Tokenizer from_bytes(std::string_view serialized_model, const std::string& name,
                                int extra_ids = 100);

  /// Sentencepiece pieces + extra ids (HF `vocab_size`, 32100 for T5).
  int64_t vocab_size() const;
  /// Pieces in the sentencepiece model (32000 for T5); extra ids start here.
  int64_t piece_count() const;
  /// Number of `<extra_id_N>` sentinels (100 for T5).
  int extra_ids() const { return extra_ids_; }
  /// Ids of the `<pad>`, `</s>` and `<unk>` pieces (0, 1, 2 for T5).
  int64_t pad_id() const { return pad_id_; }
  int64_t eos_id() const { return eos_id_; }
  int64_t unk_id() const { return unk_id_; }
  /// Id of `<extra_id_n>`: vocab_size() - 1 - n; throws unless 0 <= n < extra_ids().
  int64_t extra_id(int n) const;

  /// UTF-8 text -> ids, `</s>` last when add_eos (and not already there). No truncation.
  std::vector<int64_t> encode(std::string_view text, bool add_eos = true) const;
  /// ids -> UTF-8 text (HF `decode`). Throws core::Error naming any id outside [0, vocab_size()).
  std::string decode(const std::vector<int64_t>& ids, bool skip_special_tokens = true,
                     bool clean_up_tokenization_spaces = true) const;
  /// Encodes every text, truncates / pads as `options` say (HF `tokenizer(texts, ...)`). Throws
  /// core::Error when a row cannot fit: truncation to max_length impossible (max_length too small),
  /// a row longer than max_length with Padding::kMaxLength and no truncation, or rows of unequal
  /// length with Padding::kNone.
  BatchEncoding encode_batch(const std::vector<std::string>& texts,
                             const EncodeOptions& options = {}) const;
  /// encode(text, add_eos).size().
  std::size_t count_tokens(std::string_view text, bool add_eos = true) const;

  /// HF `convert_ids_to_tokens` for one id: the piece, or `<extra_id_N>`; throws when out of range.
  std::string id_to_token(int64_t id) const;
  /// HF `convert_tokens_to_ids` for one token: `<extra_id_N>` or a piece; unknown pieces -> unk_id.
  int64_t token_to_id(std::string_view token) const;
  /// True for the ids HF calls special: pad, eos, unk and every extra id.
  bool is_special_id(int64_t id) const;
  /// The model file (or name) this tokenizer was loaded from.
  const std::string& source() const;

 private:
  T5Tokenizer(std::shared_ptr<const SpmModel> model, int extra_ids);
  // Length of the special token starting at text[pos] (0 if none) and its id.
  std::size_t match_special(std::string_view text, std::size_t pos, int64_t* id) const;
  void check_id(int64_t id, const char* where) const;

  std::shared_ptr<const SpmModel> model_;
  // Pieces whose text is a special token ("</s>", "<pad>", "<unk>"), sorted: decode treats them
  // as HF treats special tokens even when not skipping them.
  std::vector<int64_t> special_piece_ids_;
  int extra_ids_ = 0;
  int64_t piece_count_ = 0;
  int64_t pad_id_ = 0;
  int64_t eos_id_ = 0;
  int64_t unk_id_ = 0;
};

/// Path of the sentencepiece shim this process uses, loading it if needed. Search order:
/// $LORAHUB_SPM_SHIM when set (then only that); <dir of the running executable>/
/// liblorahub_spm_shim.so; <that dir>/../lib/liblorahub_spm_shim.so; the build-tree path compiled
/// into lorahub_text. Throws core::Error naming every path tried.
std::string spm_shim_path();

}  // namespace lorahub::text
