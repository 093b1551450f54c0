import numpy as np
import pytest

torch = pytest.importorskip("torch")

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
@pytest.mark.parametrize("last_layer", [False, True])
def test_vmap_equals_naive_loop(name, shape, last_layer):
    gen = torch.Generator().manual_seed(0)
    x = torch.rand((12, *shape), generator=gen)
    y = torch.randint(0, 4, (12,), generator=gen)
    model = build_model(name, shape, 4, seed=1)
    fast = grand(model, x, y, last_layer=last_layer, batch_size=5)
    np.testing.assert_allclose(fast.values, _naive(model, x, y, last_layer), rtol=1e-5, atol=1e-6)
    assert fast.name == ("grand_last" if last_layer else "grand")


def test_training_mode_is_restored():
    model = build_model("mlp", (4,), 3, seed=0)
    model.train()
    grand(model, np.ones((3, 4), np.float32), [0, 1, 2])
    assert model.training
