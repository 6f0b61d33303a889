"""Adversarial training with PGD (Madry et al. 2018), as in the authors' code.

For every batch the network takes one optimiser step on the clean batch, then
one on a PGD adversarial version of it made against the just-updated weights:
the two `train_on_batch` calls of the authors' `fit_adversarial_traning`, whose
attack is IBM ART's `ProjectedGradientDescent`.

Gradients with respect to the input images need `tf.GradientTape`, so this
module is TensorFlow-only.
"""

import keras
import tensorflow as tf

from rzs.defences.input_stages import PIXEL_MAX


def projected_gradient_descent(model, pixels, one_hot, eps, step_size, iterations, seed_generator):
    """Untargeted L-inf PGD with a random start, inside the TensorFlow graph.

    Args:
        model: raw pixels in [0, 255] -> class probabilities (the model contract).
        pixels: float32 tensor `(batch, height, width, channels)` in [0, 255].
        one_hot: float tensor `(batch, num_classes)`, the true labels.
        eps, step_size: the ball's radius and each signed step, on the [0, 1] scale.
        iterations: number of steps.
        seed_generator: `keras.random.SeedGenerator` of the random start.

    Returns:
        float32 tensor like `pixels`: within eps of it and in [0, 255], with no gradient.
    """
    eps_pixels, step_pixels = eps * PIXEL_MAX, step_size * PIXEL_MAX
    lowest = tf.maximum(pixels - eps_pixels, 0.0)
    highest = tf.minimum(pixels + eps_pixels, PIXEL_MAX)
    noise = keras.random.uniform(
        tf.shape(pixels), minval=-eps_pixels, maxval=eps_pixels, seed=seed_generator
    )
    adversarial = tf.clip_by_value(pixels + noise, lowest, highest)
    for _ in range(iterations):
        with tf.GradientTape() as tape:
            tape.watch(adversarial)
            probabilities = model(adversarial, training=False)
            loss = keras.losses.categorical_crossentropy(one_hot, probabilities)
        gradient = tape.gradient(loss, adversarial)
        adversarial = adversarial + step_pixels * tf.sign(gradient)
        adversarial = tf.clip_by_value(adversarial, lowest, highest)
    return tf.stop_gradient(adversarial)


class AdversarialTraining(keras.Model):
    """Trains `training_model` on each clean batch and then on its PGD version.

    Compile and fit this model instead of `training_model`; the weights are
    `training_model`'s own, so afterwards `attacked_model` is the trained,
    adversarially robust inference model. Metrics average over both batches.

    Args:
        training_model: the model `fit` would train; its inputs are raw pixels
            or a dict with the raw pixels under "pixels".
        attacked_model: raw pixels -> class probabilities, sharing the weights
            (the same object as `training_model` for most networks).
        eps, step_size, iterations: PGD's settings, eps and step on the [0, 1] scale.
        seed: seed of the random starts.
    """

    def __init__(self, training_model, attacked_model, eps, step_size, iterations, seed, **kwargs):
        super().__init__(**kwargs)
        self.training_model = training_model
        self.attacked_model = attacked_model
        self.eps = eps
        self.step_size = step_size
        self.iterations = iterations
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=False):
        return self.training_model(inputs, training=training)

    def train_step(self, data):
        inputs, targets = data
        self._fit_batch(inputs, targets)
        takes_dict = isinstance(inputs, dict)
        pixels = inputs["pixels"] if takes_dict else inputs
        adversarial = projected_gradient_descent(
            self.attacked_model,
            pixels,
            targets,
            self.eps,
            self.step_size,
            self.iterations,
            self.seed_generator,
        )
        adversarial_inputs = {**inputs, "pixels": adversarial} if takes_dict else adversarial
        return self._fit_batch(adversarial_inputs, targets)

    def _fit_batch(self, inputs, targets):
        """One optimiser step on (inputs, targets); returns the running metrics."""
        weights = self.training_model.trainable_weights
        with tf.GradientTape() as tape:
            predictions = self(inputs, training=True)
            loss = self.compute_loss(x=inputs, y=targets, y_pred=predictions, training=True)
            scaled_loss = self.optimizer.scale_loss(loss)
        self.optimizer.apply(tape.gradient(scaled_loss, weights), weights)
        for metric in self.metrics:
            if metric.name == "loss":
                metric.update_state(loss)
        return self.compute_metrics(inputs, targets, predictions)
