"""The plugin's packaging: registries reachable from every host scope, light imports."""
import subprocess
import sys
import textwrap

TINY = ("dict(layers=[1, 1, 1, 1], channels=[8, 8, 8, 8], "
        "large_kernel_sizes=[7, 7, 5, 5], small_kernel=3)")


def run_python(code: str) -> str:
    result = subprocess.run([sys.executable, '-c', textwrap.dedent(code)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_import_mmreplk_does_not_import_mmseg_or_mmdet():
    out = run_python('''
        import sys
        import mmreplk, mmreplk.models, mmreplk.ops, mmreplk.registry
        print(sorted(m for m in ('mmseg', 'mmdet', 'mmpretrain') if m in sys.modules))
    ''')
    assert out.strip() == '[]'


def test_build_from_host_scopes_without_custom_imports():
    # Nothing imports mmreplk: mmengine finds mmreplk.registry from the scope prefix.
    out = run_python(f'''
        import sys
        import torch
        from mmengine.registry import DefaultScope
        from mmseg.registry import MODELS as SEG_MODELS
        from mmdet.registry import MODELS as DET_MODELS
        assert 'mmreplk' not in sys.modules
        for scope, registry in (('mmseg', SEG_MODELS), ('mmdet', DET_MODELS)):
            with DefaultScope.overwrite_default_scope(scope):
                net = registry.build(dict(type='mmreplk.RepLKNet', arch={TINY}))
            outs = net(torch.zeros(1, 3, 64, 64))
            print(scope, type(net).__module__, [tuple(o.shape) for o in outs])
    ''')
    lines = out.strip().splitlines()
    assert lines[0].startswith('mmseg mmreplk.models.backbones.replknet')
    assert lines[1].startswith('mmdet mmreplk.models.backbones.replknet')
    assert '(1, 8, 16, 16), (1, 8, 8, 8), (1, 8, 4, 4), (1, 8, 2, 2)' in lines[0]


def test_build_with_custom_imports_in_config():
    out = run_python(f'''
        from mmengine.config import Config
        from mmengine.registry import DefaultScope, init_default_scope
        from mmengine.utils import import_modules_from_strings
        cfg = Config(dict(
            default_scope='mmdet',
            custom_imports=dict(imports=['mmreplk'], allow_failed_imports=False),
            backbone=dict(type='mmreplk.RepLKNet', arch={TINY}, out_indices=(1, 3))))
        import_modules_from_strings(**cfg.custom_imports)
        init_default_scope(cfg.default_scope)
        from mmdet.registry import MODELS
        net = MODELS.build(cfg.backbone)
        print(type(net).__name__, net.out_indices)
    ''')
    assert out.strip() == 'RepLKNet (1, 3)'
