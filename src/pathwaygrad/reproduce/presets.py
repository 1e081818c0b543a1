"""Settings of ``pathwaygrad reproduce``: the paper's (``paper``), a 30-minute one (``quick``) and
a seconds-long one on synthetic data (``tiny``, for tests)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

# Methods of each experiment (paper section 3). "{s}" is replaced by the pathway sparsity.
SALIENCY_METHODS = (
    "gradient",
    "input_x_gradient",
    "integrated_gradients",
    "guided_backprop",
    "grad_cam",
    "smoothgrad",
    "neuron_mct:sparsity={s}",
    "neuron_intgrad:sparsity={s}",
)
ROAR_METHODS = (
    "gradient",
    "guided_backprop",
    "integrated_gradients",
    "input_x_gradient",
    "grad_cam",
    "neuron_mct:sparsity={s}",
    "neuron_intgrad:sparsity={s}",
)


@dataclass(frozen=True)
class Preset:
    """Everything a reproduction run depends on (recorded in the report)."""

    name: str
    models: tuple[str, ...]  # pretrained CIFAR ResNets analysed (3.1, 3.3, 3.4, 3.6, 4)
    analysis_images: int  # 3.1 overlap and fidelity, first model
    other_model_images: int  # 3.1 on the other models
    eval_models: int | None = None  # how many models (from the first) get 3.3, 3.4, 3.6; None: all
    sparsities: tuple[float, ...] = (80.0, 90.0, 99.0)
    dgr_iterations: int = 1000
    dgr_lr: float = 0.01
    greedy_step: float = 1.0
    intgrad_steps: int = 10
    linearity_images: int = 20
    directions: int = 32
    decode_images: int = 3
    decode_steps: int = 256
    sweep_images: int = 4
    sweep_sparsities: tuple[float, ...] = (0.0, 70.0, 80.0, 85.0, 90.0, 95.0, 99.0)
    sanity_images: int = 1000
    sanity_inits: tuple[str, ...] = ("paper", "default")
    sanity_sparsity: float = 70.0  # the paper's, section 3.4
    perturbation_images: int = 1000
    pathway_sparsity: float = 90.0  # maps of pathway gradient in LeRF / MoRF and ROAR / KAR
    roar_preset: str = "paper"
    roar_epochs: int | None = None
    roar_train_subset: int | None = None
    roar_test_subset: int | None = None
    roar_fractions: tuple[float, ...] = (10.0, 30.0, 50.0, 70.0, 90.0)
    roar_repeats: int | None = None
    roar_model: str | None = None  # None: ResNet-8 of the evaluation preset
    expected_minutes: float = 0.0
    saliency_methods: tuple[str, ...] = SALIENCY_METHODS
    roar_methods: tuple[str, ...] = ROAR_METHODS
    sanity_methods: tuple[str, ...] = (
        "gradient",
        "guided_backprop",
        "grad_cam",
        "input_x_gradient",
        "integrated_gradients",
        "neuron_mct:sparsity={s}",
        "neuron_intgrad:sparsity={s}",
    )
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


PRESETS = {
    "paper": Preset(
        name="paper",
        models=("resnet20", "resnet56"),
        analysis_images=1000,
        other_model_images=1000,
        expected_minutes=60 * 40,
    ),
    "quick": Preset(
        name="quick",
        models=("resnet20", "resnet56"),
        eval_models=1,  # ResNet-56: overlap only (sweep, sanity, LeRF / MoRF in `paper`)
        analysis_images=100,
        other_model_images=24,
        dgr_iterations=100,
        dgr_lr=0.1,
        greedy_step=5.0,
        linearity_images=8,
        directions=16,
        decode_images=2,
        decode_steps=96,
        sanity_images=16,
        perturbation_images=100,
        roar_preset="quick",
        roar_fractions=(10.0, 50.0, 90.0),
        roar_epochs=4,
        roar_train_subset=2000,
        roar_test_subset=500,
        # the ROAR claim compares pathway gradient with Gradient, Guided Backprop and IG
        roar_methods=tuple(m for m in ROAR_METHODS if m not in ("input_x_gradient", "grad_cam")),
        expected_minutes=30,
        saliency_methods=tuple(m for m in SALIENCY_METHODS if m != "smoothgrad")
        + ("smoothgrad:nt_samples=8",),
    ),
    "tiny": Preset(
        name="tiny",
        models=("tiny",),
        analysis_images=6,
        other_model_images=0,
        dgr_iterations=3,
        dgr_lr=0.1,
        greedy_step=45.0,
        intgrad_steps=2,
        linearity_images=2,
        directions=4,
        decode_images=1,
        decode_steps=4,
        sweep_images=2,
        sweep_sparsities=(0.0, 90.0),
        sanity_images=4,
        sanity_inits=("paper",),
        perturbation_images=8,
        roar_preset="quick",
        roar_fractions=(50.0,),
        roar_epochs=1,
        roar_train_subset=100,
        roar_test_subset=60,
        roar_repeats=1,
        roar_model="vgg_tiny",
        expected_minutes=1,
        saliency_methods=(
            "gradient",
            "neuron_mct:sparsity={s}",
            "neuron_intgrad:sparsity={s},steps=2",
        ),
        roar_methods=("gradient", "neuron_mct:sparsity={s}"),
        sanity_methods=("gradient", "guided_backprop", "neuron_mct:sparsity={s}"),
    ),
}


def methods(templates, sparsity: float) -> str:
    """';'-joined method list for ``pathwaygrad evaluate`` with the pathway sparsity filled in."""
    return ";".join(t.format(s=f"{sparsity:g}") for t in templates)
