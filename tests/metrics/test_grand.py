import numpy as np
import pytest
import torch

from selfprune.errors import InvalidInputError  # noqa: E402
from selfprune.evaluate.models import build_model  # noqa: E402
from selfprune.metrics.grand import grand  # noqa: E402


def _naive(model, x, y, last_layer=False):
    model.eval()
    head = [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1]
    params = list(head.parameters()) if last_layer else list(model.parameters())
    out = []
    for i in range(len(x)):
        model.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x[i : i + 1]), y[i : i + 1])
        grads = torch.autograd.grad(loss, params)
        out.append(float(torch.sqrt(sum((g.double() ** 2).sum() for g in grads))))
    return np.array(out)


@pytest.mark.parametrize("name,shape", [("mlp", (1, 8, 8)), ("small-cnn", (1, 8, 8))])
@pytest.mark.parametrize("last_layer,method", [(False, "vmap"), (False, "layerwise"), (True, "auto")])
def test_vectorised_equals_naive_loop(name, shape, last_layer, method):
    gen = torch.Generator().manual_seed(0)
    x = torch.rand((12, *shape), generator=gen)
    y = torch.randint(0, 4, (12,), generator=gen)
    model = build_model(name, shape, 4, seed=1)
    fast = grand(model, x, y, last_layer=last_layer, batch_size=5, method=method)
    np.testing.assert_allclose(fast.values, _naive(model, x, y, last_layer), rtol=1e-5, atol=1e-6)
    assert fast.name == ("grand_last" if last_layer else "grand")


def test_layerwise_covers_strided_dilated_conv_and_frozen_bias():
    net = torch.nn.Sequential(
        torch.nn.Conv2d(2, 3, 3, stride=2, padding=2, dilation=2), torch.nn.Tanh(),
        torch.nn.Conv2d(3, 4, 2, bias=False), torch.nn.Flatten(), torch.nn.LazyLinear(5),
    )  # fmt: skip
    gen = torch.Generator().manual_seed(2)
    x = torch.rand((7, 2, 9, 9), generator=gen)
    y = torch.randint(0, 5, (7,), generator=gen)
    net(x)  # materialise the lazy layer
    net[0].bias.requires_grad_(False)
    want = grand(net, x, y, method="vmap").values
    np.testing.assert_allclose(grand(net, x, y, method="layerwise").values, want, rtol=1e-5)


def test_auto_falls_back_to_vmap_for_other_layers_and_shared_weights():
    lin = torch.nn.Linear(4, 4)
    shared = torch.nn.Sequential(lin, torch.nn.ReLU(), lin)  # the same layer twice
    norm = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.LayerNorm(4), torch.nn.Linear(4, 3))
    x = torch.rand((6, 4), generator=torch.Generator().manual_seed(0))
    y = torch.tensor([0, 1, 2, 3, 0, 1])
    for net, labels in ((shared, y), (norm, y % 3)):
        np.testing.assert_allclose(grand(net, x, labels).values, _naive(net, x, labels), rtol=1e-5)
    with pytest.raises(InvalidInputError, match="layerwise"):
        grand(norm, x, y % 3, method="layerwise")
    with pytest.raises(InvalidInputError, match="layerwise"):
        grand(shared, x, y, method="layerwise")


def test_training_mode_is_restored():
    model = build_model("mlp", (4,), 3, seed=0)
    model.train()
    grand(model, np.ones((3, 4), np.float32), [0, 1, 2])
    assert model.training
