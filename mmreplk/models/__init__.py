from .backbones import RepLKNet, RepLKNetClassifier
from .checkpoint import (ConversionReport, arch_name, extract_replknet_state_dict,
                         infer_arch, load_pretrained, load_replknet_state_dict)
from .reparam import reparameterize_state_dict

__all__ = ['RepLKNet', 'RepLKNetClassifier', 'ConversionReport', 'arch_name',
           'infer_arch',
           'extract_replknet_state_dict', 'load_pretrained',
           'load_replknet_state_dict', 'reparameterize_state_dict']
