#pragma once
// Helpers for checking error messages: error_text runs a callable that must throw core::Error and
// returns its message ("<no error>" otherwise); has_substr is a predicate-formatter for
// EXPECT_PRED_FORMAT2(has_substr, text, part), so tests can check that messages name the file,
// line and field.
#include <gtest/gtest.h>

#include <string>

#include "lorahub/core/error.h"

namespace lorahub::data::testing {

template <class F>
std::string error_text(F&& f) {
  try {
    f();
  } catch (const core::Error& e) {
    return e.what();
  }
  return "<no error>";
}

inline ::testing::AssertionResult has_substr(const char* text_expr, const char* part_expr,
                                             const std::string& text, const std::string& part) {
  if (text.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << text_expr << " is\n  \"" << text << "\"\nwhich lacks "
                                       << part_expr << "\n  \"" << part << "\"";
}

}  // namespace lorahub::data::testing
