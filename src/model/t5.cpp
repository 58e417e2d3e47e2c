#include "lorahub/model/t5.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>

#include <nlohmann/json.hpp>

#include "lorahub/core/error.h"
#include "lorahub/core/log.h"
#include "lorahub/core/safetensors.h"
#include "lorahub/model/checkpoint.h"
#include "model/t5_checkpoint.h"

namespace lorahub::model {
namespace fs = std::filesystem;
using core::fail;

ComputeDType parse_compute_dtype(const std::string& name) {
  if (name == "f32" || name == "float32" || name == "fp32") return ComputeDType::kF32;
  if (name == "bf16" || name == "bfloat16") return ComputeDType::kBF16;
  fail("unknown compute dtype '", name, "' (expected f32 or bf16)");
}

std::string to_string(ComputeDType dtype) { return dtype == ComputeDType::kBF16 ? "bf16" : "f32"; }

namespace {

torch::Tensor maybe_dropout(const torch::Tensor& x, double p, bool training) {
  return (training && p > 0) ? torch::dropout(x, p, true) : x;
}

double lowest_of(torch::ScalarType t) {
  switch (t) {
    case torch::kBFloat16:
      return static_cast<double>(std::numeric_limits<c10::BFloat16>::lowest());
    case torch::kHalf:
      return static_cast<double>(std::numeric_limits<c10::Half>::lowest());
    case torch::kDouble:
      return std::numeric_limits<double>::lowest();
    default:
      return static_cast<double>(std::numeric_limits<float>::lowest());
  }
}

// HF's extended attention mask: (1 - mask) * finfo(dtype).min, broadcastable over heads and queries.
torch::Tensor additive_mask(const torch::Tensor& mask, torch::ScalarType dtype) {
  auto m = mask.to(dtype);
  return (1.0 - m) * lowest_of(dtype);
}

}  // namespace

// Measured without the fast path: 16.5 s against 0.39-0.45 s per flan-t5-small evaluation on an AVX2-only EPYC.
bool cpu_has_fast_bf16() {
#if defined(__x86_64__) || defined(__i386__)
  return __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
         __builtin_cpu_supports("avx512dq");
#else
  return true;  // aarch64 and others: no reliable check here; libtorch decides
#endif
}

void DecoderState::select_rows(const torch::Tensor& index) {
  for (auto& c : self_cache) {
    if (c.k.defined()) {
      c.k = c.k.index_select(0, index);
      c.v = c.v.index_select(0, index);
    }
  }
  for (auto& t : cross_k) t = t.index_select(0, index);
  for (auto& t : cross_v) t = t.index_select(0, index);
  cross_bias = cross_bias.index_select(0, index);
}

// ---------------------------------------------------------------------------------------------
T5StackImpl::T5StackImpl(const T5Config& config, bool is_decoder)
    : is_decoder_(is_decoder), dropout_(config.dropout_rate) {
  block = register_module("block", torch::nn::ModuleList());
  const auto n = is_decoder ? config.num_decoder_layers : config.num_layers;
  for (std::int64_t i = 0; i < n; ++i) {
    blocks.push_back(T5Block(config, /*has_relative_attention_bias=*/i == 0, is_decoder));
    block->push_back(blocks.back());
  }
  final_layer_norm = register_module("final_layer_norm", RMSNorm(config.d_model, config.layer_norm_epsilon));
}

torch::Tensor T5StackImpl::encode(const torch::Tensor& embeds, const torch::Tensor& attention_mask,
                                  LayerOutputs* trace, bool skip_padding) {
  auto h = maybe_dropout(embeds, dropout_, is_training());
  const auto len = h.size(1);
  auto& attn0 = *blocks.front()->self_attention->SelfAttention;
  // Block 0's table gives the bias that every block of the stack reuses.
  auto bias = attn0.compute_bias(len, len) + additive_mask(attention_mask, h.scalar_type()).unsqueeze(1).unsqueeze(1);
  // The position-wise layers on the real tokens only (15.8 % of a LoraHub few-shot batch is padding). Their
  // rows are the padded path's rows, and padding keys get weight exactly 0 either way, so real positions come
  // out the same; padding positions become zeros (HF leaves values there that nothing reads). A trace and
  // training (dropout draws per position) keep the padded path.
  if (skip_padding && !trace && !is_training() && h.size(0) > 0) {
    const auto flat_mask = attention_mask.reshape({-1});
    Packing packing{flat_mask.nonzero().squeeze(1), h.size(0), len};
    if (packing.index.size(0) < flat_mask.numel()) {
      auto rows = packing.pack(h);
      for (auto& b : blocks) rows = b->forward_encoder_packed(rows, packing, bias);
      return packing.unpack(final_layer_norm(rows));
    }
  }
  for (auto& b : blocks) {
    if (trace) trace->hidden_states.push_back(h);
    h = b->forward_encoder(h, bias, trace);
  }
  h = maybe_dropout(final_layer_norm(h), dropout_, is_training());
  if (trace) trace->hidden_states.push_back(h);
  return h;
}

torch::Tensor T5StackImpl::decode(const torch::Tensor& embeds, const torch::Tensor& encoder_hidden,
                                  const torch::Tensor& encoder_mask, LayerOutputs* trace) {
  auto h = maybe_dropout(embeds, dropout_, is_training());
  const auto len = h.size(1);
  const auto dtype = h.scalar_type();
  auto& attn0 = *blocks.front()->self_attention->SelfAttention;
  auto causal = torch::ones({len, len}, torch::TensorOptions().dtype(torch::kLong).device(h.device())).tril();
  auto self_bias = attn0.compute_bias(len, len) + additive_mask(causal, dtype).unsqueeze(0).unsqueeze(0);
  auto cross_bias = additive_mask(encoder_mask, dtype).unsqueeze(1).unsqueeze(1);
  for (auto& b : blocks) {
    if (trace) trace->hidden_states.push_back(h);
    auto [ck, cv] = b->cross_attention->EncDecAttention->project_kv(encoder_hidden);
    h = b->forward_decoder(h, self_bias, ck, cv, cross_bias, trace);
  }
  h = maybe_dropout(final_layer_norm(h), dropout_, is_training());
  if (trace) trace->hidden_states.push_back(h);
  return h;
}

DecoderState T5StackImpl::start(const torch::Tensor& encoder_hidden, const torch::Tensor& encoder_mask) {
  DecoderState s;
  s.self_cache.resize(blocks.size());
  for (auto& b : blocks) {
    auto [ck, cv] = b->cross_attention->EncDecAttention->project_kv(encoder_hidden);
    s.cross_k.push_back(ck);
    s.cross_v.push_back(cv);
  }
  s.cross_bias = additive_mask(encoder_mask, encoder_hidden.scalar_type()).unsqueeze(1).unsqueeze(1);
  return s;
}

torch::Tensor T5StackImpl::step(const torch::Tensor& embeds, DecoderState& state) {
  auto h = embeds;
  auto& attn0 = *blocks.front()->self_attention->SelfAttention;
  // Query at position p sees keys 0..p: the last row of compute_bias(p+1, p+1), as HF does with a cache.
  auto self_bias = attn0.compute_bias(1, state.position + 1, state.position);
  for (std::size_t i = 0; i < blocks.size(); ++i) {
    h = blocks[i]->step(h, state.self_cache[i], self_bias, state.cross_k[i], state.cross_v[i], state.cross_bias);
  }
  state.position += 1;
  return final_layer_norm(h);
}

// ---------------------------------------------------------------------------------------------
T5ModelImpl::T5ModelImpl(const T5Config& config) : config_(config) {
  shared = register_module(
      "shared", torch::nn::Embedding(torch::nn::EmbeddingOptions(config.vocab_size, config.d_model)
                                         ._weight(torch::empty({config.vocab_size, config.d_model}))));
  encoder = register_module("encoder", T5Stack(config, false));
  decoder = register_module("decoder", T5Stack(config, true));
  if (!config.tie_word_embeddings) {
    lm_head = register_module("lm_head", Projection(config.d_model, config.vocab_size));
  }
  for (const auto& item : named_modules("", /*include_self=*/false)) {
    if (auto p = std::dynamic_pointer_cast<ProjectionImpl>(item.value())) {
      if (item.key() != "lm_head") projections_.emplace(item.key(), Projection(p));
    }
  }
  eval();
}

torch::Tensor T5ModelImpl::encode(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                                  LayerOutputs* trace, bool skip_padding) {
  return encoder->encode(shared(input_ids), attention_mask.to(input_ids.device()), trace, skip_padding);
}

torch::Tensor T5ModelImpl::decode(const torch::Tensor& decoder_input_ids, const torch::Tensor& encoder_hidden,
                                  const torch::Tensor& encoder_mask, LayerOutputs* trace) {
  return decoder->decode(shared(decoder_input_ids), encoder_hidden, encoder_mask, trace);
}

torch::Tensor T5ModelImpl::lm_logits(const torch::Tensor& decoder_hidden) {
  auto h = decoder_hidden;
  if (config_.tie_word_embeddings) h = h * std::pow(static_cast<double>(config_.d_model), -0.5);
  if (lm_head_f32_.defined()) return at::linear(h.to(torch::kFloat), lm_head_f32_);
  const auto& w = config_.tie_word_embeddings ? shared->weight : lm_head->weight;
  return at::linear(h, w).to(torch::kFloat);
}

Seq2SeqOutput T5ModelImpl::forward(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                                   const torch::Tensor& decoder_input_ids, bool trace, bool skip_padding) {
  Seq2SeqOutput out;
  out.encoder_trace.want = out.decoder_trace.want = trace;
  auto mask = attention_mask.to(input_ids.device());
  out.encoder_last_hidden_state = encode(input_ids, mask, trace ? &out.encoder_trace : nullptr, skip_padding);
  out.decoder_last_hidden_state =
      decode(decoder_input_ids, out.encoder_last_hidden_state, mask, trace ? &out.decoder_trace : nullptr);
  out.logits = lm_logits(out.decoder_last_hidden_state);
  return out;
}

DecoderState T5ModelImpl::start_decoding(const torch::Tensor& encoder_hidden, const torch::Tensor& encoder_mask) {
  return decoder->start(encoder_hidden, encoder_mask.to(encoder_hidden.device()));
}

torch::Tensor T5ModelImpl::decode_step(const torch::Tensor& tokens, DecoderState& state) {
  auto h = decoder->step(shared(tokens.view({-1, 1})), state);
  return lm_logits(h).select(1, 0);
}

std::vector<std::string> T5ModelImpl::projection_names() const {
  std::vector<std::string> names;
  for (const auto& [name, p] : projections_) names.push_back(name);
  return names;
}

Projection T5ModelImpl::projection(const std::string& name) const {
  auto it = projections_.find(name);
  if (it == projections_.end()) {
    fail("model has no projection '", name, "' (expected names like 'encoder.block.0.layer.0.SelfAttention.q'; ",
         "this model has ", config_.num_layers, " encoder and ", config_.num_decoder_layers, " decoder blocks)");
  }
  return it->second;
}

void T5ModelImpl::clear_low_rank() {
  for (auto& [name, p] : projections_) p->set_low_rank(std::nullopt);
}

void T5ModelImpl::restore_merged() {
  for (auto& [name, p] : projections_) p->restore();
}

torch::ScalarType T5ModelImpl::weight_dtype() const { return shared->weight.scalar_type(); }

void T5ModelImpl::set_runtime(const RuntimeOptions& options) {
  for (auto& [name, p] : projections_) {
    if (p->merged()) fail("set_runtime: restore merged projections first ('", name, "' is merged)");
  }
  auto dtype = options.dtype == ComputeDType::kBF16 ? torch::kBFloat16 : torch::kFloat32;
  if (options.dtype == ComputeDType::kBF16 && options.device.is_cpu() && !cpu_has_fast_bf16()) {
    static const bool warned = [] {
      core::log_warn(
          "model.dtype = \"bf16\" on a CPU without AVX-512 (BW/VL/DQ): libtorch has no fast bfloat16 matmul here "
          "and runs a reference loop, typically 40x slower than f32; use dtype = \"f32\" on this machine");
      return true;
    }();
    (void)warned;
  }
  torch::NoGradGuard no_grad;
  for (auto& p : parameters()) {
    p.set_data(p.to(options.device, dtype));
  }
  lm_head_f32_ = torch::Tensor();
  if (options.dtype == ComputeDType::kBF16) {
    const auto& w = config_.tie_word_embeddings ? shared->weight : lm_head->weight;
    lm_head_f32_ = w.to(torch::kFloat32);
  }
  runtime_ = options;
}

void T5ModelImpl::init_weights(std::uint64_t seed) {
  torch::NoGradGuard no_grad;
  auto gen = at::detail::createCPUGenerator(seed);
  auto normal = [&](torch::Tensor& w, double std) {
    auto t = at::empty(w.sizes(), torch::kFloat32);
    t.normal_(0.0, std, gen);
    w.set_data(t.to(w.device(), w.scalar_type()));
  };
  const double d_model = static_cast<double>(config_.d_model);
  const double d_kv = static_cast<double>(config_.d_kv);
  const double heads = static_cast<double>(config_.num_heads);
  normal(shared->weight, 1.0);
  if (!config_.tie_word_embeddings) normal(lm_head->weight, 1.0);
  for (auto* stack : {encoder.get(), decoder.get()}) {
    for (auto& b : stack->blocks) {
      std::vector<T5AttentionImpl*> attns = {b->self_attention->SelfAttention.get()};
      if (!b->cross_attention.is_empty()) attns.push_back(b->cross_attention->EncDecAttention.get());
      for (auto* a : attns) {
        normal(a->q->weight, std::pow(d_model * d_kv, -0.5));
        normal(a->k->weight, std::pow(d_model, -0.5));
        normal(a->v->weight, std::pow(d_model, -0.5));
        normal(a->o->weight, std::pow(heads * d_kv, -0.5));
        if (!a->relative_attention_bias.is_empty()) normal(a->relative_attention_bias->weight, std::pow(d_model, -0.5));
      }
      auto& dense = *b->ff->DenseReluDense;
      if (config_.is_gated_act) {
        normal(dense.wi_0->weight, std::pow(d_model, -0.5));
        normal(dense.wi_1->weight, std::pow(d_model, -0.5));
      } else {
        normal(dense.wi->weight, std::pow(d_model, -0.5));
      }
      normal(dense.wo->weight, std::pow(static_cast<double>(config_.d_ff), -0.5));
    }
  }
  for (auto& item : named_parameters()) {
    if (item.key().find("layer_norm") != std::string::npos) item.value().fill_(1.0);
  }
  if (runtime_.dtype == ComputeDType::kBF16) set_runtime(runtime_);
}

// ---------------------------------------------------------------------------------------------
T5Model load_t5(const std::string& model_dir, const RuntimeOptions& options) {
  auto config = T5Config::from_file(model_dir);
  KeyFiles files;
  StateDict weights = load_checkpoint(model_dir, &files);
  const std::string config_path =
      fs::is_directory(model_dir) ? (fs::path(model_dir) / "config.json").string() : model_dir;
  // Before the model allocates anything: a config.json that disagrees with the weights (vocab_size 1e9) would
  // otherwise ask the allocator for terabytes.
  detail::check_config_against_checkpoint(config, config_path, weights, files);
  T5Model model(config);
  const auto target = options.dtype == ComputeDType::kBF16 ? torch::kBFloat16 : torch::kFloat32;

  // Keys HF writes besides the parameters: tied copies of shared.weight and a bias table HF ignores.
  std::set<std::string> optional_extra = {"encoder.embed_tokens.weight", "decoder.embed_tokens.weight",
                                          "decoder.block.0.layer.1.EncDecAttention.relative_attention_bias.weight"};
  if (config.tie_word_embeddings) optional_extra.insert("lm_head.weight");

  std::set<std::string> used;
  torch::NoGradGuard no_grad;
  for (auto& item : model->named_parameters()) {
    const auto& name = item.key();
    auto it = weights.find(name);
    if (it == weights.end() && name == "shared.weight") {
      it = weights.find("encoder.embed_tokens.weight");  // some converted checkpoints only keep this alias
    }
    if (it == weights.end()) {
      fail(model_dir, ": checkpoint is missing key '", name, "' (expected shape ", item.value().sizes(), ")");
    }
    const auto& t = it->second;
    if (t.sizes() != item.value().sizes()) {
      fail(model_dir, ": key '", it->first, "' has shape ", t.sizes(), ", the config (", config.d_model,
           "-dim, vocab ", config.vocab_size, ") needs ", item.value().sizes());
    }
    if (!t.is_floating_point()) fail(model_dir, ": key '", it->first, "' has non-float dtype ", t.scalar_type());
    used.insert(it->first);
    auto converted = t.to(options.device, target);
    // After the conversion: float64 values beyond float32's range and float32 values beyond bfloat16's become
    // ±Inf there. Cost: see RuntimeOptions::check_finite.
    if (options.check_finite) {
      check_finite(converted, files.count(it->first) ? files.at(it->first) : model_dir, it->first);
    }
    // A converted copy leaves the file's bytes unused: hand their pages back, so that peak memory stays near
    // the converted weights (f32 on CPU aliases the mapping and keeps it).
    if (t.device().is_cpu() && converted.data_ptr() != t.data_ptr()) {
      core::release_mapped_pages(t.data_ptr(), t.nbytes());
    }
    item.value().set_data(converted);
  }
  std::vector<std::string> unexpected;
  for (const auto& [name, t] : weights) {
    if (used.count(name) || optional_extra.count(name)) continue;
    unexpected.push_back(name);
  }
  if (!unexpected.empty()) {
    std::string list;
    for (std::size_t i = 0; i < unexpected.size() && i < 5; ++i) list += (i ? ", '" : "'") + unexpected[i] + "'";
    fail(model_dir, ": checkpoint has ", unexpected.size(), " unexpected key(s) for a ", config.num_layers, "+",
         config.num_decoder_layers, "-block T5 (", config.feed_forward_proj, "): ", list,
         unexpected.size() > 5 ? ", ..." : "");
  }
  weights.clear();
  model->set_runtime(options);
  model->eval();
  return model;
}

T5Model random_t5(const T5Config& config, std::uint64_t seed, const RuntimeOptions& options) {
  T5Model model(config);
  model->init_weights(seed);
  model->set_runtime(options);
  model->eval();
  return model;
}

void save_t5(T5Model& model, const std::string& model_dir) {
  fs::create_directories(model_dir);
  {
    std::ofstream out(fs::path(model_dir) / "config.json");
    out << model->config().to_json().dump(2) << "\n";
    if (!out) fail(model_dir, ": cannot write config.json");
  }
  StateDict dict;
  for (const auto& item : model->named_parameters()) {
    dict[item.key()] = item.value().detach().to(torch::kCPU, torch::kFloat32).contiguous();
  }
  save_safetensors((fs::path(model_dir) / "model.safetensors").string(), dict, {{"format", "pt"}});
}

// ---------------------------------------------------------------------------------------------
torch::Tensor shift_right(const torch::Tensor& labels, std::int64_t decoder_start_token_id, std::int64_t pad_token_id) {
  auto shifted = torch::empty_like(labels);
  shifted.select(1, 0).fill_(decoder_start_token_id);
  if (labels.size(1) > 1) shifted.narrow(1, 1, labels.size(1) - 1).copy_(labels.narrow(1, 0, labels.size(1) - 1));
  return shifted.masked_fill(shifted == -100, pad_token_id);
}

LossTerms seq2seq_loss(const torch::Tensor& logits, const torch::Tensor& labels) {
  LossTerms out;
  auto logp = torch::log_softmax(logits.to(torch::kFloat), -1);
  auto valid = labels != -100;
  auto picked = logp.gather(-1, labels.clamp_min(0).unsqueeze(-1)).squeeze(-1);
  out.token_loss = torch::where(valid, -picked, torch::zeros_like(picked));
  out.token_count = valid.sum(1);
  out.example_loss_sum = out.token_loss.sum(1);
  out.example_loss_mean = out.example_loss_sum / out.token_count.to(torch::kFloat);
  out.loss = out.token_loss.sum() / valid.sum().to(torch::kFloat);
  return out;
}

GenerateResult generate_greedy(T5ModelImpl& model, const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                               const GenerateOptions& options) {
  c10::InferenceMode guard;
  const auto& cfg = model.config();
  const auto device = model.runtime().device;
  const auto batch = input_ids.size(0);
  auto ids = input_ids.to(device);
  auto mask = attention_mask.to(device);
  auto enc = model.encode(ids, mask, nullptr, /*skip_padding=*/true);
  auto state = model.start_decoding(enc, mask);

  std::vector<torch::Tensor> columns;  // each [B] int64 on CPU
  std::vector<torch::Tensor> step_logits;
  columns.push_back(torch::full({batch}, cfg.decoder_start_token_id, torch::kLong));
  auto unfinished = torch::ones({batch}, torch::kBool);
  // Rows still computed, as indices into the full batch; rows drop out after EOS when allowed.
  auto active = torch::arange(batch, torch::kLong);
  auto tokens = torch::full({batch}, cfg.decoder_start_token_id, torch::TensorOptions().dtype(torch::kLong).device(device));

  for (std::int64_t step = 0; step < options.max_new_tokens; ++step) {
    auto logits = model.decode_step(tokens, state);  // [active, V]
    auto next = logits.argmax(-1).to(torch::kCPU);
    auto active_unfinished = unfinished.index_select(0, active);
    // HF: finished rows keep emitting pad.
    next = torch::where(active_unfinished, next, torch::full_like(next, cfg.pad_token_id));
    auto column = torch::full({batch}, cfg.pad_token_id, torch::kLong);
    column.index_copy_(0, active, next);
    columns.push_back(column);
    if (options.keep_step_logits) {
      auto full = torch::zeros({batch, logits.size(1)}, torch::kFloat);
      full.index_copy_(0, active, logits.to(torch::kCPU, torch::kFloat));
      step_logits.push_back(full);
    }
    unfinished.index_put_({active}, active_unfinished & (next != cfg.eos_token_id));
    if (!unfinished.any().item<bool>()) break;
    auto keep_local = torch::arange(active.size(0), torch::kLong);
    if (options.drop_finished_rows) {
      keep_local = unfinished.index_select(0, active).nonzero().squeeze(1);
      if (keep_local.size(0) < active.size(0)) {
        active = active.index_select(0, keep_local);
        next = next.index_select(0, keep_local);
        state.select_rows(keep_local.to(device));
      }
    }
    tokens = next.to(device);
  }
  GenerateResult result;
  result.ids = torch::stack(columns, 1);
  if (options.keep_step_logits && !step_logits.empty()) result.step_logits = torch::stack(step_logits, 0);
  return result;
}

}  // namespace lorahub::model
