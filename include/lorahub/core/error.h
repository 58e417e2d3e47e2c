#pragma once
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace lorahub::core {

/// The one exception type of the project. Its message names what was wrong and where
/// (file, key, shape, task or run), so `main` can print it as a single line.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Concatenates the stream representations of its arguments.
template <class... Args>
std::string cat(Args&&... args) {
  std::ostringstream os;
  (os << ... << std::forward<Args>(args));
  return os.str();
}

/// Throws an Error whose message is the concatenation of the arguments.
template <class... Args>
[[noreturn]] void fail(Args&&... args) {
  throw Error(cat(std::forward<Args>(args)...));
}

}  // namespace lorahub::core
