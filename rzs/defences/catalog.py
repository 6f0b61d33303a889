"""The paper's defences with the authors' settings, in the order of their code.

The authors' code (RepresentationMetrics, `code/networks/model.py`,
`get_defence`, defences 1-11) configures IBM ART (about v1.2) preprocessors;
each parameter's source below names the ART class and argument it comes from.
What rzs does differently from that code, and why, is in docs/deviations.md.
"""

from rzs.defences import training_data
from rzs.defences.adversarial_training import AdversarialTraining
from rzs.defences.input_stages import (
    FeatureSqueezing,
    JpegCompression,
    MedianSmoothing,
    ThermometerEncoding,
)
from rzs.defences.registry import Defence, register
from rzs.defences.total_variance import TotalVarianceMinimisation

AUTHORS = "authors' code, model.py get_defence()"
ART_PGD = f"{AUTHORS} defence 1: ART ProjectedGradientDescent"

register(
    Defence(
        name="adversarial_training",
        summary="Each batch trains clean, then as PGD adversarial images (L-inf).",
        params={"eps": 8 / 255, "step_size": 2 / 255, "iterations": 10},
        sources={
            "eps": f"{ART_PGD}(eps=8) on 0-255 pixels",
            "step_size": f"{ART_PGD}(eps_step=2) on 0-255 pixels",
            "iterations": f"{ART_PGD}(max_iter=10, num_random_init=True)",
        },
        training_wrapper=AdversarialTraining,
    )
)

for suffix, test_time_only, number in (("_test", True, 2), ("", False, 3)):
    register(
        Defence(
            name=f"feature_squeezing{suffix}",
            summary="Reduces every value to 5 bits (32 levels of [0, 255]).",
            params={"bit_depth": 5},
            sources={"bit_depth": f"{AUTHORS} defence {number}: ART FeatureSqueezing(bit_depth=5)"},
            test_time_only=test_time_only,
            input_stage=FeatureSqueezing,
        )
    )

for suffix, test_time_only, number in (("_test", True, 4), ("", False, 5)):
    register(
        Defence(
            name=f"spatial_smoothing{suffix}",
            summary="Median filter over 3x3 windows, per channel.",
            params={"window_size": 3},
            sources={
                "window_size": f"{AUTHORS} defence {number}: ART SpatialSmoothing(window_size=3)"
            },
            test_time_only=test_time_only,
            input_stage=MedianSmoothing,
        )
    )

register(
    Defence(
        name="jpeg_compression",
        summary="JPEG encode-decode at quality 75, in training and at test time.",
        params={"quality": 75},
        sources={
            "quality": f"{AUTHORS} defence 6: ART JpegCompression(quality=75), fit and predict"
        },
        input_stage=JpegCompression,
    )
)

register(
    Defence(
        name="gaussian_augmentation",
        summary="Training set doubled with Gaussian-noise copies (sigma 1 on 0-255).",
        params={"sigma": 1.0, "ratio": 1.0},
        sources={
            "sigma": f"{AUTHORS} defence 7: ART GaussianAugmentation(sigma=1.0) on 0-255 pixels",
            "ratio": f"{AUTHORS} defence 7: ART GaussianAugmentation(augmentation=True, ratio=1.0)",
        },
        training_set=training_data.gaussian_augmentation,
    )
)

register(
    Defence(
        name="label_smoothing",
        summary="Targets 0.9 for the true class, the rest shared by the others.",
        params={"max_value": 0.9},
        sources={"max_value": f"{AUTHORS} defence 8: ART LabelSmoothing(max_value=0.9)"},
        targets=training_data.label_smoothing,
    )
)

register(
    Defence(
        name="thermometer_encoding",
        summary="Each value becomes 16 binary levels (C -> 16 C channels).",
        params={"levels": 16},
        sources={
            "levels": f"{AUTHORS} defence 9: ART ThermometerEncoding(num_space=16), 3 -> 48 channels"
        },
        input_stage=ThermometerEncoding,
        # The encoded values are already 0 or 1, what the authors' network saw.
        network_statistics=(0.0, 1.0),
    )
)

for suffix, test_time_only, number in (("_test", True, 10), ("", False, 11)):
    art = f"{AUTHORS} defence {number}: ART TotalVarMin"
    register(
        Defence(
            name=f"total_variance_minimisation{suffix}",
            summary="Reconstructs each channel with low total variation from 30% of its values.",
            params={"keep_probability": 0.3, "norm": 2, "weight": 0.5, "iterations": 10},
            sources={
                "keep_probability": f"{art}(prob=0.3)",
                "norm": f"{art}(norm=2)",
                "weight": f"{art}(lamb=0.5)",
                "iterations": f"{art}(solver='L-BFGS-B', max_iter=10)",
            },
            test_time_only=test_time_only,
            input_stage=TotalVarianceMinimisation,
        )
    )
