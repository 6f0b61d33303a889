"""A small Vision Transformer (Dosovitskiy et al., 2021); an rzs addition."""

import keras
from keras import layers

from rzs.models.recipe import Recipe, piecewise
from rzs.models.registry import kernel_regularizer, probabilities, register, scaled

RECIPE = Recipe(
    optimizer="adam",
    learning_rate=5e-4,
    schedule=piecewise([100, 150], [5e-4, 5e-5, 5e-6]),
    source=(
        "rzs addition, not in the authors' code. Adam as for the authors' other "
        "Adam-trained network (AllConv, with its L2 1e-4); lr 5e-4, a common "
        "choice for small ViTs trained from scratch without warm-up, divided "
        "by 10 at 50% and 75% of 200 epochs; batch 64 as for every network."
    ),
)

PATCH_SIZE = 4
HEADS = 3
HEAD_DIM = 64
DEPTH = 6
MLP_RATIO = 4
DROPOUT = 0.1


@keras.saving.register_keras_serializable(package="rzs")
class PositionEmbedding(layers.Layer):
    """Adds a learned vector to each token position of (batch, tokens, dim) inputs."""

    def __init__(self, embeddings_initializer="random_normal", **kwargs):
        super().__init__(**kwargs)
        self.embeddings_initializer = keras.initializers.get(embeddings_initializer)

    def build(self, input_shape):
        self.embeddings = self.add_weight(
            shape=tuple(input_shape[1:]),
            initializer=self.embeddings_initializer,
            name="embeddings",
        )

    def call(self, inputs):
        return inputs + self.embeddings

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "embeddings_initializer": keras.initializers.serialize(
                    self.embeddings_initializer
                )
            }
        )
        return config


@register("vit", recipe=RECIPE)
def vit(inputs, num_classes, *, width, weight_decay):
    """ViT with 4x4 patches, embedding dim 192, 6 blocks of 3 heads, MLP 768.

    32x32 images become 8x8 = 64 tokens and 28x28 images 7x7 = 49. Blocks
    are pre-norm (LayerNorm, multi-head self-attention, residual; LayerNorm,
    GELU MLP, residual) with dropout 0.1, as in the keras.io example "Image
    classification with Vision Transformer". Tokens are averaged instead of
    read from a class token, as in Beyer et al. (2022), "Better plain ViT
    baselines". `width` scales the size of each head, so the embedding
    dimension stays a multiple of the number of heads.
    """
    regularizer = kernel_regularizer(weight_decay)
    head_dim = scaled(HEAD_DIM, width)
    embedding_dim = HEADS * head_dim

    # A stride-4 4x4 convolution is a linear projection of each flat patch.
    patches = layers.Conv2D(
        embedding_dim,
        PATCH_SIZE,
        strides=PATCH_SIZE,
        kernel_regularizer=regularizer,
        name="patch_embedding",
    )(inputs)
    tokens = layers.Reshape((-1, embedding_dim))(patches)
    tokens = PositionEmbedding(
        keras.initializers.RandomNormal(stddev=0.02), name="position_embedding"
    )(tokens)
    tokens = layers.Dropout(DROPOUT)(tokens)
    for _ in range(DEPTH):
        x = layers.LayerNormalization(epsilon=1e-6)(tokens)
        x = layers.MultiHeadAttention(
            num_heads=HEADS,
            key_dim=head_dim,
            dropout=DROPOUT,
            kernel_regularizer=regularizer,
        )(x, x)
        tokens = layers.Add()([tokens, x])
        x = layers.LayerNormalization(epsilon=1e-6)(tokens)
        x = layers.Dense(
            MLP_RATIO * embedding_dim, activation="gelu", kernel_regularizer=regularizer
        )(x)
        x = layers.Dropout(DROPOUT)(x)
        x = layers.Dense(embedding_dim, kernel_regularizer=regularizer)(x)
        x = layers.Dropout(DROPOUT)(x)
        tokens = layers.Add()([tokens, x])
    tokens = layers.LayerNormalization(epsilon=1e-6)(tokens)
    features = layers.GlobalAveragePooling1D()(tokens)
    logits = layers.Dense(num_classes, kernel_regularizer=regularizer)(features)
    return probabilities(logits)
