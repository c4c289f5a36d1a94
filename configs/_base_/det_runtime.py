# Runtime shared by the COCO configs: mmdet's default runtime with kill-proof
# checkpoints (mmreplk's SafeCheckpointHook: atomic writes, the new checkpoint
# complete before an old one is removed; last 3 kept).
_base_ = ['mmdet::_base_/default_runtime.py']

default_hooks = dict(
    checkpoint=dict(type='mmreplk.SafeCheckpointHook', interval=1, max_keep_ckpts=3))
