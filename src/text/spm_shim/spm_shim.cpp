// The shim's whole job is to keep sentencepiece (and the protobuf inside it) out of every other
// library's symbol scope; see spm_shim.h. Each entry point catches everything, because an exception
// unwinding through dlopen'ed C frames into another runtime's handlers is undefined.
#include "text/spm_shim/spm_shim.h"

#include <sentencepiece_processor.h>

#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <new>
#include <string>
#include <vector>

struct LorahubSpm {
  sentencepiece::SentencePieceProcessor processor;
};

namespace {

char* copy_out(const char* data, size_t size) {
  auto* out = static_cast<char*>(std::malloc(size + 1));
  if (out == nullptr) return nullptr;
  if (size > 0) std::memcpy(out, data, size);
  out[size] = '\0';
  return out;
}

void set_error(char** error, const std::string& message) {
  if (error != nullptr) *error = copy_out(message.data(), message.size());
}

bool in_range(const LorahubSpm* model, int32_t id) {
  return id >= 0 && id < model->processor.GetPieceSize();
}

LorahubSpm* finish_load(std::unique_ptr<LorahubSpm> model, const sentencepiece::util::Status& status,
                        char** error) {
  if (!status.ok()) {
    set_error(error, status.ToString());
    return nullptr;
  }
  if (model->processor.GetPieceSize() <= 0) {
    set_error(error, "the model has no pieces");
    return nullptr;
  }
  return model.release();
}

// Runs `body`; an exception becomes the error message and `on_exception` the result.
template <class R, class F>
R guarded(char** error, R on_exception, F&& body) {
  try {
    return body();
  } catch (const std::exception& e) {
    set_error(error, e.what());
  } catch (...) {
    set_error(error, "unknown exception in sentencepiece");
  }
  return on_exception;
}

int fail_with(char** error, const std::string& message) {
  set_error(error, message);
  return 1;
}

std::string out_of_range(const LorahubSpm* model, int32_t id) {
  return "id " + std::to_string(id) + " is out of range [0, " + std::to_string(model->processor.GetPieceSize()) + ")";
}

// Hands `value` to the caller as a malloc'ed, NUL-terminated buffer.
int string_out(const std::string& value, char** text, size_t* size, char** error) {
  *text = copy_out(value.data(), value.size());
  if (*text == nullptr) return fail_with(error, "out of memory");
  *size = value.size();
  return 0;
}

}  // namespace

extern "C" {

int lorahub_spm_abi_version(void) { return LORAHUB_SPM_SHIM_ABI; }

LorahubSpm* lorahub_spm_load_file(const char* path, char** error) {
  return guarded(error, static_cast<LorahubSpm*>(nullptr), [&]() -> LorahubSpm* {
    if (path == nullptr) {
      set_error(error, "null path");
      return nullptr;
    }
    auto model = std::make_unique<LorahubSpm>();
    const auto status = model->processor.Load(path);
    return finish_load(std::move(model), status, error);
  });
}

LorahubSpm* lorahub_spm_load_bytes(const char* data, size_t size, char** error) {
  return guarded(error, static_cast<LorahubSpm*>(nullptr), [&]() -> LorahubSpm* {
    if (data == nullptr && size > 0) {
      set_error(error, "null data");
      return nullptr;
    }
    auto model = std::make_unique<LorahubSpm>();
    const auto status = model->processor.LoadFromSerializedProto(absl::string_view(data == nullptr ? "" : data, size));
    return finish_load(std::move(model), status, error);
  });
}

void lorahub_spm_free(LorahubSpm* model) { delete model; }

void lorahub_spm_free_buffer(void* buffer) { std::free(buffer); }

int lorahub_spm_encode(const LorahubSpm* model, const char* text, size_t size, int32_t** ids, size_t* count,
                       char** error) {
  return guarded(error, 1, [&] {
    if (model == nullptr || ids == nullptr || count == nullptr || (text == nullptr && size > 0)) {
      return fail_with(error, "null argument to lorahub_spm_encode");
    }
    *ids = nullptr;
    *count = 0;
    std::vector<int> out;
    const auto status = model->processor.Encode(absl::string_view(text == nullptr ? "" : text, size), &out);
    if (!status.ok()) return fail_with(error, status.ToString());
    if (!out.empty()) {
      auto* buffer = static_cast<int32_t*>(std::malloc(out.size() * sizeof(int32_t)));
      if (buffer == nullptr) return fail_with(error, "out of memory");
      for (size_t i = 0; i < out.size(); ++i) buffer[i] = static_cast<int32_t>(out[i]);
      *ids = buffer;
      *count = out.size();
    }
    return 0;
  });
}

int lorahub_spm_decode(const LorahubSpm* model, const int32_t* ids, size_t count, char** text, size_t* size,
                       char** error) {
  return guarded(error, 1, [&] {
    if (model == nullptr || text == nullptr || size == nullptr || (ids == nullptr && count > 0)) {
      return fail_with(error, "null argument to lorahub_spm_decode");
    }
    *text = nullptr;
    *size = 0;
    std::vector<int> in(count);
    for (size_t i = 0; i < count; ++i) {
      // sentencepiece 0.1.97 indexes its piece table without a bounds check.
      if (!in_range(model, ids[i])) return fail_with(error, out_of_range(model, ids[i]));
      in[i] = ids[i];
    }
    std::string out;
    const auto status = model->processor.Decode(in, &out);
    if (!status.ok()) return fail_with(error, status.ToString());
    return string_out(out, text, size, error);
  });
}

int lorahub_spm_id_to_piece(const LorahubSpm* model, int32_t id, char** piece, size_t* size, char** error) {
  return guarded(error, 1, [&] {
    if (model == nullptr || piece == nullptr || size == nullptr) {
      return fail_with(error, "null argument to lorahub_spm_id_to_piece");
    }
    *piece = nullptr;
    *size = 0;
    if (!in_range(model, id)) return fail_with(error, out_of_range(model, id));
    return string_out(model->processor.IdToPiece(id), piece, size, error);
  });
}

int32_t lorahub_spm_piece_to_id(const LorahubSpm* model, const char* piece, size_t size) {
  try {
    if (model == nullptr) return -1;
    return model->processor.PieceToId(absl::string_view(piece == nullptr ? "" : piece, size));
  } catch (...) {
    return -1;
  }
}

int32_t lorahub_spm_piece_count(const LorahubSpm* model) {
  return model == nullptr ? 0 : model->processor.GetPieceSize();
}

int32_t lorahub_spm_unk_id(const LorahubSpm* model) {
  return model == nullptr ? -1 : model->processor.unk_id();
}
int32_t lorahub_spm_pad_id(const LorahubSpm* model) {
  return model == nullptr ? -1 : model->processor.pad_id();
}
int32_t lorahub_spm_eos_id(const LorahubSpm* model) {
  return model == nullptr ? -1 : model->processor.eos_id();
}
int32_t lorahub_spm_bos_id(const LorahubSpm* model) {
  return model == nullptr ? -1 : model->processor.bos_id();
}

int lorahub_spm_is_control(const LorahubSpm* model, int32_t id) {
  if (model == nullptr || !in_range(model, id)) return -1;
  return model->processor.IsControl(id) ? 1 : 0;
}

int lorahub_spm_is_unknown(const LorahubSpm* model, int32_t id) {
  if (model == nullptr || !in_range(model, id)) return -1;
  return model->processor.IsUnknown(id) ? 1 : 0;
}

}  // extern "C"
