#include "lorahub/lora/library.h"

#include <algorithm>

#include "lorahub/core/error.h"
#include "lorahub/model/t5.h"

namespace lorahub::lora {
using core::fail;

ModuleStack ModuleStack::select(const std::vector<std::size_t>& indices) const {
  ModuleStack out;
  out.targets = targets;
  out.r = r;
  out.scaling = scaling;
  out.config = config;
  std::vector<std::int64_t> idx;
  for (auto i : indices) {
    if (i >= names.size()) fail("module index ", i, " out of range (library has ", names.size(), " modules)");
    out.names.push_back(names[i]);
    idx.push_back(static_cast<std::int64_t>(i));
  }
  auto index = torch::tensor(idx, torch::kLong);
  for (std::size_t t = 0; t < targets.size(); ++t) {
    out.a.push_back(a[t].index_select(0, index.to(a[t].device())));
    out.b.push_back(b[t].index_select(0, index.to(b[t].device())));
  }
  return out;
}

ModuleStack ModuleStack::to(torch::Device device, torch::ScalarType dtype) const {
  ModuleStack out = *this;
  for (auto& t : out.a) t = t.to(device, dtype);
  for (auto& t : out.b) t = t.to(device, dtype);
  return out;
}

LoraLibrary LoraLibrary::from_adapters(std::vector<LoraAdapter> adapters, const std::string& source) {
  if (adapters.empty()) fail(source, ": the LoRA library is empty");
  LoraLibrary lib;
  lib.source_ = source;
  const auto& first = adapters.front();
  auto& st = lib.stack_;
  st.config = first.config;
  st.r = first.config.r;
  st.scaling = first.config.scaling();
  for (const auto& [module, ab] : first.modules) st.targets.push_back(module);
  std::vector<std::vector<torch::Tensor>> a(st.targets.size()), b(st.targets.size());
  for (const auto& ad : adapters) {
    if (std::find(st.names.begin(), st.names.end(), ad.name) != st.names.end()) {
      fail(source, ": two modules are named '", ad.name, "'");
    }
    if (ad.config.r != st.r || ad.config.scaling() != st.scaling) {
      fail(source, ": module '", ad.name, "' has r=", ad.config.r, ", scaling ", ad.config.scaling(), " but module '",
           first.name, "' has r=", st.r, ", scaling ", st.scaling, " (a library must share rank and alpha)");
    }
    if (ad.modules.size() != st.targets.size()) {
      fail(source, ": module '", ad.name, "' adapts ", ad.modules.size(), " projections but module '", first.name,
           "' adapts ", st.targets.size(), " (a library must share target modules)");
    }
    for (std::size_t t = 0; t < st.targets.size(); ++t) {
      auto it = ad.modules.find(st.targets[t]);
      if (it == ad.modules.end()) {
        fail(source, ": module '", ad.name, "' has no weights for '", st.targets[t], "' which '", first.name, "' adapts");
      }
      const auto& ref = first.modules.at(st.targets[t]);
      if (it->second.first.sizes() != ref.first.sizes() || it->second.second.sizes() != ref.second.sizes()) {
        fail(source, ": module '", ad.name, "' target '", st.targets[t], "' has A ", it->second.first.sizes(), " B ",
             it->second.second.sizes(), ", expected A ", ref.first.sizes(), " B ", ref.second.sizes());
      }
      a[t].push_back(it->second.first);
      b[t].push_back(it->second.second);
    }
    st.names.push_back(ad.name);
  }
  for (std::size_t t = 0; t < st.targets.size(); ++t) {
    st.a.push_back(torch::stack(a[t]));
    st.b.push_back(torch::stack(b[t]));
  }
  return lib;
}

LoraLibrary LoraLibrary::load(const std::vector<std::string>& folders, const std::string& source,
                              const model::T5ModelImpl* model, const std::vector<std::string>& names) {
  if (folders.empty()) fail(source, ": a LoRA library needs at least one adapter folder");
  if (!names.empty() && names.size() != folders.size()) {
    fail(source, ": ", names.size(), " module names for ", folders.size(), " adapter folders");
  }
  std::vector<LoraAdapter> adapters;
  for (std::size_t i = 0; i < folders.size(); ++i) {
    adapters.push_back(load_adapter(folders[i], model));
    if (!names.empty()) adapters.back().name = names[i];
  }
  return from_adapters(std::move(adapters), source);
}

std::size_t LoraLibrary::index_of(const std::string& name) const {
  const auto& names = stack_.names;
  auto it = std::find(names.begin(), names.end(), name);
  if (it == names.end()) {
    std::string some;
    for (std::size_t i = 0; i < names.size() && i < 5; ++i) some += (i ? ", " : "") + names[i];
    fail(source_, ": no module named '", name, "' in the library (", names.size(), " modules: ", some,
         names.size() > 5 ? ", ...)" : ")");
  }
  return static_cast<std::size_t>(it - names.begin());
}

ModuleStack LoraLibrary::select(const std::vector<std::string>& names) const {
  std::vector<std::size_t> idx;
  for (const auto& n : names) idx.push_back(index_of(n));
  return stack_.select(idx);
}

namespace {
std::vector<std::int64_t> module_index(const ModuleStack& stack, std::size_t n, const std::vector<std::size_t>& modules) {
  std::vector<std::int64_t> idx(n);
  for (std::size_t i = 0; i < n; ++i) {
    auto m = modules.empty() ? i : modules.at(i);
    if (m >= stack.names.size()) fail("module index ", m, " out of range (stack has ", stack.names.size(), " modules)");
    idx[i] = static_cast<std::int64_t>(m);
  }
  return idx;
}
}  // namespace

Composition compose(const ModuleStack& stack, const std::vector<double>& weights,
                    const std::vector<std::size_t>& modules) {
  const auto expected = modules.empty() ? static_cast<std::size_t>(stack.size()) : modules.size();
  if (weights.size() != expected || weights.empty()) {
    fail("compose: ", weights.size(), " weights for ", expected, " modules");
  }
  auto idx = module_index(stack, weights.size(), modules);
  Composition c;
  c.targets = stack.targets;
  c.scaling = stack.scaling;
  // The reference's order: acc = w0·X0, then acc = acc + wi·Xi, each term in float32 with a double scalar.
  auto accumulate = [&](const torch::Tensor& stacked) {
    auto acc = stacked[idx[0]] * weights[0];
    for (std::size_t i = 1; i < weights.size(); ++i) acc = acc + stacked[idx[i]] * weights[i];
    return acc;
  };
  for (std::size_t t = 0; t < stack.targets.size(); ++t) {
    c.a.push_back(accumulate(stack.a[t]));
    c.b.push_back(accumulate(stack.b[t]));
  }
  return c;
}

void apply_unmerged(model::T5ModelImpl& model, const ModuleStack& stack,
                    const std::vector<std::vector<double>>& weights, std::int64_t rows_per_candidate,
                    const std::vector<std::size_t>& modules) {
  const auto k = static_cast<std::int64_t>(weights.size());
  if (k == 0) fail("apply_unmerged: no weight vectors");
  const auto dtype = model.weight_dtype();
  if (k == 1) {
    auto c = compose(stack, weights[0], modules);
    for (std::size_t t = 0; t < c.targets.size(); ++t) {
      model::LowRankAddition add;
      add.a = c.a[t].unsqueeze(0).to(dtype);
      add.b = c.b[t].unsqueeze(0).to(dtype);
      add.scale = c.scaling;
      if (rows_per_candidate > 0) add.segment_rows = {rows_per_candidate};
      model.projection(c.targets[t])->set_low_rank(std::move(add));
    }
    return;
  }
  if (rows_per_candidate <= 0) fail("apply_unmerged: ", k, " candidates need rows_per_candidate > 0");
  const auto n = weights.front().size();
  auto idx = module_index(stack, n, modules);
  std::vector<float> flat;
  flat.reserve(static_cast<std::size_t>(k) * n);
  for (const auto& w : weights) {
    if (w.size() != n) fail("apply_unmerged: a weight vector has ", w.size(), " entries for ", n, " modules");
    for (double x : w) flat.push_back(static_cast<float>(x));
  }
  auto device = stack.a.front().device();
  auto wmat = torch::from_blob(flat.data(), {k, static_cast<std::int64_t>(n)}, torch::kFloat32).to(device);
  auto index = torch::tensor(idx, torch::kLong).to(device);
  const bool all = modules.empty() && static_cast<std::int64_t>(n) == stack.size();
  for (std::size_t t = 0; t < stack.targets.size(); ++t) {
    // The selected factors exist only while this target is composed.
    auto a = all ? stack.a[t] : stack.a[t].index_select(0, index);  // [N, r, in]
    auto b = all ? stack.b[t] : stack.b[t].index_select(0, index);  // [N, out, r]
    model::LowRankAddition add;
    add.a = wmat.matmul(a.reshape({static_cast<std::int64_t>(n), -1})).view({k, a.size(1), a.size(2)}).to(dtype);
    add.b = wmat.matmul(b.reshape({static_cast<std::int64_t>(n), -1})).view({k, b.size(1), b.size(2)}).to(dtype);
    add.scale = stack.scaling;
    add.segment_rows.assign(static_cast<std::size_t>(k), rows_per_candidate);
    model.projection(stack.targets[t])->set_low_rank(std::move(add));
  }
}

void apply_unmerged_differentiable(model::T5ModelImpl& model, const ModuleStack& stack, const torch::Tensor& weights,
                                   const std::vector<std::size_t>& modules) {
  const auto n = static_cast<std::int64_t>(weights.numel());
  if (weights.dim() != 1 || n == 0) fail("apply_unmerged_differentiable: weights must be [N], got ", weights.sizes());
  auto idx = module_index(stack, static_cast<std::size_t>(n), modules);
  const auto dtype = model.weight_dtype();
  const auto index = torch::tensor(idx, torch::kLong).to(stack.a.front().device());
  const bool all = modules.empty() && n == stack.size();
  const auto w = weights.view({1, n});
  // One GEMM per factor: Â = w · A (as apply_unmerged composes k candidates); autograd keeps two nodes per target.
  for (std::size_t t = 0; t < stack.targets.size(); ++t) {
    auto a = all ? stack.a[t] : stack.a[t].index_select(0, index);  // [N, r, in]
    auto b = all ? stack.b[t] : stack.b[t].index_select(0, index);  // [N, out, r]
    model::LowRankAddition add;
    add.a = w.matmul(a.reshape({n, -1})).view({1, a.size(1), a.size(2)}).to(dtype);
    add.b = w.matmul(b.reshape({n, -1})).view({1, b.size(1), b.size(2)}).to(dtype);
    add.scale = stack.scaling;
    model.projection(stack.targets[t])->set_low_rank(std::move(add));
  }
}

void merge(model::T5ModelImpl& model, const Composition& composition) {
  torch::NoGradGuard no_grad;
  for (std::size_t t = 0; t < composition.targets.size(); ++t) {
    auto proj = model.projection(composition.targets[t]);
    // PEFT's merge: W += (B @ A) * scaling, in float32.
    auto delta = torch::matmul(composition.b[t].to(torch::kFloat32), composition.a[t].to(torch::kFloat32)) *
                 composition.scaling;
    proj->merge(delta);
  }
}

ScopedAdapters::~ScopedAdapters() {
  model_.clear_low_rank();
  model_.restore_merged();
}

}  // namespace lorahub::lora
