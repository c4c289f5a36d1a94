# What every RepLKNet config shares: the plugin imports and the 31B backbone.
# `mmreplk` registers the backbone; `mmreplk.engine` registers the
# checkpoint hook, the 'atomic_local' checkpoint backend and the layer-decay
# optimizer constructor, and makes every checkpoint load safely
# (torch.load(weights_only=True), mmengine runner checkpoints included).
# `replknet_31b` is a plain variable, not a model: mmengine lets only one base
# of a config define `model` (mmseg's / mmdet's model base does), so the model
# bases build `model.backbone` from it. Change a config's backbone through
# `model.backbone`; editing this variable in a config has no effect.
custom_imports = dict(
    imports=['mmreplk', 'mmreplk.engine'], allow_failed_imports=False)
replknet_31b = dict(
    type='mmreplk.RepLKNet',
    arch='31B',
    out_indices=(0, 1, 2, 3),
    norm_cfg=dict(type='SyncBN', requires_grad=True),
    with_cp=True,
    init_cfg=dict(
        type='Pretrained',
        checkpoint='https://download.openmmlab.com/mmclassification/v0/'
        'replknet/replknet-31B_3rdparty_in1k_20221118-fd08e268.pth',
        prefix='backbone.'))
