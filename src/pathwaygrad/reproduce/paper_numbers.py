"""The paper's published figures (Khakzar et al. 2021), as quoted in ``docs`` of this project.

Units: IoU and dead shares in percent; accuracies in percent; LeRF drops as fractions.
"""

from __future__ import annotations

# 3.1 Pathway analysis, VGG-16 on ImageNet, sparsity 90: IoU % (upper triangle) and dead share %.
OVERLAP_METHODS = ("neuron_intgrad", "neuron_mct", "dgr_ones", "dgr_random", "greedy", "random")
IOU_AT_90 = {
    ("neuron_intgrad", "neuron_mct"): 65.91,
    ("neuron_intgrad", "dgr_ones"): 29.59,
    ("neuron_intgrad", "dgr_random"): 2.28,
    ("neuron_intgrad", "greedy"): 5.26,
    ("neuron_intgrad", "random"): 6.68,
    ("neuron_mct", "dgr_ones"): 29.84,
    ("neuron_mct", "dgr_random"): 2.29,
    ("neuron_mct", "greedy"): 5.26,
    ("neuron_mct", "random"): 6.76,
    ("dgr_ones", "dgr_random"): 2.35,
    ("dgr_ones", "greedy"): 5.26,
    ("dgr_ones", "random"): 6.80,
    ("dgr_random", "greedy"): 2.25,
    ("dgr_random", "random"): 4.10,
    ("greedy", "random"): 9.74,
}
DEAD_SHARE_AT_90 = {
    "neuron_intgrad": 0.00,
    "neuron_mct": 0.00,
    "dgr_ones": 7.79,
    "dgr_random": 66.99,
    "greedy": 68.78,
    "random": 59.51,
}

# 3.4 Sanity checks, ResNet-50, pathway sparsity 70: signed Spearman after randomising fc only.
SANITY_SPEARMAN_AFTER_FC = {
    "gradient": 0.329,
    "guided_backprop": 0.996,
    "grad_cam": 0.710,
    "input_x_gradient": 0.321,
    "integrated_gradients": 0.295,
    "neuron_mct": 0.279,
    "neuron_intgrad": 0.141,
}

# 3.5 ROAR on CIFAR-10, ResNet-8: test accuracy % after removing t % of pixels (base 84.36 %).
ROAR_BASE_ACCURACY = 84.36
ROAR_FRACTIONS = (10, 30, 50, 70, 90)
ROAR_ACCURACY = {
    "gradient": (79.10, 81.10, 82.81, 82.26, 75.50),
    "guided_backprop": (79.24, 76.83, 78.02, 78.36, 74.78),
    "grad_cam": (74.65, 69.99, 63.27, 58.03, 47.58),
    "input_x_gradient": (79.22, 79.85, 82.54, 81.58, 74.47),
    "integrated_gradients": (80.80, 81.98, 83.37, 83.23, 80.90),
    "neuron_mct": (74.43, 67.80, 65.48, 57.87, 44.39),
    "neuron_intgrad": (75.11, 67.33, 61.71, 56.90, 47.98),
}

# 3.6 LeRF on CIFAR-10: mean relative drop of the class probability at 10 % least important removed.
LERF_DROP_AT_10 = {
    "gradient": 0.540,
    "guided_backprop": 0.387,
    "grad_cam": 0.148,
    "input_x_gradient": 0.247,
    "integrated_gradients": 0.246,
    "neuron_mct": 0.152,
    "neuron_intgrad": 0.150,
}
LERF_AREA_0_10 = {
    "gradient": 0.0371,
    "grad_cam": 0.0110,
    "neuron_mct": 0.0093,
    "neuron_intgrad": 0.0093,
}
