#include "lorahub/text/t5_tokenizer.h"

#include <algorithm>
#include <utility>

#include "lorahub/core/error.h"
#include "lorahub/core/utf8.h"
#include "text/spm_model.h"

namespace lorahub::text {
namespace {

using core::cat;
using core::fail;

constexpr std::string_view kEos = "</s>";
constexpr std::string_view kPad = "<pad>";
constexpr std::string_view kUnk = "<unk>";
constexpr std::string_view kExtraPrefix = "<extra_id_";

// Python's str.isspace(), which str.strip() uses: the chars HF strips around special tokens.
bool is_python_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
         c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
         c == 0x202F || c == 0x205F || c == 0x3000;
}

std::string_view lstrip_python(std::string_view s) {
  std::size_t pos = 0;
  while (pos < s.size()) {
    char32_t c = 0;
    const std::size_t len = core::decode_utf8(s, pos, c);
    if (len == 0 || !is_python_space(c)) break;
    pos += len;
  }
  return s.substr(pos);
}

std::string_view rstrip_python(std::string_view s) {
  std::size_t end = s.size();
  while (end > 0) {
    // Step back to the lead byte of the last sequence (at most 3 continuation bytes).
    std::size_t start = end - 1;
    while (start > 0 && end - start < 4 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80)
      --start;
    char32_t c = 0;
    const std::size_t len = core::decode_utf8(s, start, c);
    if (len == 0 || start + len != end || !is_python_space(c)) break;
    end = start;
  }
  return s.substr(0, end);
}

// HF's clean_up_tokenization: the same replacements, in the same order.
std::string clean_up_tokenization(std::string s) {
  static const std::pair<std::string_view, std::string_view> kRules[] = {
      {" .", "."},   {" ?", "?"},     {" !", "!"},     {" ,", ","},     {" ' ", "'"},
      {" n't", "n't"}, {" 'm", "'m"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}};
  for (const auto& [from, to] : kRules) {
    std::string out;
    out.reserve(s.size());
    std::size_t pos = 0;
    while (true) {
      const std::size_t hit = s.find(from, pos);
      if (hit == std::string::npos) break;
      out.append(s, pos, hit - pos);
      out.append(to);
      pos = hit + from.size();
    }
    out.append(s, pos, std::string::npos);
    s = std::move(out);
  }
  return s;
}

// "<extra_id_N>" at text[pos] with N written as Python would print it; returns the token length
// (0 if none) and N. Numbers too long to be an extra id never match.
std::size_t match_extra(std::string_view text, std::size_t pos, long long* n) {
  if (text.compare(pos, kExtraPrefix.size(), kExtraPrefix) != 0) return 0;
  std::size_t i = pos + kExtraPrefix.size();
  const std::size_t digits_start = i;
  long long value = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9' && i - digits_start < 12) {
    value = value * 10 + (text[i] - '0');
    ++i;
  }
  const std::size_t digits = i - digits_start;
  if (digits == 0 || i >= text.size() || text[i] != '>') return 0;
  if (digits > 1 && text[digits_start] == '0') return 0;
  *n = value;
  return i + 1 - pos;
}

}  // namespace

T5Tokenizer::T5Tokenizer(std::shared_ptr<const SpmModel> model, int extra_ids)
    : model_(std::move(model)), extra_ids_(extra_ids) {
  if (extra_ids_ < 0) fail("text: extra_ids must be >= 0, got ", extra_ids_, " for '", model_->name(), "'");
  piece_count_ = model_->piece_count();
  // HF takes these ids from the piece strings, not from the model's trainer spec.
  auto piece_id = [&](std::string_view piece, bool required) -> int64_t {
    const int32_t id = model_->piece_to_id(piece);
    const bool present = id >= 0 && id < piece_count_ && model_->id_to_piece(id) == piece;
    if (present) special_piece_ids_.push_back(id);
    if (required && !present) {
      fail("text: sentencepiece model '", model_->name(), "' has no '", piece,
           "' piece, which a T5 vocabulary needs");
    }
    return id;
  };
  eos_id_ = piece_id(kEos, true);
  pad_id_ = piece_id(kPad, true);
  unk_id_ = piece_id(kUnk, false);
  std::sort(special_piece_ids_.begin(), special_piece_ids_.end());
}

T5Tokenizer T5Tokenizer::load(const std::string& spiece_model_path, int extra_ids) {
  return T5Tokenizer(SpmModel::load_file(spiece_model_path), extra_ids);
}

T5Tokenizer T5Tokenizer::from_bytes(std::string_view serialized_model, const std::string& name,
                                    int extra_ids) {
  return T5Tokenizer(SpmModel::load_bytes(serialized_model, name), extra_ids);
}

int64_t T5Tokenizer::vocab_size() const { return piece_count_ + extra_ids_; }
int64_t T5Tokenizer::piece_count() const { return piece_count_; }
const std::string& T5Tokenizer::source() const { return model_->name(); }

int64_t T5Tokenizer::extra_id(int n) const {
  if (n < 0 || n >= extra_ids_) {
    fail("text: <extra_id_", n, "> does not exist: '", source(), "' has ", extra_ids_,
         " extra ids");
  }
  return vocab_size() - 1 - n;
}

bool T5Tokenizer::is_special_id(int64_t id) const {
  return id == pad_id_ || id == eos_id_ || id == unk_id_ ||
         (id >= piece_count_ && id < vocab_size());
}

void T5Tokenizer::check_id(int64_t id, const char* where) const {
  if (id < 0 || id >= vocab_size()) {
    fail("text: ", where, ": id ", id, " is out of range [0, ", vocab_size(), ") of '", source(),
         "'");
  }
}

std::size_t T5Tokenizer::match_special(std::string_view text, std::size_t pos, int64_t* id) const {
  if (text.compare(pos, kEos.size(), kEos) == 0) {
    *id = eos_id_;
    return kEos.size();
  }
  if (text.compare(pos, kPad.size(), kPad) == 0) {
    *id = pad_id_;
    return kPad.size();
  }
  if (text.compare(pos, kUnk.size(), kUnk) == 0) {
    *id = unk_id_;
    return kUnk.size();
  }
  long long n = 0;
  const std::size_t len = match_extra(text, pos, &n);
  if (len > 0 && n < extra_ids_) {
    *id = vocab_size() - 1 - n;
    return len;
  }
  return 0;
}

std::vector<int64_t> T5Tokenizer::encode(std::string_view text, bool add_eos) const {
  std::vector<int64_t> out;
  auto emit_chunk = [&](std::string_view chunk, bool after_special, bool before_special) {
    // HF strips whitespace on both sides of a special token given as a plain string.
    if (after_special) chunk = lstrip_python(chunk);
    if (before_special) chunk = rstrip_python(chunk);
    if (chunk.empty()) return;
    for (int32_t id : model_->encode(chunk)) out.push_back(id);
  };
  std::size_t chunk_start = 0;
  bool after_special = false;
  std::size_t pos = 0;
  // No special token contains a second '<', so the leftmost-longest match at each '<' is exactly
  // what HF's trie finds.
  while ((pos = text.find('<', pos)) != std::string_view::npos) {
    int64_t id = 0;
    const std::size_t len = match_special(text, pos, &id);
    if (len == 0) {
      ++pos;
      continue;
    }
    emit_chunk(text.substr(chunk_start, pos - chunk_start), after_special, true);
    out.push_back(id);
    after_special = true;
    pos += len;
    chunk_start = pos;
  }
  emit_chunk(text.substr(chunk_start), after_special, false);
  // HF's _add_eos_if_not_present.
  if (add_eos && (out.empty() || out.back() != eos_id_)) out.push_back(eos_id_);
  return out;
}

std::size_t T5Tokenizer::count_tokens(std::string_view text, bool add_eos) const {
  return encode(text, add_eos).size();
}

std::string T5Tokenizer::id_to_token(int64_t id) const {
  check_id(id, "id_to_token");
  if (id >= piece_count_) return cat(kExtraPrefix, vocab_size() - 1 - id, ">");
  return model_->id_to_piece(static_cast<int32_t>(id));
}

int64_t T5Tokenizer::token_to_id(std::string_view token) const {
  if (token.substr(0, kExtraPrefix.size()) == kExtraPrefix) {
    long long n = 0;
    if (match_extra(token, 0, &n) != token.size() || n >= extra_ids_) {
      fail("text: '", token, "' is not one of the ", extra_ids_, " extra ids of '", source(), "'");
    }
    return vocab_size() - 1 - n;
  }
  return model_->piece_to_id(token);
}

std::string T5Tokenizer::decode(const std::vector<int64_t>& ids, bool skip_special_tokens,
                                bool clean_up_tokenization_spaces) const {
  for (int64_t id : ids) check_id(id, "decode");
  // HF convert_ids_to_tokens + T5 convert_tokens_to_string: runs of ordinary pieces go through
  // sentencepiece; a special token is written verbatim, with one space before it unless the token
  // before it was special too.
  std::string out;
  std::vector<int32_t> run;
  bool prev_special = false;
  for (int64_t id : ids) {
    if (skip_special_tokens && is_special_id(id)) continue;
    const bool special = id >= piece_count_ ||
                         std::binary_search(special_piece_ids_.begin(), special_piece_ids_.end(), id);
    if (!special) {
      run.push_back(static_cast<int32_t>(id));
      prev_special = false;
      continue;
    }
    if (!prev_special) out += ' ';
    out += model_->decode(run);
    out += id_to_token(id);
    run.clear();
    prev_special = true;
  }
  out += model_->decode(run);
  std::string text(lstrip_python(rstrip_python(out)));
  return clean_up_tokenization_spaces ? clean_up_tokenization(std::move(text)) : text;
}

BatchEncoding T5Tokenizer::encode_batch(const std::vector<std::string>& texts,
                                        const EncodeOptions& options) const {
  std::vector<std::vector<int64_t>> rows;
  rows.reserve(texts.size());
  for (std::size_t r = 0; r < texts.size(); ++r) {
    std::vector<int64_t> ids = encode(texts[r], false);
    if (options.truncation) {
      // HF prepare_for_model: reserve room for the one special token, cut from the right, then
      // add </s> unless the cut ids already end with it.
      const std::size_t total = ids.size() + (options.add_eos ? 1 : 0);
      if (total > options.max_length) {
        const std::size_t remove = total - options.max_length;
        if (ids.size() <= remove) {
          fail("text: row ", r, " of ", ids.size(), " ids cannot be truncated to max_length ",
               options.max_length, options.add_eos ? " with </s>" : "", " (", source(), ")");
        }
        ids.resize(ids.size() - remove);
      }
    }
    if (options.add_eos && (ids.empty() || ids.back() != eos_id_)) ids.push_back(eos_id_);
    rows.push_back(std::move(ids));
  }

  BatchEncoding batch;
  batch.rows = rows.size();
  std::size_t longest = 0;
  for (const auto& row : rows) longest = std::max(longest, row.size());
  switch (options.padding) {
    case Padding::kNone:
      for (std::size_t r = 0; r < rows.size(); ++r) {
        if (rows[r].size() != longest) {
          fail("text: without padding every row needs the same length, but row ", r, " has ",
               rows[r].size(), " ids and the longest has ", longest);
        }
      }
      batch.cols = longest;
      break;
    case Padding::kLongest:
      batch.cols = longest;
      break;
    case Padding::kMaxLength:
      for (std::size_t r = 0; r < rows.size(); ++r) {
        if (rows[r].size() > options.max_length) {
          fail("text: row ", r, " has ", rows[r].size(), " ids, more than max_length ",
               options.max_length, " (enable truncation)");
        }
      }
      batch.cols = options.max_length;
      break;
  }
  batch.input_ids.assign(batch.rows * batch.cols, pad_id_);
  batch.attention_mask.assign(batch.rows * batch.cols, 0);
  batch.lengths.resize(batch.rows);
  for (std::size_t r = 0; r < rows.size(); ++r) {
    std::copy(rows[r].begin(), rows[r].end(), batch.input_ids.begin() + r * batch.cols);
    std::fill_n(batch.attention_mask.begin() + r * batch.cols, rows[r].size(), 1);
    batch.lengths[r] = rows[r].size();
  }
  return batch;
}

std::string spm_shim_path() { return spm_shim_location(); }

}  // namespace lorahub::text
