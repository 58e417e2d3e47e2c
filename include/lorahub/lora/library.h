#pragma once
// A library of LoRA modules kept stacked per target, and LoraHub composition into the model.
#include <cstdint>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "lorahub/lora/adapter.h"

namespace lorahub::model {
class T5ModelImpl;
}

namespace lorahub::lora {

/// N modules stacked per target so that composing them is one batched operation.
struct ModuleStack {
  std::vector<std::string> names;        ///< module names, in stacking order
  std::vector<std::string> targets;      ///< target module names (sorted)
  std::vector<torch::Tensor> a;          ///< per target: [N, r, in]
  std::vector<torch::Tensor> b;          ///< per target: [N, out, r]
  std::int64_t r = 0;
  double scaling = 1.0;
  AdapterConfig config;                  ///< of the first module (all share r, alpha, targets)

  std::int64_t size() const { return static_cast<std::int64_t>(names.size()); }
  /// The stack of the modules at these indices (in that order).
  ModuleStack select(const std::vector<std::size_t>& indices) const;
  /// Moves/converts the factors (e.g. to the model's device and dtype).
  ModuleStack to(torch::Device device, torch::ScalarType dtype) const;
};

/// The LoRA modules of a library, loaded once per process and stacked.
class LoraLibrary {
 public:
  /// Loads the adapter folders in order (a job lists them with job::library_modules); `source` names the library
  /// in messages; `names` (one per folder, or empty: the folder names) names the modules. Every module must share
  /// rank, alpha, target modules and shapes; a mismatch is an Error naming the module. When `model` is given, all
  /// are validated against it.
  static LoraLibrary load(const std::vector<std::string>& folders, const std::string& source,
                          const model::T5ModelImpl* model = nullptr, const std::vector<std::string>& names = {});
  /// Builds a library from adapters already in memory (same checks).
  static LoraLibrary from_adapters(std::vector<LoraAdapter> adapters, const std::string& source);

  const std::vector<std::string>& names() const { return stack_.names; }
  std::size_t size() const { return stack_.names.size(); }
  const ModuleStack& stack() const { return stack_; }
  const std::string& source() const { return source_; }
  /// Index of a module by name; Error listing a few names when absent.
  std::size_t index_of(const std::string& name) const;
  /// The stacked factors of the named modules, in the given order.
  ModuleStack select(const std::vector<std::string>& names) const;

 private:
  std::string source_;
  ModuleStack stack_;
};

/// LoraHub composition: Â = Σ wᵢAᵢ and B̂ = Σ wᵢBᵢ per target (weighted separately, the reference's rule),
/// accumulated in the reference's order so the result equals PEFT's state-dict arithmetic. w: [N].
/// `modules` maps coefficient i to a module index of the stack (empty: module i).
struct Composition {
  std::vector<std::string> targets;
  std::vector<torch::Tensor> a;  ///< per target [r, in]
  std::vector<torch::Tensor> b;  ///< per target [out, r]
  double scaling = 1.0;
};
Composition compose(const ModuleStack& stack, const std::vector<double>& weights,
                    const std::vector<std::size_t>& modules = {});

/// Sets unmerged low-rank additions for k weight vectors at once (weights: [k][N]); the batch holds k
/// contiguous segments of `rows_per_candidate` rows each. k = 1 with rows_per_candidate = 0 covers the batch.
/// `modules` as for compose(). k = 1 uses compose()'s exact order; k > 1 one GEMM per target.
void apply_unmerged(model::T5ModelImpl& model, const ModuleStack& stack,
                    const std::vector<std::vector<double>>& weights, std::int64_t rows_per_candidate,
                    const std::vector<std::size_t>& modules = {});
/// apply_unmerged for one weight vector given as a tensor (weights: [N] float32 on the factors' device, usually
/// requiring grad), so that a loss can be differentiated with respect to the weights. Composed with one GEMM per
/// factor, as apply_unmerged composes several candidates (compose()'s sequential order would put 2N autograd
/// nodes on every target); the factors equal compose()'s to float32 rounding.
void apply_unmerged_differentiable(model::T5ModelImpl& model, const ModuleStack& stack, const torch::Tensor& weights,
                                   const std::vector<std::size_t>& modules = {});
/// Merges a composition into the target weights (W += scaling · B̂Â); undo with model.restore_merged().
void merge(model::T5ModelImpl& model, const Composition& composition);

/// RAII: clears low-rank additions and restores merged weights when it goes out of scope.
class ScopedAdapters {
 public:
  explicit ScopedAdapters(model::T5ModelImpl& model) : model_(model) {}
  ~ScopedAdapters();
  ScopedAdapters(const ScopedAdapters&) = delete;
  ScopedAdapters& operator=(const ScopedAdapters&) = delete;

 private:
  model::T5ModelImpl& model_;
};

}  // namespace lorahub::lora
