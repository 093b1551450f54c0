import subprocess
import sys


def test_import_selfprune_is_light():
    code = (
        "import sys, selfprune; "
        "heavy = [m for m in ('torch', 'faiss', 'pyarrow', 'transformers', 'sklearn', 'matplotlib', 'ray') "
        "if m in sys.modules]; print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_lazy_names_resolve():
    import selfprune

    for name in selfprune._LAZY:
        assert getattr(selfprune, name) is not None, name


def test_public_functions_are_not_shadowed_by_submodules():
    code = (
        "import types, selfprune.select, selfprune.embed, selfprune.metrics, selfprune as sp; "
        "bad = [n for n in sp.__all__ if isinstance(getattr(sp, n), types.ModuleType)]; print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
