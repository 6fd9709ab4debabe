"""The twins compute what the Keras networks compute: Keras's weights copied into a twin give
Keras's outputs (eval mode), which checks padding, masking, layer order and epsilons that a
parameter count and an output shape cannot see (recipes/runtime/bench_torch.py)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="bench_torch's twins need PyTorch")

from recipes.runtime import bench_torch  # noqa: E402
from tests.test_bench_torch import build, one_thread  # noqa: E402,F401  (one_thread: an autouse fixture)

def copy_graph_weights(keras_model, network):
    """Keras's weights into a graph twin, layer by layer in the graph's order (NHWC -> NCHW kernels)."""
    import keras
    from keras import layers

    from recipes.runtime.bench_torch_vision import _keras_layers

    for layer, module in zip(_keras_layers(keras_model), network.steps):
        if isinstance(layer, keras.Model):
            copy_graph_weights(layer, module)
            continue
        values = [torch.from_numpy(np.asarray(weight)) for weight in layer.weights]
        if isinstance(layer, layers.BatchNormalization):
            gamma, beta, mean, variance = values
            module.weight.data, module.bias.data = gamma, beta
            module.running_mean.data, module.running_var.data = mean, variance
        elif isinstance(layer, layers.Conv2DTranspose):  # Keras (h, w, out, in), torch (in, out, h, w)
            module[0].weight.data = values[0].permute(3, 2, 0, 1).contiguous()
        elif isinstance(layer, (layers.Conv2D, layers.DepthwiseConv2D, layers.Dense)):
            target = next(child for child in module.modules() if isinstance(child, (torch.nn.Conv2d, torch.nn.Linear)))
            kernel = values[0]
            if isinstance(layer, layers.DepthwiseConv2D):
                kernel = kernel.permute(2, 3, 0, 1).reshape(target.weight.shape)
            elif isinstance(layer, layers.Conv2D):
                kernel = kernel.permute(3, 2, 0, 1)
            else:
                kernel = kernel.T
            target.weight.data = kernel.contiguous()
            if len(values) > 1:
                target.bias.data = values[1]


def assert_same(torch_output, keras_output, tolerance=1e-4):
    expected = np.asarray(keras_output)
    np.testing.assert_allclose(torch_output.detach().numpy(), expected, rtol=10 * tolerance,
                               atol=tolerance * np.abs(expected).max())


def test_resnet_twin_with_keras_weights_computes_the_keras_outputs():
    model, (images, labels) = build("resnet20")
    network = bench_torch.twin("resnet20", model).eval()
    copy_graph_weights(model, network)
    with torch.no_grad():
        logits = network(bench_torch.to_torch("resnet20", (images, labels))[0])
    assert_same(torch.softmax(logits, -1), model(images, training=False))


def test_mobilenet_twin_with_keras_weights_computes_the_keras_features():
    """Grey 16x16 images repeated to RGB, resized to 32 and through MobileNetV2 (asymmetric
    stride-2 padding, depthwise convolutions, ReLU6, BatchNorm epsilon 1e-3) as Keras does.
    The backbone is compared in float64 from the same resized images: the small variances that
    keep random features from vanishing amplify float32 rounding (Keras resizes in float32
    whatever the policy) to a few per cent after 17 blocks, which no tolerance tells from a
    wrong layer."""
    import keras

    floatx, policy = keras.config.floatx(), keras.config.dtype_policy()
    keras.config.set_floatx("float64")  # the inputs' dtype
    keras.config.set_dtype_policy("float64")  # the layers' (the global policy, once made, no longer follows floatx)
    try:
        model, (images, labels) = build("finetune_phase2")
    finally:
        keras.config.set_floatx(floatx)
        keras.config.set_dtype_policy(policy)
    assert all(weight.dtype == "float64" for weight in model.get_layer("mobilenet_v2_backbone").weights)
    rng = np.random.default_rng(1)
    for layer in model._flatten_layers():  # statistics that keep the features from vanishing
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.moving_variance.assign(rng.uniform(0.01, 0.05, layer.moving_variance.shape))
    network = bench_torch.twin("finetune_phase2", model).eval().double()
    copy_graph_weights(model, network)
    assert [layer.name for layer in model.layers[1:4]] == ["grey_to_rgb", "resize", "mobilenet_v2_backbone"]
    resized = np.array(keras.Model(model.input, model.get_layer("resize").output)(images), "float64")
    with torch.no_grad():
        pixels = bench_torch.to_torch("finetune_phase2", (images, labels))[0].double()
        assert_same(network.steps[1](network.steps[0](pixels)).permute(0, 2, 3, 1), resized, 1e-6)
        features = network.steps[2](torch.from_numpy(resized).permute(0, 3, 1, 2))
        assert_same(features, model.get_layer("mobilenet_v2_backbone")(resized), 1e-9)


def test_dcgan_twin_with_keras_weights_computes_the_keras_images_and_logits():
    """Transposed convolutions with Keras's "same" cropping, BatchNorm, LeakyReLU, pixel rescaling.
    Keras flattens (h, w, c) and the twin (c, h, w): the Dense rows are permuted to match."""
    model, (images,) = build("dcgan")
    network = bench_torch.twin("dcgan", model).eval()
    generator, discriminator = model.generator, model.discriminator
    copy_graph_weights(generator, network.generator)
    copy_graph_weights(discriminator, network.discriminator)
    height, width, channels = generator.get_layer("to_map").target_shape
    to_channels_first = lambda values: values.reshape(-1, height, width, channels).permute(0, 3, 1, 2).reshape(
        values.shape[0], -1)
    project = network.generator.steps[0][0]
    project.weight.data = to_channels_first(project.weight.data.T).T.contiguous()
    norm = network.generator.steps[1]
    for name in ("weight", "bias", "running_mean", "running_var"):
        getattr(norm, name).data = to_channels_first(getattr(norm, name).data[None])[0].contiguous()
    height, width, channels = discriminator.get_layer("flatten").input.shape[1:]
    logit = network.discriminator.steps[-1][0]
    logit.weight.data = to_channels_first(logit.weight.data).contiguous()
    noise = np.random.default_rng(2).standard_normal((8, network.latent_dim)).astype("float32")
    with torch.no_grad():
        fake = network.generator(torch.from_numpy(noise))
        assert_same(fake.permute(0, 2, 3, 1), generator(noise, training=False))
        pixels = bench_torch.to_torch("dcgan", (images,))[0]
        assert_same(network.discriminator(pixels), discriminator(images, training=False))


def copy_lstm(keras_lstm, lstm, suffix=""):
    kernel, recurrent, bias = (torch.from_numpy(np.asarray(weight)) for weight in keras_lstm.weights)
    getattr(lstm, f"weight_ih_l0{suffix}").data = kernel.T.contiguous()  # gates i, f, c, o in both
    getattr(lstm, f"weight_hh_l0{suffix}").data = recurrent.T.contiguous()
    getattr(lstm, f"bias_ih_l0{suffix}").data = bias


def copy_dense(keras_dense, linear):
    linear.weight.data = torch.from_numpy(np.asarray(keras_dense.kernel)).T.contiguous()
    linear.bias.data = torch.from_numpy(np.asarray(keras_dense.bias))


def test_bilstm_twin_with_keras_weights_computes_the_keras_outputs_on_padded_reviews():
    """Packed sequences give what Keras's masking gives, backward direction included."""
    from keras import layers

    model, (ids, _) = build("imdb_bilstm")
    network = bench_torch.twin("imdb_bilstm", model).eval()
    network.embedding.weight.data = torch.from_numpy(np.asarray(model.get_layer("embedding").embeddings))
    wrapper = next(layer for layer in model.layers if isinstance(layer, layers.Bidirectional))
    copy_lstm(wrapper.forward_layer, network.lstms[0])
    copy_lstm(wrapper.backward_layer, network.lstms[0], "_reverse")
    copy_dense(next(layer for layer in model.layers if isinstance(layer, layers.Dense)), network.logits)
    with torch.no_grad():
        assert_same(torch.softmax(network(torch.from_numpy(ids.astype("int64"))), -1), model(ids, training=False))


@pytest.mark.parametrize("family", ["char_gpt_small", "imdb_transformer"])
def test_transformer_twin_with_keras_weights_computes_the_keras_outputs(family):
    from zoo.layers import TokenAndPositionEmbedding, TransformerBlock

    model, (ids, _) = build(family)
    network = bench_torch.twin(family, model).eval()
    embedding = next(layer for layer in model.layers if isinstance(layer, TokenAndPositionEmbedding))
    network.tokens.weight.data = torch.from_numpy(np.asarray(embedding.tokens.embeddings))
    network.positions.weight.data = torch.from_numpy(np.asarray(embedding.positions.embeddings))
    blocks = [layer for layer in model.layers if isinstance(layer, TransformerBlock)]
    as_matrix = lambda weight: torch.from_numpy(np.asarray(weight))
    for keras_block, block in zip(blocks, network.blocks):
        attention = keras_block.attention
        projections = (attention._query_dense, attention._key_dense, attention._value_dense)
        dim = keras_block.embed_dim
        block.qkv.weight.data = torch.cat([as_matrix(p.kernel).reshape(dim, dim).T for p in projections]).contiguous()
        block.qkv.bias.data = torch.cat([as_matrix(p.bias).reshape(dim) for p in projections])
        block.attention_output.weight.data = as_matrix(attention._output_dense.kernel).reshape(dim, dim).T.contiguous()
        block.attention_output.bias.data = as_matrix(attention._output_dense.bias).reshape(dim)
        for keras_norm, norm in ((keras_block.attention_norm, block.attention_norm),
                                 (keras_block.mlp_norm, block.mlp_norm)):
            norm.weight.data, norm.bias.data = as_matrix(keras_norm.gamma).reshape(dim), as_matrix(keras_norm.beta).reshape(dim)
        copy_dense(keras_block.mlp_hidden, block.mlp_hidden)
        copy_dense(keras_block.mlp_output, block.mlp_output)
    final = model.get_layer("final_norm")
    network.final_norm.weight.data = torch.from_numpy(np.asarray(final.gamma))
    network.final_norm.bias.data = torch.from_numpy(np.asarray(final.beta))
    copy_dense([layer for layer in model.layers if type(layer).__name__ == "Dense"][-1], network.head)
    with torch.no_grad():
        output = network(torch.from_numpy(ids.astype("int64")))
    assert_same(output if family == "char_gpt_small" else torch.softmax(output, -1), model(ids, training=False))
