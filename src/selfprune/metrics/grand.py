"""GraNd (Paul et al. 2021): the L2 norm of each example's loss gradient.

``||grad_w CE(f_w(x_i), y_i)||_2`` per example, computed with vectorised per-sample gradients
(``torch.func.vmap`` over ``torch.func.grad``), never a Python loop over examples. Two variants:

- ``last_layer=False``: gradient over every trainable parameter of the network;
- ``last_layer=True``: only the final ``nn.Linear`` (cheap, closed form): its gradient is
  ``(p - onehot(y)) h^T`` and ``p - onehot(y)`` for the bias, so the norm is
  ``||p - onehot(y)|| * sqrt(||h||^2 + 1)`` with ``h`` the layer's input.

Paul et al. average GraNd over several networks early in training (or at initialisation); do that
by calling this once per network and averaging. **Higher = harder**, no sign change.
"""

from __future__ import annotations

import numpy as np

from selfprune._checks import check_ids, check_int, check_labels
from selfprune.errors import InvalidInputError, require
from selfprune.scores import Scores


def _last_linear(model):
    import torch

    last = None
    for module in model.modules():
        if isinstance(module, torch.nn.Linear):
            last = module
    if last is None:
        raise InvalidInputError(
            "grand: last_layer=True needs a model with an nn.Linear output layer"
        )
    return last


def grand_values(model, x, y, *, last_layer: bool = False, batch_size: int = 256):
    """Per-example gradient norms as a float64 numpy array (N,); ``x``, ``y`` are torch tensors.

    The model is evaluated in eval mode (batch norm uses running statistics, dropout is off) so
    that each example's gradient does not depend on its batch; the training mode is restored.
    """
    import torch
    from torch.func import functional_call, grad, vmap

    was_training = model.training
    model.eval()
    out = []
    try:
        if last_layer:
            head = _last_linear(model)
            cache = {}
            hook = head.register_forward_hook(lambda m, inp, o: cache.__setitem__("h", inp[0]))
            try:
                with torch.no_grad():
                    for lo in range(0, len(x), batch_size):
                        logits = model(x[lo : lo + batch_size])
                        h = cache["h"].reshape(len(logits), -1).double()
                        err = torch.softmax(logits.double(), 1)
                        err[torch.arange(len(err)), y[lo : lo + batch_size]] -= 1.0
                        sq_h = (h * h).sum(1) + (1.0 if head.bias is not None else 0.0)
                        out.append((err.norm(dim=1) * sq_h.sqrt()).numpy())
            finally:
                hook.remove()
        else:
            params = {k: v.detach() for k, v in model.named_parameters() if v.requires_grad}
            buffers = {k: v.detach() for k, v in model.named_buffers()}

            def loss_one(p, xi, yi):
                logits = functional_call(model, (p, buffers), (xi.unsqueeze(0),))
                return torch.nn.functional.cross_entropy(logits, yi.unsqueeze(0))

            per_sample = vmap(grad(loss_one), in_dims=(None, 0, 0))
            for lo in range(0, len(x), batch_size):
                grads = per_sample(params, x[lo : lo + batch_size], y[lo : lo + batch_size])
                sq = sum(g.reshape(g.shape[0], -1).double().pow(2).sum(1) for g in grads.values())
                out.append(sq.sqrt().numpy())
    finally:
        model.train(was_training)
    return np.concatenate(out) if out else np.zeros(0)


def grand(model, x, labels, *, ids=None, last_layer: bool = False, batch_size: int = 256) -> Scores:
    """GraNd scores of a PyTorch classifier on inputs ``x`` (N, ...) float32 and labels (N,).

    Returns ``Scores`` named ``"grand"`` (or ``"grand_last"`` for the last-layer variant).
    """
    torch = require("torch", "torch")
    if not isinstance(model, torch.nn.Module):
        raise InvalidInputError(
            f"grand: model must be a torch.nn.Module, got {type(model).__name__}"
        )
    xt = (
        x
        if isinstance(x, torch.Tensor)
        else torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    )
    if xt.ndim < 2 or len(xt) == 0:
        raise InvalidInputError(
            f"grand: x must be (N, ...) with N >= 1, got shape {tuple(xt.shape)}"
        )
    y = check_labels(
        labels.numpy() if isinstance(labels, torch.Tensor) else labels, len(xt), caller="grand"
    )
    batch_size = check_int(batch_size, caller="grand", name="batch_size")
    ids = check_ids(ids, len(xt), caller="grand")
    values = grand_values(
        model, xt, torch.from_numpy(y), last_layer=last_layer, batch_size=batch_size
    )
    name = "grand_last" if last_layer else "grand"
    return Scores(
        ids, values, name, {"last_layer": bool(last_layer), "direction": "higher = harder"}
    )
