#include "text/spm_model.h"

#include <dlfcn.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <utility>

#include "lorahub/core/error.h"
#include "text/spm_shim/spm_shim.h"

#ifndef LORAHUB_SPM_SHIM_FILE_NAME
#define LORAHUB_SPM_SHIM_FILE_NAME "liblorahub_spm_shim.so"
#endif

namespace lorahub::text {
namespace {

using core::fail;

struct ShimApi {
  std::string path;
  decltype(&lorahub_spm_abi_version) abi_version = nullptr;
  decltype(&lorahub_spm_load_file) load_file = nullptr;
  decltype(&lorahub_spm_load_bytes) load_bytes = nullptr;
  decltype(&lorahub_spm_free) free_model = nullptr;
  decltype(&lorahub_spm_free_buffer) free_buffer = nullptr;
  decltype(&lorahub_spm_encode) encode = nullptr;
  decltype(&lorahub_spm_decode) decode = nullptr;
  decltype(&lorahub_spm_id_to_piece) id_to_piece = nullptr;
  decltype(&lorahub_spm_piece_to_id) piece_to_id = nullptr;
  decltype(&lorahub_spm_piece_count) piece_count = nullptr;
  decltype(&lorahub_spm_unk_id) unk_id = nullptr;
  decltype(&lorahub_spm_is_control) is_control = nullptr;
  decltype(&lorahub_spm_is_unknown) is_unknown = nullptr;
};

bool is_file(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

std::string executable_dir() {
  std::string buffer(4096, '\0');
  const ssize_t n = ::readlink("/proc/self/exe", buffer.data(), buffer.size());
  if (n <= 0 || static_cast<std::size_t>(n) >= buffer.size()) return {};
  buffer.resize(static_cast<std::size_t>(n));
  const auto slash = buffer.rfind('/');
  return slash == std::string::npos ? std::string() : buffer.substr(0, slash);
}

std::vector<std::string> shim_candidates() {
  const char* env = std::getenv("LORAHUB_SPM_SHIM");
  // An explicit choice is the only candidate: falling back elsewhere would hide a typo.
  if (env != nullptr && *env != '\0') return {env};
  std::vector<std::string> out;
  const std::string dir = executable_dir();
  if (!dir.empty()) {
    out.push_back(dir + "/" LORAHUB_SPM_SHIM_FILE_NAME);
    out.push_back(dir + "/../lib/" LORAHUB_SPM_SHIM_FILE_NAME);
  }
#ifdef LORAHUB_SPM_SHIM_BUILD_PATH
  out.push_back(LORAHUB_SPM_SHIM_BUILD_PATH);
#endif
  return out;
}

template <class Fn>
void bind(void* handle, const std::string& path, const char* symbol, Fn& out) {
  ::dlerror();
  void* address = ::dlsym(handle, symbol);
  if (address == nullptr) {
    const char* why = ::dlerror();
    fail("text: sentencepiece shim '", path, "' lacks symbol ", symbol, ": ",
         why == nullptr ? "null address" : why);
  }
  out = reinterpret_cast<Fn>(address);
}

ShimApi open_shim() {
  const auto candidates = shim_candidates();
  std::string tried;
  for (const auto& path : candidates) {
    if (!is_file(path)) {
      tried += (tried.empty() ? "" : ", ") + path;
      continue;
    }
    // RTLD_DEEPBIND makes the shim and libsentencepiece resolve their own (bundled protobuf)
    // symbols before the process's global ones (libtorch's protobuf); RTLD_LOCAL keeps theirs out
    // of everyone else's way. The handle is never closed: models may outlive any owner.
#ifdef LORAHUB_SANITIZE
    // AddressSanitizer refuses RTLD_DEEPBIND; a link-map namespace of its own isolates the shim (and its
    // uninstrumented libc and protobuf) as well. Buffers never cross: the shim frees what it allocates.
    void* handle = ::dlmopen(LM_ID_NEWLM, path.c_str(), RTLD_NOW | RTLD_LOCAL);
#else
    void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
#endif
    if (handle == nullptr) {
      const char* why = ::dlerror();
      fail("text: cannot open sentencepiece shim '", path, "': ", why == nullptr ? "?" : why);
    }
    ShimApi api;
    api.path = path;
    bind(handle, path, "lorahub_spm_abi_version", api.abi_version);
    if (api.abi_version() != LORAHUB_SPM_SHIM_ABI) {
      fail("text: sentencepiece shim '", path, "' has ABI ", api.abi_version(), ", expected ",
           LORAHUB_SPM_SHIM_ABI);
    }
    bind(handle, path, "lorahub_spm_load_file", api.load_file);
    bind(handle, path, "lorahub_spm_load_bytes", api.load_bytes);
    bind(handle, path, "lorahub_spm_free", api.free_model);
    bind(handle, path, "lorahub_spm_free_buffer", api.free_buffer);
    bind(handle, path, "lorahub_spm_encode", api.encode);
    bind(handle, path, "lorahub_spm_decode", api.decode);
    bind(handle, path, "lorahub_spm_id_to_piece", api.id_to_piece);
    bind(handle, path, "lorahub_spm_piece_to_id", api.piece_to_id);
    bind(handle, path, "lorahub_spm_piece_count", api.piece_count);
    bind(handle, path, "lorahub_spm_unk_id", api.unk_id);
    bind(handle, path, "lorahub_spm_is_control", api.is_control);
    bind(handle, path, "lorahub_spm_is_unknown", api.is_unknown);
    return api;
  }
  fail("text: sentencepiece shim " LORAHUB_SPM_SHIM_FILE_NAME " not found (tried: ",
       tried.empty() ? std::string("nothing") : tried,
       "); set LORAHUB_SPM_SHIM to its path");
}

const ShimApi& shim() {
  // A failed initialisation throws and is retried on the next call.
  static const ShimApi api = open_shim();
  return api;
}

// Takes ownership of a buffer the shim allocated.
struct ShimBuffer {
  void* data = nullptr;
  ~ShimBuffer() {
    if (data != nullptr) shim().free_buffer(data);
  }
};

std::string take_error(char* error) {
  ShimBuffer owner{error};
  return error == nullptr ? std::string("unknown error") : std::string(error);
}

}  // namespace

const std::string& spm_shim_location() { return shim().path; }

SpmModel::SpmModel(LorahubSpm* handle, std::string name)
    : handle_(handle),
      name_(std::move(name)),
      piece_count_(shim().piece_count(handle)),
      unk_id_(shim().unk_id(handle)) {}

SpmModel::~SpmModel() { shim().free_model(handle_); }

std::shared_ptr<const SpmModel> SpmModel::load_file(const std::string& path) {
  if (!is_file(path)) fail("text: sentencepiece model '", path, "' does not exist or is not a file");
  char* error = nullptr;
  LorahubSpm* handle = shim().load_file(path.c_str(), &error);
  if (handle == nullptr) {
    fail("text: '", path, "' is not a readable sentencepiece model: ", take_error(error));
  }
  return std::shared_ptr<const SpmModel>(new SpmModel(handle, path));
}

std::shared_ptr<const SpmModel> SpmModel::load_bytes(std::string_view bytes,
                                                     const std::string& name) {
  char* error = nullptr;
  LorahubSpm* handle = shim().load_bytes(bytes.data(), bytes.size(), &error);
  if (handle == nullptr) {
    fail("text: '", name, "' (", bytes.size(), " bytes) is not a sentencepiece model: ",
         take_error(error));
  }
  return std::shared_ptr<const SpmModel>(new SpmModel(handle, name));
}

std::vector<int32_t> SpmModel::encode(std::string_view text) const {
  int32_t* ids = nullptr;
  std::size_t count = 0;
  char* error = nullptr;
  if (shim().encode(handle_, text.data(), text.size(), &ids, &count, &error) != 0) {
    fail("text: sentencepiece encode failed for ", text.size(), " bytes with '", name_,
         "': ", take_error(error));
  }
  ShimBuffer owner{ids};
  return std::vector<int32_t>(ids, ids + count);
}

std::string SpmModel::decode(const std::vector<int32_t>& ids) const {
  char* text = nullptr;
  std::size_t size = 0;
  char* error = nullptr;
  if (shim().decode(handle_, ids.data(), ids.size(), &text, &size, &error) != 0) {
    fail("text: sentencepiece decode failed with '", name_, "': ", take_error(error));
  }
  ShimBuffer owner{text};
  return std::string(text, size);
}

std::string SpmModel::id_to_piece(int32_t id) const {
  char* piece = nullptr;
  std::size_t size = 0;
  char* error = nullptr;
  if (shim().id_to_piece(handle_, id, &piece, &size, &error) != 0) {
    fail("text: no piece for id ", id, " in '", name_, "': ", take_error(error));
  }
  ShimBuffer owner{piece};
  return std::string(piece, size);
}

int32_t SpmModel::piece_to_id(std::string_view piece) const {
  return shim().piece_to_id(handle_, piece.data(), piece.size());
}

bool SpmModel::is_control(int32_t id) const { return shim().is_control(handle_, id) == 1; }

bool SpmModel::is_unknown(int32_t id) const { return shim().is_unknown(handle_, id) == 1; }

}  // namespace lorahub::text
