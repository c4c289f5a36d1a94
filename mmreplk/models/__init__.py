"""RepLKNet models: the backbone and ImageNet classifier, their arch table, weight loading
and re-parameterization. Needs torch, mmengine and mmcv (``mmcv.cnn`` only: mmcv-lite, the
build without compiled ops, is enough); never imports mmseg or mmdet."""
from .arch import ARCH_ZOO, arch_name, infer_arch, resolve_arch
from .backbones import RepLKNet, RepLKNetClassifier
from .reparam import reparameterize_state_dict
from .weights import (ConversionReport, describe_mismatch, extract_replknet_state_dict,
                      load_matching, load_pretrained, load_replknet_state_dict)

__all__ = ['ARCH_ZOO', 'RepLKNet', 'RepLKNetClassifier', 'ConversionReport', 'arch_name',
           'describe_mismatch',
           'infer_arch', 'resolve_arch', 'extract_replknet_state_dict', 'load_matching', 'load_pretrained',
           'load_replknet_state_dict', 'reparameterize_state_dict']
