#include "lorahub/core/hf_cache.h"

#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "lorahub/core/error.h"

namespace lorahub::core {
namespace fs = std::filesystem;

namespace {

bool is_word_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

// One part of a repo id (namespace or name), as huggingface_hub's validator's regex reads it.
bool valid_id_part(const std::string& s, std::size_t max_length) {
  if (s.empty() || s.size() > max_length) return false;
  for (char c : s) {
    if (!is_word_char(c) && c != '-' && c != '.') return false;
  }
  return is_word_char(s.front()) && is_word_char(s.back());
}

bool valid_revision(const std::string& r) {
  if (r.empty() || r.front() == '/' || r.back() == '/') return false;
  if (r.find("..") != std::string::npos || r.find("//") != std::string::npos) return false;
  for (char c : r) {
    if (std::isspace(static_cast<unsigned char>(c)) || std::iscntrl(static_cast<unsigned char>(c)) || c == '\\') {
      return false;
    }
  }
  return true;
}

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? std::string(v) : std::string();
}

std::string home_dir() {
  std::string home = env("HOME");
  if (!home.empty()) return home;
  if (const passwd* pw = ::getpwuid(::getuid()); pw != nullptr && pw->pw_dir != nullptr) return pw->pw_dir;
  fail("cannot find the home folder for the Hugging Face cache (HOME is unset); set HF_HUB_CACHE or HF_HOME");
}

// os.path.expanduser: "~" and "~/..." use HOME, "~user/..." that user's home; anything else is unchanged.
std::string expand_user(const std::string& p) {
  if (p.empty() || p.front() != '~') return p;
  auto slash = p.find('/');
  std::string user = p.substr(1, slash == std::string::npos ? std::string::npos : slash - 1);
  std::string rest = slash == std::string::npos ? "" : p.substr(slash);
  if (user.empty()) return home_dir() + rest;
  if (const passwd* pw = ::getpwnam(user.c_str()); pw != nullptr && pw->pw_dir != nullptr) return pw->pw_dir + rest;
  return p;
}

// os.path.expandvars: $NAME and ${NAME} of set variables are replaced; unset ones stay as written.
std::string expand_vars(const std::string& p) {
  std::string out;
  std::size_t i = 0;
  while (i < p.size()) {
    if (p[i] != '$') {
      out += p[i++];
      continue;
    }
    std::string name;
    std::size_t next = i + 1;
    if (next < p.size() && p[next] == '{') {
      auto close = p.find('}', next);
      if (close != std::string::npos) {
        name = p.substr(next + 1, close - next - 1);
        next = close + 1;
      }
    } else {
      while (next < p.size() && is_word_char(p[next])) ++next;
      name = p.substr(i + 1, next - i - 1);
    }
    const char* value = name.empty() ? nullptr : std::getenv(name.c_str());
    if (value == nullptr) {
      out += '$';
      ++i;
    } else {
      out += value;
      i = next;
    }
  }
  return out;
}

std::string trim(std::string s) {
  s.erase(0, s.find_first_not_of(" \t\r\n"));
  s.erase(s.find_last_not_of(" \t\r\n") + 1);
  return s;
}

std::string effective_revision(const HubId& id) { return id.revision.empty() ? "main" : id.revision; }

std::string command_hint(const HubId& id) { return cat("download it with `", hub_download_command(id), "`"); }

// Every name under refs/ (branches, tags, refs/pr/N), for the "revision not found" message.
std::string list_refs(const fs::path& repo) {
  std::vector<std::string> names;
  std::error_code ec;
  if (fs::is_directory(repo / "refs", ec)) {
    for (auto it = fs::recursive_directory_iterator(repo / "refs", ec); !ec && it != fs::recursive_directory_iterator();
         it.increment(ec)) {
      if (it->is_regular_file(ec)) names.push_back(fs::relative(it->path(), repo / "refs", ec).generic_string());
    }
  }
  std::sort(names.begin(), names.end());
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out.empty() ? "none" : out;
}

std::size_t count_snapshots(const fs::path& repo) {
  std::size_t n = 0;
  std::error_code ec;
  if (!fs::is_directory(repo / "snapshots", ec)) return 0;
  for (auto it = fs::directory_iterator(repo / "snapshots", ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
    if (it->is_directory(ec)) ++n;
  }
  return n;
}

bool is_broken_link(const fs::path& p) {
  std::error_code ec;
  return fs::is_symlink(fs::symlink_status(p, ec)) && !fs::exists(p, ec);
}

// The hub client writes a blob under a temporary name and links it only when complete, so a broken link
// means the blob was removed or never copied along with the snapshot.
void check_snapshot_links(const fs::path& snapshot, const HubId& id, const std::string& what) {
  std::vector<std::string> broken;
  std::string first_target;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(snapshot, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (!is_broken_link(it->path())) continue;
    if (broken.empty()) first_target = fs::read_symlink(it->path(), ec).string();
    broken.push_back(fs::relative(it->path(), snapshot, ec).generic_string());
  }
  if (ec) fail(what, ": cannot read the snapshot ", snapshot.string(), " of ", to_string(id), ": ", ec.message());
  if (broken.empty()) return;
  std::sort(broken.begin(), broken.end());
  fail(what, ": ", to_string(id), " is incompletely downloaded in the Hugging Face cache: ", broken.front(), " in ",
       snapshot.string(), " links to the missing blob ", first_target,
       broken.size() > 1 ? cat(" (", broken.size(), " broken links)") : std::string(), "; ", command_hint(id));
}

}  // namespace

std::optional<HubId> parse_hub_id(const std::string& text) {
  HubId id;
  auto at = text.find('@');
  id.repo_id = text.substr(0, at);
  if (at != std::string::npos) {
    id.revision = text.substr(at + 1);
    if (!valid_revision(id.revision)) return std::nullopt;
  }
  const std::string& r = id.repo_id;
  if (r.find("--") != std::string::npos || r.find("..") != std::string::npos) return std::nullopt;
  if (r.size() >= 4 && r.compare(r.size() - 4, 4, ".git") == 0) return std::nullopt;
  auto slash = r.find('/');
  if (slash == std::string::npos) {
    if (!valid_id_part(r, 96)) return std::nullopt;
  } else {
    if (r.find('/', slash + 1) != std::string::npos) return std::nullopt;
    if (!valid_id_part(r.substr(0, slash), std::string::npos) || !valid_id_part(r.substr(slash + 1), 96)) {
      return std::nullopt;
    }
  }
  return id;
}

std::string to_string(const HubId& id) { return id.revision.empty() ? id.repo_id : id.repo_id + "@" + id.revision; }

std::string hf_hub_cache_dir() {
  std::string dir = env("HF_HUB_CACHE");
  if (dir.empty()) dir = env("HUGGINGFACE_HUB_CACHE");
  if (dir.empty()) {
    std::string home = env("HF_HOME");
    if (home.empty()) {
      std::string xdg = env("XDG_CACHE_HOME");
      home = (fs::path(xdg.empty() ? home_dir() + "/.cache" : xdg) / "huggingface").string();
    }
    dir = (fs::path(home) / "hub").string();
  }
  return expand_vars(expand_user(dir));
}

std::string hub_repo_cache_dir(const std::string& cache_dir, const std::string& repo_id) {
  std::string folder = "models--";
  for (char c : repo_id) folder += c == '/' ? std::string("--") : std::string(1, c);
  return (fs::path(cache_dir) / folder).string();
}

std::string hub_download_command(const HubId& id) {
  std::string cmd = "huggingface-cli download " + id.repo_id;
  if (!id.revision.empty()) cmd += " --revision " + id.revision;
  return cmd;
}

ResolvedSource resolve_source(const std::string& text, const std::string& what, const std::string& base_dir) {
  std::error_code ec;
  if (!text.empty()) {
    fs::path p(text);
    if (!base_dir.empty() && p.is_relative()) p = fs::path(base_dir) / p;
    if (fs::exists(p, ec)) return ResolvedSource{p.string(), std::nullopt, "", ""};
  }
  auto id = parse_hub_id(text);
  const std::string where = base_dir.empty() ? std::string() : cat(" (relative to ", base_dir, ")");
  if (!id) fail(what, ": '", text, "' does not exist", where, " and is not a Hugging Face id (org/name[@revision])");

  ResolvedSource out;
  out.hub = id;
  out.cache_dir = hf_hub_cache_dir();
  const fs::path repo = hub_repo_cache_dir(out.cache_dir, id->repo_id);
  if (!fs::is_directory(repo, ec)) {
    fail(what, ": '", text, "' is not an existing path", where, " and ", id->repo_id,
         " is not in the Hugging Face cache ", out.cache_dir,
         fs::is_directory(out.cache_dir, ec) ? cat(" (no ", repo.filename().string(), ")") : " (no such folder)",
         "; ", command_hint(*id));
  }
  const std::string revision = effective_revision(*id);
  const fs::path ref = repo / "refs" / revision;
  if (fs::is_regular_file(ref, ec)) {
    std::ifstream in(ref);
    std::stringstream ss;
    ss << in.rdbuf();
    out.snapshot_hash = trim(ss.str());
    if (out.snapshot_hash.empty() || out.snapshot_hash.find('/') != std::string::npos ||
        out.snapshot_hash.find("..") != std::string::npos) {
      fail(what, ": ", to_string(*id), ": ", ref.string(), " does not hold a commit hash; ", command_hint(*id));
    }
    if (!fs::is_directory(repo / "snapshots" / out.snapshot_hash, ec)) {
      fail(what, ": ", to_string(*id), ": refs/", revision, " in ", repo.string(), " points at commit ",
           out.snapshot_hash, " but snapshots/", out.snapshot_hash, " is missing (the cache was partly deleted); ",
           command_hint(*id));
    }
  } else if (revision.find('/') == std::string::npos && fs::is_directory(repo / "snapshots" / revision, ec)) {
    out.snapshot_hash = revision;  // a commit hash: the hub client writes no ref for those
  } else {
    fail(what, ": revision '", revision, "' of ", id->repo_id, " is not in the Hugging Face cache ", repo.string(),
         " (refs: ", list_refs(repo), "; ", count_snapshots(repo), " snapshots); ", command_hint(*id));
  }
  const fs::path snapshot = repo / "snapshots" / out.snapshot_hash;
  check_snapshot_links(snapshot, *id, what);
  out.path = snapshot.string();
  return out;
}

std::optional<HubId> hub_id_of_snapshot_path(const std::string& path) {
  std::vector<std::string> parts;
  for (const auto& part : fs::path(path).lexically_normal()) {
    if (!part.empty()) parts.push_back(part.string());
  }
  for (std::size_t i = 0; i + 2 < parts.size(); ++i) {
    const std::string& repo = parts[i];
    if (repo.rfind("models--", 0) != 0 || parts[i + 1] != "snapshots") continue;
    // Repo ids cannot contain "--", so the separators are unambiguous.
    std::string id = repo.substr(8);
    auto sep = id.find("--");
    if (sep != std::string::npos) id = id.substr(0, sep) + "/" + id.substr(sep + 2);
    auto parsed = parse_hub_id(id + "@" + parts[i + 2]);
    if (parsed && parsed->repo_id == id) return parsed;
  }
  return std::nullopt;
}

std::string describe_source(const ResolvedSource& source) {
  if (!source.hub) return source.path;
  return cat(source.hub->repo_id, "@", effective_revision(*source.hub), " -> ", source.path);
}

ModelFiles check_model_folder(const ResolvedSource& source, const std::string& what) {
  const fs::path dir(source.path);
  std::error_code ec;
  const std::string label = source.hub ? cat(to_string(*source.hub), " (", dir.string(), ")") : dir.string();
  const std::string hint =
      source.hub ? cat("; the download is incomplete: ", command_hint(*source.hub)) : std::string();
  if (!fs::is_directory(dir, ec)) fail(what, ": ", label, " is not a model folder (expected config.json and weights)");
  // Present in any form, a broken link included: such a file is chosen, and then must be readable.
  auto present = [&](const fs::path& p) { return fs::symlink_status(p, ec).type() != fs::file_type::not_found; };
  auto require = [&](const fs::path& p) {
    if (is_broken_link(p)) {
      fail(what, ": ", label, ": ", p.filename().string(), " links to the missing blob ",
           fs::read_symlink(p, ec).string(), hint);
    }
    if (!fs::is_regular_file(p, ec)) fail(what, ": ", label, ": ", p.filename().string(), " is missing", hint);
    return p.string();
  };
  ModelFiles files;
  files.config = require(dir / "config.json");
  for (const char* stem : {"model.safetensors", "pytorch_model.bin"}) {
    if (present(dir / stem)) {
      files.weights = {require(dir / stem)};
      break;
    }
    const fs::path index = dir / (std::string(stem) + ".index.json");
    if (!present(index)) continue;
    files.index = require(index);
    nlohmann::json j;
    try {
      std::ifstream in(index);
      in >> j;
    } catch (const nlohmann::json::exception& e) {
      fail(what, ": ", label, ": ", index.filename().string(), " is not valid JSON: ", e.what(), hint);
    }
    if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object() || j["weight_map"].empty()) {
      fail(what, ": ", label, ": ", index.filename().string(), " has no weight_map");
    }
    std::set<std::string> shards;
    for (const auto& [key, shard] : j["weight_map"].items()) {
      if (!shard.is_string()) fail(what, ": ", label, ": ", index.filename().string(), ": weight_map[\"", key, "\"] is not a file name");
      shards.insert(shard.get<std::string>());
    }
    for (const auto& s : shards) files.weights.push_back(require(dir / s));
    break;
  }
  if (files.weights.empty()) {
    fail(what, ": ", label, ": no model.safetensors, model.safetensors.index.json, pytorch_model.bin or ",
         "pytorch_model.bin.index.json", hint);
  }
  if (present(dir / "spiece.model")) files.tokenizer = require(dir / "spiece.model");
  return files;
}

}  // namespace lorahub::core
