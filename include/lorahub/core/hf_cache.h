#pragma once
// Offline resolution of Hugging Face hub ids ("google/flan-t5-large@main") to folders of the local hub
// cache that huggingface_hub (`huggingface-cli download`, `snapshot_download`, transformers) fills.
// Nothing here touches the network: what is not in the cache is an error that says how to download it.
//
// Cache layout (huggingface_hub's, for model repositories):
//   <cache>/models--<org>--<name>/refs/<revision>        text file: the commit hash the revision points at
//   <cache>/models--<org>--<name>/snapshots/<commit>/... the repository's files at that commit, normally
//                                                         relative symlinks to ../../blobs/<content hash>
//   <cache>/models--<org>--<name>/blobs/<content hash>    the file contents
#include <optional>
#include <string>
#include <vector>

namespace lorahub::core {

/// A Hugging Face model repository reference.
struct HubId {
  std::string repo_id;   ///< "org/name" or "name"
  std::string revision;  ///< branch, tag or commit hash; empty when none was given (means "main")
};

/// Parses "org/name", "name", "org/name@revision" by huggingface_hub's repo-id rules: ASCII letters, digits,
/// '-', '_', '.'; at most one '/'; each part starts and ends with a letter, digit or '_'; the name is at most
/// 96 characters; no "--" or ".."; no ".git" ending. The revision (after the first '@') must be non-empty and
/// free of "..", whitespace and leading or trailing '/'. Returns nullopt when the text does not have that shape
/// (it is then only ever a path). Never looks at the filesystem.
std::optional<HubId> parse_hub_id(const std::string& text);

/// "org/name" or "org/name@revision", the canonical spelling of `id`.
std::string to_string(const HubId& id);

/// The hub cache folder, with huggingface_hub's precedence: $HF_HUB_CACHE, else $HUGGINGFACE_HUB_CACHE (legacy),
/// else $HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub; '~' and $VAR / ${VAR}
/// in the value are expanded as huggingface_hub does. Unlike Python, a variable set to the empty string counts
/// as unset (it never means "the current folder"). Throws when no home folder can be found for the default.
std::string hf_hub_cache_dir();

/// The cache folder of one repository: <cache>/models--<org>--<name>.
std::string hub_repo_cache_dir(const std::string& cache_dir, const std::string& repo_id);

/// What a path-or-id text resolved to.
struct ResolvedSource {
  std::string path;                ///< an existing file or folder (for a hub id: the snapshot folder)
  std::optional<HubId> hub;        ///< set when the text was resolved through the hub cache
  std::string snapshot_hash;       ///< the commit of the snapshot (hub ids only)
  std::string cache_dir;           ///< the cache folder searched (hub ids only)
};

/// Resolves `text` (a filesystem path, or a hub id with an optional @revision) without network access. An
/// existing path always wins (relative paths are taken against `base_dir` when it is non-empty, else the
/// current folder); otherwise an id-shaped text is looked up in hf_hub_cache_dir(): refs/<revision> (default
/// "main") names the commit whose snapshots/<commit>/ is returned, or a revision naming a snapshot folder
/// itself (a commit hash) is used directly. The snapshot must hold no broken symlink. Throws one line that
/// names `what` (the config key, flag or list-file line being resolved), the id, the cache folder and the
/// `huggingface-cli download` command, distinguishing: not a path and not an id; id not in the cache;
/// revision not in refs; a ref pointing at a missing snapshot; a broken link (incomplete download).
ResolvedSource resolve_source(const std::string& text, const std::string& what, const std::string& base_dir = "");

/// The hub id of a snapshot folder path (<cache>/models--<org>--<name>/snapshots/<commit>[/<sub>...]), with
/// the commit as revision: how a resolved path is named again where a portable name is wanted (an exported
/// adapter's base_model_name_or_path). Looks only at the path's text; nullopt when it is no snapshot path.
std::optional<HubId> hub_id_of_snapshot_path(const std::string& path);

/// One line for `lorahub inspect` and logs: "google/flan-t5-large@main -> <snapshot folder>" for a hub id,
/// the path itself otherwise.
std::string describe_source(const ResolvedSource& source);

/// The command that downloads `id` into the cache: "huggingface-cli download org/name [--revision R]".
std::string hub_download_command(const HubId& id);

/// The files of a Hugging Face T5 model folder, as found.
struct ModelFiles {
  std::string config;                ///< config.json
  std::vector<std::string> weights;  ///< model.safetensors, the shards of an index, or pytorch_model.bin
  std::string index;                 ///< the *.index.json of sharded weights, empty otherwise
  std::string tokenizer;             ///< spiece.model, empty when the folder has none
};

/// Checks that a model folder (typically a resolved hub snapshot) holds config.json and a complete set of
/// weights (model.safetensors; model.safetensors.index.json and every shard it names; pytorch_model.bin or
/// its index and shards), each a readable file and not a broken symlink. Throws naming `what`, the folder,
/// the missing or broken file and, for a hub snapshot, that the download is incomplete and its command.
ModelFiles check_model_folder(const ResolvedSource& source, const std::string& what);

}  // namespace lorahub::core
