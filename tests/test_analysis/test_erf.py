"""Effective receptive field: library (mmreplk.analysis.erf, erf_models) and
tools/analysis_tools/analyze_erf.py."""
import json
import os
import os.path as osp

import numpy as np
import pytest
import torch
import torch.nn as nn
from conftest import TINY_ARCH, import_tool

from mmreplk.analysis.erf import (area_ratio, area_ratios, compute_erf,
                                  input_gradient_map, list_images, load_image,
                                  normalize_erf)
from mmreplk.analysis import erf_models
from mmreplk.errors import CheckpointError, DataNotFoundError
from mmreplk.testing.synthetic import write_images

ERF_TOOL = 'analysis_tools/analyze_erf.py'


def _write_images(folder, formats=('png', 'jpg', 'bmp')):
    """One synthetic image per format, and a file that is not an image."""
    for i, ext in enumerate(formats):
        write_images(folder, 1, size=40, seed=i, ext=ext)
        os.rename(osp.join(folder, f'synthetic_0000.{ext}'),
                  osp.join(folder, f'img{i}.{ext}'))
    with open(osp.join(folder, 'notes.txt'), 'w') as f:
        f.write('not an image')


# ----------------------------------------------------------------- one known conv
def test_erf_of_single_conv_is_its_kernel():
    """d out[c] / d x[ch, c + (i - 2, j - 2)] = w[0, ch, i, j]: the map is the kernel summed
    over input channels, placed around the centre, zero elsewhere."""
    conv = nn.Conv2d(3, 1, 5, padding=2, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.rand(1, 3, 5, 5) + 0.1)
    images = [torch.rand(3, 21, 17) + 0.5 for _ in range(4)]  # centre output > 0
    erf = compute_erf(conv, images)
    expected = np.zeros((21, 17))
    expected[10 - 2:10 + 3, 8 - 2:8 + 3] = conv.weight[0].sum(0).detach().double().numpy()
    np.testing.assert_allclose(erf, expected, rtol=1e-6, atol=1e-9)


def test_erf_relu_on_centre_and_gradient():
    """A negative centre contributes nothing; negative gradients are clipped to zero."""
    conv = nn.Conv2d(1, 1, 3, padding=1, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([[[[1., -1., 2.], [0., 3., -2.], [1., 1., 1.]]]]))
    pos = torch.ones(1, 9, 9)
    neg = -10 * torch.ones(1, 9, 9)
    np.testing.assert_array_equal(input_gradient_map(conv, neg), np.zeros((9, 9)))
    expected = np.zeros((9, 9))
    expected[3:6, 3:6] = np.clip(conv.weight[0, 0].detach().double().numpy(), 0, None)
    np.testing.assert_allclose(compute_erf(conv, [pos, neg]), expected / 2)


def test_compute_erf_restores_state_and_uses_eval_mode():
    bn_net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4))
    bn_net.train()
    with torch.no_grad():
        bn_net[1].running_mean.fill_(5.)
    bn_net[0].weight.requires_grad_(False)
    imgs = [torch.randn(3, 9, 9) for _ in range(2)]
    erf = compute_erf(bn_net, imgs)
    assert bn_net.training and not bn_net[0].weight.requires_grad
    assert bn_net[0].bias.requires_grad and bn_net[0].weight.grad is None
    assert bn_net[1].running_mean.eq(5.).all()  # eval mode: statistics untouched
    bn_net.eval()
    ref = sum(input_gradient_map(bn_net, im) for im in imgs) / 2
    np.testing.assert_allclose(erf, ref)
    with pytest.raises(ValueError, match='no image'):
        compute_erf(bn_net, [])


# ----------------------------------------------------------------- r(t)
def test_area_ratio_hand_counts():
    delta = np.zeros((11, 11))
    delta[5, 5] = 7.
    for t in (0.2, 0.5, 0.99):
        assert area_ratio(delta, t) == (1 / 121, 1)
    uniform = np.ones((11, 11))
    # raw map: more than t * 121 pixels needed
    assert area_ratio(uniform, 0.2, normalize=False) == (25 / 121, 5)   # 9 < 24.2 < 25
    assert area_ratio(uniform, 0.5, normalize=False) == (81 / 121, 9)   # 49 < 60.5 < 81
    assert area_ratio(uniform, 0.99, normalize=False) == (1.0, 11)
    # a uniform map is unchanged by the log-and-rescale normalization
    np.testing.assert_allclose(normalize_erf(uniform * 9.), uniform)
    np.testing.assert_allclose(normalize_erf(np.array([[0., 9., 99.]])),
                               [[0., 0.5, 1.]])
    r = area_ratios(np.ones((5, 7)), (0.2, 0.99))
    assert r[0.2] == pytest.approx(9 / 35) and r[0.99] == 1.0


def test_area_ratio_of_a_single_conv_erf():
    """The ERF of one uniform 5x5 conv is a 5x5 square: r(0.99) is 25 / area."""
    conv = nn.Conv2d(3, 2, 5, padding=2, bias=False)
    nn.init.constant_(conv.weight, 0.1)
    erf = compute_erf(conv, [torch.rand(3, 15, 15) + 0.1])
    assert area_ratio(erf, 0.99) == (25 / 225, 5)
    assert area_ratio(erf, 0.3) == (9 / 225, 3)


# ----------------------------------------------------------------- images
def test_list_and_load_images(tmp_path):
    folder = str(tmp_path / 'imgs')
    _write_images(folder)
    paths = list_images(folder)
    assert [osp.basename(p) for p in paths] == ['img0.png', 'img1.jpg', 'img2.bmp']
    x = load_image(paths[0], (32, 24), mean=(0, 0, 0), std=(1, 1, 1))
    assert x.shape == (3, 32, 24) and x.dtype == torch.float32
    assert 0 <= x.min() and x.max() <= 255
    y = load_image(paths[0], 16)
    assert y.shape == (3, 16, 16) and y.abs().max() < 3


def test_synthetic_images(tmp_path):
    """Full-range RGB images whose power spectrum falls with frequency (1/f noise:
    far more power at low frequencies than white noise has)."""
    from PIL import Image
    paths = write_images(str(tmp_path / 's'), 3, size=32, seed=1)
    assert list_images(str(tmp_path / 's')) == paths
    with Image.open(paths[0]) as im:
        arr = np.asarray(im).astype(np.float64)
    assert arr.shape == (32, 32, 3) and arr.min() <= 1 and arr.max() >= 254
    power = np.abs(np.fft.fft2(arr.mean(-1) - arr.mean())) ** 2
    low, high = power[1:3, 1:3].mean(), power[8:16, 8:16].mean()
    assert low > 20 * high


def test_empty_or_missing_folder_is_a_clear_error(tmp_path):
    empty = tmp_path / 'empty'
    empty.mkdir()
    (empty / 'readme.txt').write_text('x')
    with pytest.raises(DataNotFoundError, match='no image found'):
        list_images(str(empty))
    with pytest.raises(DataNotFoundError, match='does not exist'):
        list_images(str(tmp_path / 'missing'))
    analyze_erf = import_tool(ERF_TOOL)
    with pytest.raises(DataNotFoundError, match='no image found'):
        analyze_erf.main(['--images', str(empty), '--arch', json.dumps(TINY_ARCH),
                          '--out-dir', str(tmp_path / 'out')])


# ----------------------------------------------------------------- RepLKNet and the tool
def test_replknet_erf_within_theoretical_receptive_field():
    """Every nonzero gradient lies within the theoretical receptive field of the centre,
    computed by hand from the arch (docs/design.md, "Architecture")."""
    from mmreplk.models import RepLKNet
    torch.manual_seed(0)
    model = RepLKNet(arch=TINY_ARCH, out_indices=(3, ))
    size = 128  # 4x4 last map: its centre (2, 2) maps exactly onto pixel (64, 64)
    erf = compute_erf(model, [torch.randn(3, size, size) for _ in range(2)])
    # (kernel, stride) of every conv on the centre's path, in order
    layers = [(3, 2), (3, 1), (1, 1), (3, 2)]
    kernels = TINY_ARCH['large_kernel_sizes']
    for i, (n, k) in enumerate(zip(TINY_ARCH['layers'], kernels)):
        layers += [(1, 1), (max(k, 3), 1), (1, 1), (1, 1), (1, 1)] * n
        if i < 3:
            layers += [(1, 1), (3, 2)]
    rf, jump = 1, 1
    for k, s in layers:
        rf += (k - 1) * jump
        jump *= s
    ys, xs = np.nonzero(erf)
    assert erf.sum() > 0
    centre = size // 2
    assert jump == 32 and rf % 2 == 1
    assert np.abs(ys - centre).max() <= rf // 2
    assert np.abs(xs - centre).max() <= rf // 2
    assert erf[centre - 2:centre + 3, centre - 2:centre + 3].sum() > 0


def test_analyze_erf_tool(tmp_path, capsys):
    analyze_erf = import_tool(ERF_TOOL)
    folder = str(tmp_path / 'imgs')
    _write_images(folder)
    out = str(tmp_path / 'out')
    arch = json.dumps(TINY_ARCH)
    torch.manual_seed(0)
    res = analyze_erf.main(['--images', folder, '--arch', arch, '--resnet', '18',
                            '--size', '64', '--out-dir', out,
                            '--json', str(tmp_path / 'r.json')])
    text = capsys.readouterr().out
    assert 'high-contribution area ratio' in text and '3/3' in text  # progress bar
    files = sorted(os.listdir(out))
    assert 'erf_resnet18.npy' in files and 'erf_resnet18.png' in files
    assert 'erf_comparison.png' in files
    npys = [f for f in files if f.endswith('.npy')]
    assert len(npys) == 2
    for f in npys:
        erf = np.load(osp.join(out, f))
        assert erf.shape == (64, 64) and (erf >= 0).all() and erf.sum() > 0
    assert json.load(open(tmp_path / 'r.json')) == json.loads(json.dumps(res))
    for name, ratios in res.items():
        vals = [ratios[str(t)] for t in (0.2, 0.3, 0.5, 0.99)]
        assert all(0 < v <= 1 for v in vals) and vals == sorted(vals), name
        # the printed numbers are the library's, on the saved map
        erf = np.load(osp.join(out, f'erf_{erf_models._safe(name)}.npy'))
        assert vals[-1] == pytest.approx(area_ratio(erf, 0.99)[0])
    # the comparison mode re-reads saved maps
    res2 = analyze_erf.main(['--compare'] + [osp.join(out, f) for f in npys] +
                            ['--titles', 'a', 'b', '--out-dir', str(tmp_path / 'cmp')])
    assert sorted(res2) == ['a', 'b']
    assert osp.isfile(tmp_path / 'cmp' / 'erf_comparison.png')


def test_load_backbone_weights(tmp_path):
    """--checkpoint: RepLKNet files through the format converter, other backbones through
    mmengine's loader (prefixes removed, head keys ignored, missing keys an error)."""
    src = erf_models.build_replknet(TINY_ARCH)
    for p in src.state_dict().values():
        if p.is_floating_point():
            p.copy_(torch.randn_like(p).abs())
    path = str(tmp_path / 'replk.pth')
    torch.save({'state_dict': {f'backbone.{k}': v for k, v in src.state_dict().items()}},
               path)
    dst = erf_models.build_replknet(TINY_ARCH)
    erf_models.load_backbone_weights(dst, path)
    for k, v in src.state_dict().items():
        assert torch.equal(dst.state_dict()[k], v), k

    res = erf_models.build_resnet(18)
    sd = {f'module.backbone.{k}': torch.randn_like(v.float()).to(v.dtype)
          for k, v in res.state_dict().items()}
    sd['module.fc.weight'] = torch.zeros(10, 512)
    torch.save({'state_dict': sd}, str(tmp_path / 'r18.pth'))
    res2 = erf_models.build_resnet(18)
    erf_models.load_backbone_weights(res2, str(tmp_path / 'r18.pth'))
    prefix = len('module.backbone.')
    assert all(torch.equal(res2.state_dict()[k[prefix:]], v) for k, v in sd.items()
               if k != 'module.fc.weight')
    del sd['module.backbone.conv1.weight']
    torch.save(sd, str(tmp_path / 'bad.pth'))
    with pytest.raises(CheckpointError, match=r'1 weights .* not in .*conv1\.weight'):
        erf_models.load_backbone_weights(res2, str(tmp_path / 'bad.pth'))
