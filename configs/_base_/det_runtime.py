# Runtime shared by the COCO configs: mmdet's default runtime with atomic
# checkpoints (mmreplk's 'atomic_local' file backend, last 3 kept).
_base_ = ['mmdet::_base_/default_runtime.py']

default_hooks = dict(
    checkpoint=dict(
        interval=1, max_keep_ckpts=3,
        backend_args=dict(backend='atomic_local')))
