#pragma once
// C interface of liblorahub_spm_shim.so, the only code that links Debian's libsentencepiece.
// That library carries its own copy of protobuf, which clashes with the one libtorch loads, so
// lorahub_text opens the shim with dlopen(RTLD_LOCAL | RTLD_DEEPBIND) instead of linking it.
// Nothing but C types crosses this boundary: no C++ exceptions, no std:: objects. Every buffer
// the shim returns is released with lorahub_spm_free_buffer; every error is a message string.
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LORAHUB_SPM_SHIM_ABI 1

typedef struct LorahubSpm LorahubSpm;

#if defined(LORAHUB_SPM_SHIM_BUILD)
#define LORAHUB_SPM_API __attribute__((visibility("default")))
#else
#define LORAHUB_SPM_API
#endif

/// The ABI this shim implements (LORAHUB_SPM_SHIM_ABI); the loader refuses any other.
LORAHUB_SPM_API int lorahub_spm_abi_version(void);

/// Loads a model file. Returns NULL on failure with *error set (free with lorahub_spm_free_buffer).
LORAHUB_SPM_API LorahubSpm* lorahub_spm_load_file(const char* path, char** error);
/// Loads a model from its serialized ModelProto bytes. Same error contract as load_file.
LORAHUB_SPM_API LorahubSpm* lorahub_spm_load_bytes(const char* data, size_t size, char** error);
/// Releases a model (NULL is ignored).
LORAHUB_SPM_API void lorahub_spm_free(LorahubSpm* model);
/// Releases a buffer (ids, text, piece or error) the shim returned (NULL is ignored).
LORAHUB_SPM_API void lorahub_spm_free_buffer(void* buffer);

/// Encodes UTF-8 text[0, size) to ids. Returns 0 and sets *ids (NULL when *count is 0) and
/// *count, or returns non-zero with *error set.
LORAHUB_SPM_API int lorahub_spm_encode(const LorahubSpm* model, const char* text, size_t size,
                                       int32_t** ids, size_t* count, char** error);
/// Decodes ids[0, count) to UTF-8 text. Every id must be in [0, piece_count). Returns 0 and sets
/// *text (NUL-terminated) and *size, or returns non-zero with *error set.
LORAHUB_SPM_API int lorahub_spm_decode(const LorahubSpm* model, const int32_t* ids, size_t count,
                                       char** text, size_t* size, char** error);
/// The piece of id (in [0, piece_count)). Same return contract as decode.
LORAHUB_SPM_API int lorahub_spm_id_to_piece(const LorahubSpm* model, int32_t id, char** piece,
                                            size_t* size, char** error);
/// The id of piece[0, size), or the unknown id when the model has no such piece.
LORAHUB_SPM_API int32_t lorahub_spm_piece_to_id(const LorahubSpm* model, const char* piece,
                                                size_t size);
/// Number of pieces in the model.
LORAHUB_SPM_API int32_t lorahub_spm_piece_count(const LorahubSpm* model);
/// Special ids as the model's trainer spec sets them (-1 when disabled).
LORAHUB_SPM_API int32_t lorahub_spm_unk_id(const LorahubSpm* model);
LORAHUB_SPM_API int32_t lorahub_spm_pad_id(const LorahubSpm* model);
LORAHUB_SPM_API int32_t lorahub_spm_eos_id(const LorahubSpm* model);
LORAHUB_SPM_API int32_t lorahub_spm_bos_id(const LorahubSpm* model);
/// 1 when id is a control (resp. the unknown) piece, 0 when not, -1 when id is out of range.
LORAHUB_SPM_API int lorahub_spm_is_control(const LorahubSpm* model, int32_t id);
LORAHUB_SPM_API int lorahub_spm_is_unknown(const LorahubSpm* model, int32_t id);

#ifdef __cplusplus
}  // extern "C"
#endif
