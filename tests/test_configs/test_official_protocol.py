"""Every config resolves (Config.fromfile) to the official training protocol,
or to the deviation docs/configs.md argues, and that table says what the
configs do. The official values below are transcribed from the authors'
configs (DingXiaoH/RepLKNet-pytorch, segmentation/configs/*.py and
detection/configs/*.py, file names in docs/configs.md), translated to
mmseg 1.x / mmdet 3.x transform names."""
import functools
import re
from pathlib import Path

import pytest
from conftest import load_shipped_config
import torch
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope

from mmreplk.models import RepLKNet

ROOT = Path(__file__).resolve().parents[2]
PAPER = sorted(p.name for p in (ROOT / 'configs').glob('*.py')
               if not p.name.startswith('demo_'))
GPUS = 8  # the number of GPUs every config assumes (its header says so)
IMAGENET = 'ImageNet'
ADAMW = 'AdamW, betas (0.9, 0.999), weight decay 0.05'
NO_NORM_DECAY = 'norm_decay_mult=0'
POLY = 'poly, power 1, to 0, from iteration 0 to the last'
SEG_TRAIN = 'RandomResize, RandomCrop, RandomFlip, PhotoMetricDistortion'
DETR_LONG = [(1333, s) for s in range(480, 801, 32)]
DETR_AUG = ('detr', DETR_LONG, [(1333, 400), (1333, 500), (1333, 600)],
            (384, 600), DETR_LONG)
TTA_RATIOS = (0.5, 0.75, 1.0, 1.25, 1.5, 1.75)  # mmseg 0.x's --aug-test


def _ratio_scales(scale) -> tuple:
    return tuple((int(scale[0] * r), int(scale[1] * r)) for r in TTA_RATIOS)


def _seg(gpus, per_gpu, iters, warmup, drop_path, crop, test_mode,
         mean=IMAGENET, scale=(2048, 512), train=SEG_TRAIN,
         ratio=(0.5, 2.0)):
    batch = gpus * per_gpu
    return dict(
        gpus=gpus, per_gpu=per_gpu, batch=batch, iters=iters,
        samples=batch * iters, lr=2e-4, base_batch=batch, warmup=('linear', 1e-6, warmup),
        warmup_samples=batch * warmup, decay=POLY, optimizer=ADAMW,
        paramwise=NO_NORM_DECAY, drop_path=drop_path, mean=(mean, ) * 3,
        train=train, train_scale=(scale, ratio), crop=crop,
        test_scale=scale, test_mode=test_mode,
        tta=(scale, _ratio_scales(scale), True))


def _cascade(per_gpu, drop_path, mean=(IMAGENET, ) * 3):
    return dict(
        gpus=None, per_gpu=per_gpu, batch=None, epochs=(36, (27, 33)),
        lr=4e-4,
        base_batch=None, warmup=('linear', 1e-3, 500), optimizer=ADAMW,
        clip=None, paramwise=NO_NORM_DECAY, drop_path=drop_path, mean=mean,
        train='RandomFlip, RandomChoice', train_scale=DETR_AUG,
        test_scale=(1333, 800))


SLIDE_640 = ('slide', (640, 640), (426, 426))
OFFICIAL = {
    'upernet_replk31b_ade20k.py':
    _seg(64, 2, 40000, 400, 0.5, (512, 512), 'whole'),
    'upernet_replk31b-in22k_ade20k-640.py':
    _seg(64, 2, 40000, 400, 0.3, (640, 640), SLIDE_640),
    'upernet_replk31l-in22k_ade20k-640.py':
    _seg(64, 1, 80000, 800, 0.3, (640, 640), SLIDE_640),
    # trains on its test pipeline: a fixed resize, no crop, flip, distortion
    'upernet_replkxl_ade20k-640.py':
    _seg(16, 2, 160000, 1500, 0.5, None, SLIDE_640, mean='127.5',
         train='Resize', ratio=None),
    'upernet_replk31b_cityscapes.py':
    _seg(32, 2, 20000, 400, 0.5, (769, 769), 'whole', scale=(2049, 1025)),
    'cascade_mask_rcnn_replk31b_coco.py': _cascade(1, 0.6),
    'cascade_mask_rcnn_replk31b-in22k_coco.py': _cascade(1, 0.4),
    'cascade_mask_rcnn_replk31l-in22k_coco.py': _cascade(1, 0.7),
    # validates with ImageNet mean/std (its val pipeline kept the base's)
    'cascade_mask_rcnn_replkxl_coco.py':
    _cascade(4, 0.5, mean=('127.5', IMAGENET, '127.5')),
    'fcos_replk31b_coco.py': dict(
        gpus=None, per_gpu=2, batch=None, epochs=(24, (16, 22)), lr=2e-4,
        base_batch=None,
        warmup=('constant', 1 / 3, 500), optimizer=ADAMW + ', momentum 0.9',
        clip=35, paramwise=NO_NORM_DECAY, drop_path=0.5,
        mean=(IMAGENET, ) * 3, train='RandomChoiceResize, RandomFlip',
        train_scale=('choice', [(1333, 640), (1333, 800)]),
        test_scale=(1333, 800)),
}


def on_8_gpus(official: dict, per_gpu: int) -> dict:
    """The UPerNet configs' deliberate deviation: 8 GPUs x ``per_gpu``
    images, the official training samples, lr and warm-up samples, and
    auto_scale_lr's base batch = the batch the official lr was used at."""
    batch = GPUS * per_gpu
    assert official['samples'] % batch == 0
    assert official['warmup_samples'] % batch == 0
    kind, factor, _ = official['warmup']
    return dict(official, gpus=GPUS, per_gpu=per_gpu, batch=batch,
                iters=official['samples'] // batch,
                warmup=(kind, factor, official['warmup_samples'] // batch))


def assumed_8_gpus(official: dict) -> dict:
    """The COCO configs: the official images per GPU on 8 GPUs (the
    official configs do not state their number of GPUs)."""
    batch = GPUS * official['per_gpu']
    return dict(official, gpus=GPUS, batch=batch, base_batch=batch)


EXPECTED = {
    'upernet_replk31b_ade20k.py':
    on_8_gpus(OFFICIAL['upernet_replk31b_ade20k.py'], 4),
    'upernet_replk31b-in22k_ade20k-640.py':
    on_8_gpus(OFFICIAL['upernet_replk31b-in22k_ade20k-640.py'], 4),
    'upernet_replk31l-in22k_ade20k-640.py':
    on_8_gpus(OFFICIAL['upernet_replk31l-in22k_ade20k-640.py'], 4),
    # + the training pipeline instead of the official test pipeline
    'upernet_replkxl_ade20k-640.py':
    dict(on_8_gpus(OFFICIAL['upernet_replkxl_ade20k-640.py'], 4),
         train=SEG_TRAIN, train_scale=((2048, 512), (0.5, 2.0)),
         crop=(640, 640)),
    'upernet_replk31b_cityscapes.py':
    on_8_gpus(OFFICIAL['upernet_replk31b_cityscapes.py'], 2),
    'cascade_mask_rcnn_replk31b_coco.py':
    assumed_8_gpus(OFFICIAL['cascade_mask_rcnn_replk31b_coco.py']),
    'cascade_mask_rcnn_replk31b-in22k_coco.py':
    assumed_8_gpus(OFFICIAL['cascade_mask_rcnn_replk31b-in22k_coco.py']),
    'cascade_mask_rcnn_replk31l-in22k_coco.py':
    assumed_8_gpus(OFFICIAL['cascade_mask_rcnn_replk31l-in22k_coco.py']),
    # + 127.5 in validation too
    'cascade_mask_rcnn_replkxl_coco.py':
    dict(assumed_8_gpus(OFFICIAL['cascade_mask_rcnn_replkxl_coco.py']),
         mean=('127.5', ) * 3),
    # + AdamW without SGD's momentum
    'fcos_replk31b_coco.py':
    dict(assumed_8_gpus(OFFICIAL['fcos_replk31b_coco.py']), optimizer=ADAMW),
    # no official config: the Cascade Mask R-CNN 31B protocol
    'cascade_rcnn_replk31b_coco.py':
    assumed_8_gpus(OFFICIAL['cascade_mask_rcnn_replk31b_coco.py']),
}


@pytest.fixture(scope='module', autouse=True)
def metafiles_read_once():
    """mmengine parses all of mmseg's / mmdet's ~400 metafiles again for
    every `mmseg::` / `mmdet::` base (0.4 s each); read each file once."""
    import mmengine.config.utils as config_utils
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(config_utils, 'load',
                      functools.lru_cache(maxsize=None)(config_utils.load))
        yield


load = load_shipped_config


def _mean(preprocessor) -> str:
    if list(preprocessor.mean) == [123.675, 116.28, 103.53] and list(
            preprocessor.std) == [58.395, 57.12, 57.375]:
        return IMAGENET
    if list(preprocessor.mean) == list(preprocessor.std) == [127.5] * 3:
        return '127.5'
    return f'{preprocessor.mean} / {preprocessor.std}'


def _transforms(pipeline) -> str:
    return ', '.join(t.type for t in pipeline
                     if not t.type.startswith(('Load', 'Pack')))


def _optimizer(optim_wrapper) -> str:
    opt = dict(optim_wrapper.optimizer)
    text = (f"{opt.pop('type')}, betas {tuple(opt.pop('betas'))}, "
            f"weight decay {opt.pop('weight_decay')}")
    opt.pop('lr')
    return ''.join([text] + [f', {k} {v}' for k, v in sorted(opt.items())])


def _warmup(scheduler) -> tuple:
    assert scheduler.begin == 0 and not scheduler.by_epoch
    if scheduler.type == 'LinearLR':
        assert scheduler.get('end_factor', 1.0) == 1.0
        return ('linear', scheduler.start_factor, scheduler.end - 1)
    assert scheduler.type == 'ConstantLR'
    return ('constant', scheduler.factor, scheduler.end - 1)


def protocol(cfg: Config) -> dict:
    """The settings of the official-vs-ours table, read from a resolved
    config (``gpus`` is the assumption its header states)."""
    train = cfg.train_dataloader
    per_gpu = train.batch_size
    optim = cfg.optim_wrapper
    means = (_mean(cfg.model.data_preprocessor), ) * 3
    clip = optim.get('clip_grad')
    out = dict(
        gpus=GPUS, per_gpu=per_gpu, batch=GPUS * per_gpu, lr=optim.optimizer.lr,
        base_batch=cfg.auto_scale_lr.base_batch_size,
        warmup=_warmup(cfg.param_scheduler[0]), optimizer=_optimizer(optim),
        paramwise=', '.join(f'{k}={v:g}'
                            for k, v in optim.paramwise_cfg.items()),
        drop_path=cfg.model.backbone.drop_path_rate, mean=means,
        train=_transforms(train.dataset.pipeline))
    test = {t.type: t for t in cfg.test_dataloader.dataset.pipeline}
    out['test_scale'] = tuple(test['Resize'].scale)
    steps = {t.type: t for t in train.dataset.pipeline}
    if cfg.default_scope == 'mmseg':
        iters = cfg.train_cfg.max_iters
        poly = cfg.param_scheduler[1]
        decay = POLY if (poly.type == 'PolyLR' and poly.power == 1.0
                         and poly.eta_min == 0 and poly.begin == 0
                         and poly.end == iters + 1) else str(poly)
        resize = steps['RandomResize']
        test_cfg = cfg.model.test_cfg
        resizes, flips = cfg.tta_pipeline[1].transforms[:2]
        out.update(
            iters=iters, samples=GPUS * per_gpu * iters, decay=decay,
            warmup_samples=GPUS * per_gpu * out['warmup'][2],
            train_scale=(tuple(resize.scale), tuple(resize.ratio_range)),
            crop=tuple(steps['RandomCrop'].crop_size),
            test_mode='whole' if test_cfg.mode == 'whole' else
            (test_cfg.mode, tuple(test_cfg.crop_size), tuple(test_cfg.stride)),
            tta=(out['test_scale'],
                 tuple(tuple(t.get('scale', ())) for t in resizes),
                 [f.prob for f in flips] == [0., 1.]))
    else:
        multistep = cfg.param_scheduler[1]
        assert multistep.type == 'MultiStepLR' and multistep.gamma == 0.1
        out.update(
            epochs=(cfg.train_cfg.max_epochs, tuple(multistep.milestones)),
            clip=clip.max_norm if clip else None)
        if 'RandomChoice' in steps:
            first, second = steps['RandomChoice'].transforms
            out['train_scale'] = ('detr', first[0].scales, second[0].scales,
                                  tuple(second[1].crop_size),
                                  second[2].scales)
            assert second[1].crop_type == 'absolute_range'
        else:
            out['train_scale'] = ('choice',
                                  steps['RandomChoiceResize'].scales)
    return out


@pytest.mark.parametrize('name', PAPER)
def test_config_is_the_official_protocol(name):
    """Scales, crop, test mode, batch per GPU, warm-up, optimizer, paramwise
    settings and drop path as the official config, apart from the argued
    deviations that EXPECTED spells out."""
    assert protocol(load(name)) == EXPECTED[name]


@pytest.mark.parametrize('name', [n for n in PAPER if n.startswith('upernet')])
def test_upernet_keeps_the_official_samples(name):
    """8 GPUs: the official samples and warm-up samples, and the batch the
    official lr was used at as auto_scale_lr's base."""
    ours, official = protocol(load(name)), OFFICIAL[name]
    assert ours['samples'] == official['samples']
    assert ours['warmup_samples'] == official['warmup_samples']
    assert ours['lr'] == official['lr']
    assert ours['base_batch'] == official['gpus'] * official['per_gpu']


def test_poly_with_warmup_is_mmcv_1x_formula():
    """The UPerNet schedulers, at a small scale, give mmcv 1.x's poly policy
    with linear warm-up (the official lr_config) at every iteration."""
    from mmengine.optim.scheduler import LinearLR, PolyLR
    total, warmup, ratio = 200, 20, 1e-6
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.AdamW([param], lr=2e-4)
    warm, poly = load('upernet_replk31b_ade20k.py').param_scheduler
    schedulers = [
        LinearLR(optimizer, start_factor=warm.start_factor, by_epoch=False,
                 begin=0, end=warmup + 1),
        PolyLR(optimizer, power=poly.power, eta_min=poly.eta_min,
               by_epoch=False, begin=0, end=total + 1)
    ]
    for it in range(total):
        official = 2e-4 * (1 - it / total)
        if it < warmup:
            official *= 1 - (1 - it / warmup) * (1 - ratio)
        assert optimizer.param_groups[0]['lr'] == pytest.approx(
            official, rel=1e-9, abs=1e-18)
        for scheduler in schedulers:
            scheduler.step()


@pytest.mark.parametrize('name', PAPER)
def test_runtime_and_pipelines(name):
    cfg = load(name)
    assert cfg.custom_imports == dict(
        imports=['mmreplk', 'mmreplk.engine'], allow_failed_imports=False)
    assert cfg.val_dataloader.dataset.pipeline == \
        cfg.test_dataloader.dataset.pipeline
    ckpt = cfg.default_hooks.checkpoint
    assert ckpt.type == 'mmreplk.SafeCheckpointHook'  # kill-proof rotation
    assert ckpt.get('max_keep_ckpts', -1) != 1  # the previous one survives
    init = cfg.model.backbone.init_cfg
    assert ('in22k' in init.checkpoint) == ('in22k' in name)
    assert (cfg.model.backbone.arch == 'XL') == ('meg73m' in init.checkpoint)


# Official ImageNet classifiers' parameter counts, less the final BN and
# the 1000-way head; XL downstream adds a BN on each of its four outputs.
BACKBONE_PARAMS = {
    '31B': 79_864_168 - 2 * 1024 - 1025 * 1000,
    '31L': 172_671_016 - 2 * 1536 - 1537 * 1000,
    'XL': 335_435_752 - 2 * 2048 - 2049 * 1000 + 2 * (256 + 512 + 1024 + 2048),
}


@pytest.fixture
def meta_device(monkeypatch):
    """Build models without allocating: RepLKNet reads its drop-path rates
    from torch.linspace(...).tolist(), which needs a real tensor."""
    linspace = torch.linspace
    monkeypatch.setattr(torch, 'linspace',
                        functools.partial(linspace, device='cpu'))
    with torch.device('meta'):
        yield


@pytest.mark.parametrize('name', PAPER)
def test_full_size_model_and_widths(name, meta_device):
    cfg = load(name)
    arch = cfg.model.backbone.arch
    widths = RepLKNet.arch_zoo[arch]['channels']
    if cfg.default_scope == 'mmseg':
        assert cfg.model.decode_head.in_channels == widths
        assert cfg.model.auxiliary_head.in_channels == widths[2]
    else:
        assert cfg.model.neck.in_channels == widths
    init_default_scope(cfg.default_scope)
    model = MODELS.build(cfg.model)
    params = sum(p.numel() for p in model.backbone.parameters())
    assert params == BACKBONE_PARAMS[arch]
    roi_head = getattr(model, 'roi_head', None)
    assert ('mask' in name) == bool(roi_head and roi_head.with_mask)


def test_demo_config_is_a_small_upernet(meta_device):
    cfg = load('demo_upernet_replk-tiny_synthetic.py')
    init_default_scope(cfg.default_scope)
    model = MODELS.build(cfg.model)
    assert sum(p.numel() for p in model.parameters()) < 3e6
    assert cfg.val_evaluator.type == 'IoUMetric'


# ---------------------------------------------------------------- the docs
LABELS = {  # row label in docs/configs.md -> protocol key
    'GPUs': 'gpus',
    'images per GPU': 'per_gpu',
    'total batch': 'batch',
    'iterations': 'iters',
    'training samples': 'samples',
    'epochs, lr x0.1 at': 'epochs',
    'lr': 'lr',
    'auto_scale_lr.base_batch_size': 'base_batch',
    'warm-up': 'warmup',
    'warm-up samples': 'warmup_samples',
    'lr decay': 'decay',
    'optimizer': 'optimizer',
    'gradient clipping': 'clip',
    'paramwise_cfg': 'paramwise',
    'drop path': 'drop_path',
    'mean / std (train, val, test)': 'mean',
    'train transforms': 'train',
    'train scale': 'train_scale',
    'crop': 'crop',
    'test scale': 'test_scale',
    'test mode': 'test_mode',
    'multi-scale test (--tta)': 'tta',
}


def _scales(scales) -> str:
    longs = {long for long, _ in scales}
    shorts = [short for _, short in scales]
    steps = {b - a for a, b in zip(shorts, shorts[1:])}
    if len(shorts) > 3 and len(steps) == 1:
        short = f'{shorts[0]}..{shorts[-1]} step {steps.pop()}'
    else:
        short = '/'.join(map(str, shorts))
    assert len(longs) == 1
    return f'({longs.pop()}, {short})'


def fmt(key: str, value) -> str:
    """How docs/configs.md writes a protocol value."""
    if value is None:
        return 'not stated' if key in ('gpus', 'batch', 'base_batch') \
            else 'none'
    if key == 'lr':
        mantissa, exponent = f'{value:e}'.split('e')
        return f'{float(mantissa):g}e{int(exponent)}'
    if key in ('iters', 'samples', 'warmup_samples'):
        return f'{value:,}'
    if key == 'epochs':
        return f'{value[0]}, at {value[1][0]} and {value[1][1]}'
    if key == 'warmup':
        kind, factor, iters = value
        factor = '1/3' if factor == 1 / 3 else fmt('lr', factor)
        return f'{kind}, {factor} x lr, {iters:,} iterations'
    if key == 'mean':
        return value[0] if len(set(value)) == 1 else ', '.join(value)
    if key == 'train_scale':
        if value[0] == 'detr':
            _, first, second, crop, third = value
            return (f'{_scales(first)} or {_scales(second)}, crop '
                    f'{crop[0]}..{crop[1]}, {_scales(third)}')
        if value[0] == 'choice':
            return ' or '.join(map(str, value[1]))
        scale, ratio = value
        return f'{scale} x [{ratio[0]}, {ratio[1]}]' if ratio else str(scale)
    if key == 'test_mode' and value != 'whole':
        return f'{value[0]} {value[1]}, stride {value[2]}'
    if key == 'clip':
        return f'max norm {value}'
    if key == 'tta':
        scale, scales, flip = value
        text = (f'{scale} x 0.5, 0.75, ..., 1.75' if scales == _ratio_scales(
            scale) else ', '.join(map(str, scales)))
        return text + (', flipped' if flip else '')
    return f'{value:g}' if isinstance(value, float) else str(value)


def docs_tables() -> dict:
    """{config: (parent or None, {label: (official, this config, why)})}"""
    tables, name = {}, None
    for line in (ROOT / 'docs' / 'configs.md').read_text().splitlines():
        head = re.match(r'#### `([\w.-]+\.py)`', line)
        if head:
            name = head[1]
            tables[name] = [None, {}]
            continue
        if name is None:
            continue
        parent = re.match(r'As `([\w.-]+\.py)` except', line)
        if parent:
            tables[name][0] = parent[1]
        cells = [c.strip() for c in line.strip().strip('|').split('|')]
        if line.startswith('|') and cells[0] in LABELS:
            tables[name][1][cells[0]] = tuple(cells[1:])
        elif line.startswith('#'):
            name = None
    return {k: (p, rows) for k, (p, rows) in tables.items()}


@pytest.mark.parametrize('name', PAPER)
def test_docs_table_states_official_and_ours(name):
    """docs/configs.md's 'setting | official | this config | why' table of
    every config matches the official values and the resolved config; a
    table that starts 'As `parent` except' lists every setting that differs
    from the parent's."""
    tables = docs_tables()
    if name not in OFFICIAL:  # no official config: as a documented sibling
        assert name not in tables
        return
    parent, rows = tables[name]
    ours = protocol(load(name))
    for label, key in LABELS.items():
        if key not in ours:
            assert label not in rows, label
            continue
        official = fmt(key, OFFICIAL[name][key])
        mine = fmt(key, ours[key])
        if label not in rows:
            assert parent is not None, f'{name}: no row {label!r}'
            assert official == fmt(key, OFFICIAL[parent][key]), label
            assert mine == fmt(key, protocol(load(parent))[key]), label
            continue
        row = rows[label]
        assert row[:2] == (official, mine), (label, row)
        if official != mine:
            assert row[2] not in ('', '-'), f'{label}: say why'
