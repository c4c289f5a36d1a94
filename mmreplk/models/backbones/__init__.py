from .replknet import RepLKNet, RepLKNetClassifier

__all__ = ['RepLKNet', 'RepLKNetClassifier']
