"""Analysis tools of the paper: complexity (params / FLOPs), throughput and the effective
receptive field. Only torch and numpy are imported here; mmseg / mmdet / mmengine's
analysis are imported lazily by the functions that need them."""
from .complexity import (complexity_report, conv2d_macs, count_flops, count_params,
                         format_report, switch_to_deploy)
from .erf import (area_ratio, area_ratios, compute_erf, list_images, load_image,
                  normalize_erf, plot_erf_comparison, save_heatmap)

__all__ = [
    'complexity_report', 'conv2d_macs', 'count_flops', 'count_params', 'format_report',
    'switch_to_deploy', 'area_ratio', 'area_ratios', 'compute_erf', 'list_images',
    'load_image', 'normalize_erf', 'plot_erf_comparison', 'save_heatmap'
]
