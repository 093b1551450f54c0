"""GraNd (Paul et al. 2021): the L2 norm of each example's loss gradient.

``||grad_w CE(f_w(x_i), y_i)||_2`` per example, never a Python loop over examples. Variants:

- ``last_layer=False``: gradient over every trainable parameter of the network, by one of
  ``method="vmap"``: per-sample gradients with ``torch.func.vmap`` over ``torch.func.grad``
  (any architecture without batch coupling), or ``method="layerwise"``: one batched backward
  pass, then each layer's per-sample gradient norm from its input and output gradient
  (``||delta_i||^2 ||a_i||^2`` for ``nn.Linear``; ``delta_i`` against the input windows of ``a_i``
  for ``nn.Conv2d``),
  exact and much cheaper because no per-sample copy of the big weight matrices is made.
  ``method="auto"`` (default) takes ``layerwise`` when every trainable layer is a 2-D
  ``nn.Linear`` or an ungrouped ``nn.Conv2d``, each used once per forward, else ``vmap``.
- ``last_layer=True``: only the final ``nn.Linear`` (closed form): its gradient is
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

METHODS = ("auto", "vmap", "layerwise")


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


def _trainable_layers(model):
    """Modules owning trainable parameters, or None if any is not Linear / ungrouped Conv2d."""
    import torch

    layers = []
    for module in model.modules():
        own = [p for p in module.parameters(recurse=False) if p.requires_grad]
        if not own:
            continue
        if isinstance(module, torch.nn.Linear):
            layers.append(module)
        elif (
            isinstance(module, torch.nn.Conv2d)
            and module.groups == 1
            and module.padding_mode == "zeros"
            and not isinstance(module.padding, str)
        ):
            layers.append(module)
        else:
            return None
    return layers


def _patches(a, conv):
    """Input windows of a Conv2d as a strided view (B, Cin, P, kh, kw), P = output positions.

    (``F.unfold`` computes the same but is several times slower on CPU.)
    """
    import torch

    (ph, pw), (sh, sw), (dh, dw) = conv.padding, conv.stride, conv.dilation
    kh, kw = conv.kernel_size
    a = torch.nn.functional.pad(a, (pw, pw, ph, ph))
    p = a.unfold(2, (kh - 1) * dh + 1, sh).unfold(3, (kw - 1) * dw + 1, sw)
    p = p[..., ::dh, ::dw]  # (B, Cin, Ho, Wo, kh, kw)
    return p.reshape(p.shape[0], p.shape[1], p.shape[2] * p.shape[3], kh, kw)


def _layerwise(model, layers, xb, yb):
    """Per-sample squared gradient norms of one batch from a single backward pass, or None
    when a layer turns out to be used more than once or to see non-2-D Linear inputs."""
    import torch

    seen: dict = {}

    def hook(module, inputs, output):
        seen.setdefault(module, []).append((inputs[0].detach(), output))

    handles = [m.register_forward_hook(hook) for m in layers]
    try:
        logits = model(xb)
    finally:
        for h in handles:
            h.remove()
    if any(len(v) != 1 for v in seen.values()) or len(seen) != len(layers):
        return None
    if any(isinstance(m, torch.nn.Linear) and seen[m][0][0].ndim != 2 for m in layers):
        return None
    # the sum of per-example losses: its gradient w.r.t. each layer output row is that example's
    loss = torch.nn.functional.cross_entropy(logits, yb, reduction="sum")
    deltas = torch.autograd.grad(loss, [seen[m][0][1] for m in layers])
    sq = torch.zeros(len(xb), dtype=torch.float64)
    for m, d in zip(layers, deltas, strict=True):
        a = seen[m][0][0]  # float32 products, float64 sums of squares
        if isinstance(m, torch.nn.Linear):
            d2 = (d * d).sum(1).double()
            if m.weight.requires_grad:
                sq += d2 * (a * a).sum(1).double()
            if m.bias is not None and m.bias.requires_grad:
                sq += d2
        else:
            d = d.reshape(d.shape[0], d.shape[1], -1)  # (B, Cout, P)
            if m.weight.requires_grad:
                g = torch.einsum("bop,bipkl->boikl", d, _patches(a, m))  # (B, Cout, Cin, kh, kw)
                sq += (g * g).sum((1, 2, 3, 4)).double()
            if m.bias is not None and m.bias.requires_grad:
                sq += (d.sum(2) ** 2).sum(1).double()
    return sq


def grand_values(model, x, y, *, last_layer: bool = False, batch_size: int = 256,
                 method: str = "auto"):  # fmt: skip
    """Per-example gradient norms as a float64 numpy array (N,); ``x``, ``y`` are torch tensors.

    The model is evaluated in eval mode (batch norm uses running statistics, dropout is off) so
    that each example's gradient does not depend on its batch; the training mode is restored.
    """
    import torch
    from torch.func import functional_call, grad, vmap

    if method not in METHODS:
        raise InvalidInputError(f"grand: method must be one of {METHODS}, got {method!r}")
    was_training = model.training
    # functional_call can leave plain tensors in place of shared (tied) parameters: restore them
    originals = [(m, k, p) for m in model.modules() for k, p in m._parameters.items()]
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
            return np.concatenate(out) if out else np.zeros(0)
        layers = _trainable_layers(model) if method != "vmap" else None
        if method == "layerwise" and layers is None:
            raise InvalidInputError(
                "grand: method='layerwise' needs every trainable layer to be nn.Linear or an "
                "ungrouped nn.Conv2d; use method='vmap'"
            )
        if layers is not None:
            pending = []
            for lo in range(0, len(x), batch_size):
                sq = _layerwise(model, layers, x[lo : lo + batch_size], y[lo : lo + batch_size])
                if sq is None:
                    break
                pending.append(sq.sqrt().numpy())
            else:
                return np.concatenate(pending) if pending else np.zeros(0)
            if method == "layerwise":
                raise InvalidInputError(
                    "grand: method='layerwise' needs each layer used once per forward on 2-D "
                    "Linear inputs; use method='vmap'"
                )
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
        for m, k, p in originals:
            if m._parameters.get(k) is not p:
                m._parameters[k] = p
    return np.concatenate(out) if out else np.zeros(0)


def grand(model, x, labels, *, ids=None, last_layer: bool = False, batch_size: int = 256,
          method: str = "auto") -> Scores:  # fmt: skip
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
    values = grand_values(model, xt, torch.from_numpy(y), last_layer=last_layer,
                          batch_size=batch_size, method=method)  # fmt: skip
    name = "grand_last" if last_layer else "grand"
    meta = {"last_layer": bool(last_layer), "direction": "higher = harder"}
    if not last_layer:
        meta["method"] = method
    return Scores(ids, values, name, meta)
