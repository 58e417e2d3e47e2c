#pragma once
// Checking error messages: error_text runs a callable that should throw core::Error and returns its message
// (a test failure, and "<no error>", when it throws nothing; a test failure when it throws another type);
// has_substr is a predicate-formatter for
// EXPECT_PRED_FORMAT2(has_substr, text, part), so that tests check messages name the file, key and value.
#include <exception>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "lorahub/core/error.h"

namespace lorahub::test {

template <class F>
std::string error_text(F&& f) {
  try {
    f();
  } catch (const core::Error& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "threw an exception that is not a core::Error: " << e.what();
    return e.what();
  }
  ADD_FAILURE() << "threw no error";
  return "<no error>";
}

inline ::testing::AssertionResult has_substr(const char* text_expr, const char* part_expr, const std::string& text,
                                             const std::string& part) {
  if (text.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << text_expr << " is\n  \"" << text << "\"\nwhich lacks " << part_expr << "\n  \""
                                       << part << "\"";
}

/// Expects `f` to throw core::Error whose message contains every one of `parts`; `label` starts each failure.
template <class F>
void expect_error(F&& f, const std::vector<std::string>& parts, const std::string& label = "") {
  const auto msg = error_text(std::forward<F>(f));
  for (const auto& part : parts) {
    EXPECT_NE(msg.find(part), std::string::npos) << label << (label.empty() ? "" : ": ") << "'" << part
                                                 << "' not in: " << msg;
  }
}

}  // namespace lorahub::test
