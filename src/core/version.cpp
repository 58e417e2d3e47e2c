#include "lorahub/core/version.h"

namespace lorahub::core {

const char* version() { return LORAHUB_VERSION; }

std::string software_version() { return std::string("lorahub-hpc ") + version(); }

}  // namespace lorahub::core
