#pragma once
#include <string>

namespace lorahub::core {

/// The project version ("0.1.0"), from CMake's project(VERSION): the one place it is written.
const char* version();
/// "lorahub-hpc <version>", as --version prints it and every run records it.
std::string software_version();

}  // namespace lorahub::core
