#pragma once
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace lorahub::data {

/// True for the code points CPython's str.isspace() accepts, i.e. those str.strip() removes:
/// U+0009..U+000D, U+001C..U+001F, U+0020, U+0085, U+00A0, U+1680, U+2000..U+200A, U+2028,
/// U+2029, U+202F, U+205F, U+3000 (not U+200B, U+180E or U+FEFF).
bool is_python_space(char32_t cp);

/// Python's `s.strip()` on UTF-8 text: removes leading and trailing is_python_space code points.
/// Bytes that are not valid UTF-8 count as non-space and are kept.
std::string python_strip(std::string_view s);

/// Python's `s.lower()` for code points below U+0180 (ASCII, Latin-1 Supplement, Latin
/// Extended-A), including U+0130 'İ' -> "i\u0307" and U+0178 'Ÿ' -> 'ÿ'. Every other code point
/// (Greek, Cyrillic, ...) and every invalid byte is copied unchanged, which differs from Python
/// only for cased letters at U+0180 and above; BBH targets are ASCII.
std::string python_lower(std::string_view s);

/// The LoraHub reference's answer normalisation `s.strip().lower().replace(".", "")`, in that
/// order (so "a ." becomes "a ", whose space is not stripped again).
std::string normalize_answer(std::string_view s);

/// normalize_answer(prediction) == normalize_answer(target).
bool exact_match(std::string_view prediction, std::string_view target);

/// Number of i with exact_match(predictions[i], targets[i]).
/// Throws core::Error when the sizes differ.
std::size_t count_exact_matches(const std::vector<std::string>& predictions,
                                const std::vector<std::string>& targets);

/// count_exact_matches / size, in [0, 1] (the reference prints this times 100).
/// Throws core::Error when the sizes differ or both are empty.
double accuracy(const std::vector<std::string>& predictions,
                const std::vector<std::string>& targets);

}  // namespace lorahub::data
