"""The plugin's packaging: imports without side effects, one explicit engine switch,
registries reachable from every host scope, no import cycle."""
import ast
import subprocess
import sys
import textwrap

import pytest
from conftest import ROOT, TINY_ARCH


def run_python(code: str) -> str:
    """Run ``code`` in a fresh interpreter: what an import changes process-wide can only
    be seen from a process that has not imported it yet."""
    result = subprocess.run([sys.executable, '-c', textwrap.dedent(code)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


IMPORTS = '''
    import sys

    class Block:
        """Make mmengine and mmcv unimportable, as on a torch-only machine."""
        def find_spec(self, name, path=None, target=None):
            if name.split('.')[0] in ('mmengine', 'mmcv'):
                raise ImportError(f'blocked: {name}')

    sys.meta_path.insert(0, Block())
    import torch
    from mmreplk.ops import depthwise_conv2d
    x, w = torch.randn(1, 2, 9, 9), torch.randn(2, 1, 7, 7)
    ref = torch.nn.functional.conv2d(x, w, padding=3, groups=2)
    print('ops with torch only:', torch.allclose(depthwise_conv2d(x, w), ref, atol=1e-5))
    del sys.meta_path[0]

    # what the dependencies change by themselves is not mmreplk's doing
    import mmcv.cnn, mmengine.model
    from mmengine.fileio.backends import backends

    def state():
        return list(torch.serialization.get_safe_globals()), dict(backends)

    before = state()
    import mmreplk, mmreplk.models, mmreplk.analysis, mmreplk.registry, mmreplk.testing
    import mmreplk.testing.synthetic, mmreplk.utils
    print('import mmreplk changes nothing:', state() == before)
    print('hosts imported:', sorted(m for m in ('mmseg', 'mmdet') if m in sys.modules))
    import mmreplk.engine
    switched = state()
    print('engine switch changes both:', switched[0] != before[0],
          set(switched[1]) - set(before[1]))
    mmreplk.engine.register_atomic_backend()
    mmreplk.engine.allow_runner_checkpoints()
    print('switching again changes nothing:', state() == switched)
'''


@pytest.mark.slow
def test_imports_are_free_of_side_effects_and_the_engine_is_the_switch():
    lines = run_python(IMPORTS).strip().splitlines()
    assert lines == [
        'ops with torch only: True',
        'import mmreplk changes nothing: True',
        'hosts imported: []',
        "engine switch changes both: True {'atomic_local'}",
        'switching again changes nothing: True',
    ]


@pytest.mark.slow
def test_build_from_host_scopes_without_custom_imports():
    # Nothing imports mmreplk: mmengine finds mmreplk.registry from the scope prefix.
    out = run_python(f'''
        import sys
        import torch
        from mmengine.config import Config
        from mmengine.registry import DefaultScope
        from mmseg.registry import MODELS as SEG_MODELS
        from mmdet.registry import MODELS as DET_MODELS
        assert 'mmreplk' not in sys.modules
        for scope, registry in (('mmseg', SEG_MODELS), ('mmdet', DET_MODELS)):
            with DefaultScope.overwrite_default_scope(scope):
                net = registry.build(dict(type='mmreplk.RepLKNet', arch={TINY_ARCH},
                                          out_indices=(1, 3)))
            outs = net(torch.zeros(1, 3, 64, 64))
            print(scope, type(net).__module__, [o.shape[1] for o in outs])
        # custom_imports in a config, as the configs do
        cfg = Config(dict(custom_imports=dict(imports=['mmreplk', 'mmreplk.engine'])))
        from mmengine.utils import import_modules_from_strings
        import_modules_from_strings(**cfg.custom_imports)
        print('engine' if 'mmreplk.engine' in sys.modules else 'no engine')
    ''')
    widths = [TINY_ARCH['channels'][i] for i in (1, 3)]
    assert out.strip().splitlines() == [
        f'mmseg mmreplk.models.backbones.replknet {widths}',
        f'mmdet mmreplk.models.backbones.replknet {widths}',
        'engine',
    ]


def _imports(path, package):
    """The mmreplk modules ``path`` imports at module level (not inside functions)."""
    tree = ast.parse(path.read_text())
    found = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ''
            if node.level:
                parts = package.split('.')[:len(package.split('.')) - node.level + 1]
                base = '.'.join(parts + ([base] if base else []))
            found |= {base} | {f'{base}.{a.name}' for a in node.names}
    return {m for m in found if m.startswith('mmreplk')}


def test_no_import_cycle_in_mmreplk():
    modules = {}
    for path in (ROOT / 'mmreplk').rglob('*.py'):
        name = '.'.join(path.relative_to(ROOT).with_suffix('').parts)
        package = name if path.name == '__init__.py' else name.rsplit('.', 1)[0]
        modules[package if path.name == '__init__.py' else name] = (path, package)
    graph = {name: {m for m in _imports(path, package) if m in modules} - {name}
             for name, (path, package) in modules.items()}
    # a package's __init__ importing its own submodules is not a cycle
    graph = {n: {m for m in deps if not n.startswith(m + '.')}
             for n, deps in graph.items()}
    state = {}

    def visit(node, stack):
        state[node] = 'open'
        for dep in graph[node]:
            assert state.get(dep) != 'open', ' -> '.join(stack + [node, dep])
            if dep not in state:
                visit(dep, stack + [node])
        state[node] = 'done'

    for node in graph:
        if node not in state:
            visit(node, [])
