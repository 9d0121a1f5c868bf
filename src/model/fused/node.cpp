// One fused recurrent call as one node of libtorch's autograd graph (what tch's C API cannot make).
//
// The forward pass runs in Rust (src/model/fused); `rnnlab_fused_attach` then gives its outputs a grad_fn whose
// edges lead to the call's inputs, and autograd calls back into Rust for the backward pass, in the same
// `loss.backward()` as the rest of the model: gradients reach the weights through their accumulators and the
// inputs through their own graphs, with no second pass. Compiled by build.rs against libtorch's headers.
#include <torch/csrc/autograd/edge.h>
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/functions/utils.h>
#include <torch/csrc/autograd/variable.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

using torch::autograd::Edge;
using torch::autograd::edge_list;
using torch::autograd::Node;
using torch::autograd::variable_list;

extern "C" {
// The Rust backward: `grads` are the outputs' gradients (null where autograd has none), borrowed; it writes one
// owned tensor (allocated as tch allocates them: `new at::Tensor`) or null per input into `out`, and returns null
// or an error message allocated with malloc.
typedef char* (*rnnlab_backward_fn)(void* ctx, at::Tensor** grads, int64_t n_grads, at::Tensor** out,
                                    int64_t n_out);
// Frees the Rust context (what the call saved for its backward pass).
typedef void (*rnnlab_drop_fn)(void* ctx);
}

namespace {

struct FusedRecurrenceBackward : public Node {
  FusedRecurrenceBackward(void* ctx, rnnlab_backward_fn backward, rnnlab_drop_fn drop)
      : ctx_(ctx), backward_(backward), drop_(drop) {}

  ~FusedRecurrenceBackward() override { release_variables(); }

  std::string name() const override { return "rnnlab::FusedRecurrenceBackward"; }

  // Called by the engine after apply unless the graph is retained: the saved tensors go back to Rust's pool.
  void release_variables() override {
    if (ctx_ != nullptr) {
      drop_(ctx_);
      ctx_ = nullptr;
    }
  }

  variable_list apply(variable_list&& grads) override {
    TORCH_CHECK(ctx_ != nullptr,
                "rnnlab: the fused recurrence's backward ran twice; its saved tensors are freed after the first "
                "(retain_graph is not supported on the fused path: use model.impl: libtorch)");
    std::vector<at::Tensor*> in(grads.size(), nullptr);
    for (size_t i = 0; i < grads.size(); i++) {
      if (grads[i].defined()) in[i] = &grads[i];
    }
    std::vector<at::Tensor*> out(num_outputs(), nullptr);
    char* err = backward_(ctx_, in.data(), static_cast<int64_t>(in.size()), out.data(),
                          static_cast<int64_t>(out.size()));
    variable_list result(out.size());
    for (size_t i = 0; i < out.size(); i++) {
      if (out[i] != nullptr) {
        result[i] = std::move(*out[i]);
        delete out[i];
      }
    }
    if (err != nullptr) {
      std::string msg(err);
      std::free(err);
      TORCH_CHECK(false, msg);
    }
    return result;
  }

 private:
  void* ctx_;
  rnnlab_backward_fn backward_;
  rnnlab_drop_fn drop_;
};

}  // namespace

extern "C" {

// Makes `outputs` (defined, not requiring grad) the outputs of a new node whose edges lead to `inputs` (null or
// not requiring grad: no edge). The node owns `ctx` from here on, also on error. Returns null or a malloc'd error.
char* rnnlab_fused_attach(at::Tensor** inputs, int64_t n_inputs, at::Tensor** outputs, int64_t n_outputs,
                          void* ctx, rnnlab_backward_fn backward, rnnlab_drop_fn drop) {
  try {
    auto node = c10::make_intrusive<FusedRecurrenceBackward>(ctx, backward, drop);
    edge_list edges;
    edges.reserve(n_inputs);
    for (int64_t i = 0; i < n_inputs; i++) {
      at::Tensor* t = inputs[i];
      if (t != nullptr && t->defined() && t->requires_grad()) {
        edges.push_back(torch::autograd::impl::gradient_edge(*t));
      } else {
        edges.emplace_back();
      }
    }
    node->set_next_edges(std::move(edges));
    for (int64_t i = 0; i < n_outputs; i++) {
      torch::autograd::set_history(*outputs[i], node);
    }
    return nullptr;
  } catch (const std::exception& e) {
    return strdup(e.what());
  }
}

}  // extern "C"
