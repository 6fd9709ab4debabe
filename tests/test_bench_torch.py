"""The plain-PyTorch twins of the benchmark families (recipes/runtime/bench_torch.py), at tiny
shapes: same trainable parameters as the Keras network, same output shape, and they learn."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="bench_torch's twins need PyTorch")
pytestmark = pytest.mark.skipif(torch is None, reason="PyTorch is not installed")

from recipes.runtime import bench_torch  # noqa: E402



@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny networks on shared cores: a second torch thread only waits for the first (100x slower here)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def build(family: str, **overrides):
    """The family's Keras model at a tiny shape, and one NumPy batch as its pipeline yields it."""
    import zoo
    from zoo import backbones

    rng = np.random.default_rng(0)
    images = lambda shape: rng.uniform(0, 255, (8, *shape)).astype("float32")
    labels = lambda classes: rng.integers(0, classes, 8).astype("int32")
    if family == "mnist_convnet":
        model = zoo.build("mnist_convnet", input_shape=(12, 12, 1), filters=(4, 8), dense_units=32, num_classes=3,
                           dropout=(0.1, 0.1))
        return model, (images((12, 12, 1)), labels(3))
    if family == "resnet20":
        model = zoo.build("resnet20", input_shape=(8, 8, 3), width=4, num_classes=3, **overrides)
        return model, (images((8, 8, 3)), labels(3))
    if family == "finetune_phase2":
        features = backbones.backbone("mobilenet_v2", weights=None, input_shape=(32, 32, 3))
        model = backbones.classifier(features, 3, input_shape=(16, 16, 1))  # resized and repeated to RGB inside
        if overrides.get("unfreeze", True):
            backbones.unfreeze_top(model, 2)
        return model, (images((16, 16, 1)), labels(3))
    if family == "char_lstm":
        model = zoo.build("char_lstm", vocab_size=11, units=(8, 8), embedding_dim=6)
        ids = rng.integers(0, 11, (8, 10)).astype("int32")
        return model, (ids, (ids + 1) % 11)  # a next token that can be learnt
    if family == "imdb_bilstm":
        model = zoo.build("imdb_bilstm", vocab_size=50, units=(8,), embedding_dim=8)
        ids = rng.integers(1, 50, (8, 12)).astype("int32")
        for row, length in enumerate((12, 3, 7, 1, 12, 5, 9, 2)):  # right-padded reviews of mixed lengths
            ids[row, length:] = 0
        return model, (ids, labels(2))
    if family == "char_gpt_small":
        model = zoo.build("char_gpt_small", vocab_size=11, sequence_length=8, embed_dim=16, depth=2, num_heads=2)
        ids = rng.integers(0, 11, (8, 8)).astype("int32")
        return model, (ids, (ids + 1) % 11)
    if family == "imdb_transformer":
        model = zoo.build("transformer_classifier_small", vocab_size=50, sequence_length=12, embed_dim=16,
                          depth=1, num_heads=2)
        ids = rng.integers(1, 50, (8, 12)).astype("int32")
        ids[1, 4:] = ids[3, 9:] = 0
        return model, (ids, labels(2))
    if family == "dcgan":
        return zoo.build("dcgan", latent_dim=8, image_shape=(8, 8, 1), width=4), (images((8, 8, 1)),)
    raise AssertionError(family)


def keras_count(weights) -> int:
    return int(sum(np.prod(weight.shape) for weight in weights))


def torch_counts(module) -> tuple[int, int, int]:
    """(trainable parameters, frozen parameters, BatchNorm running statistics) of a twin."""
    trainable = sum(parameter.numel() for parameter in module.parameters() if parameter.requires_grad)
    frozen = sum(parameter.numel() for parameter in module.parameters() if not parameter.requires_grad)
    statistics = sum(buffer.numel() for name, buffer in module.named_buffers() if name.endswith(("running_mean",
                                                                                                  "running_var")))
    return trainable, frozen, statistics


def lstm_hidden_biases(keras_model) -> int:
    """torch's second LSTM bias (b_hh, 4 * units per direction), which Keras does not have: the
    twin keeps it zeroed and frozen, so it is the one known extra in the frozen count."""
    from keras import layers

    total = 0
    for layer in keras_model.layers:
        if isinstance(layer, layers.Bidirectional):
            total += 2 * 4 * layer.forward_layer.units
        elif isinstance(layer, layers.LSTM):
            total += 4 * layer.units
    return total


@pytest.mark.parametrize("family", bench_torch.FAMILIES)
def test_twin_has_the_keras_parameters_and_output_shape(family):
    model, batch = build(family)
    network = bench_torch.twin(family, model)
    trainable, frozen, statistics = torch_counts(network)
    # Trainable parameters: exactly the Keras model's, for every family.
    assert trainable == keras_count(model.trainable_weights) > 0
    # Non-trainable: Keras's (BatchNorm moving statistics, frozen layers) is the twin's frozen
    # parameters plus its BatchNorm buffers, less torch's LSTM b_hh that Keras has no analogue of.
    extra = lstm_hidden_biases(model)
    assert frozen + statistics - extra == keras_count(model.non_trainable_weights)
    assert frozen >= extra
    tensors = bench_torch.to_torch(family, batch)
    network.eval()
    with torch.no_grad():
        output = network(torch.randn(8, network.latent_dim) if family == "dcgan" else tensors[0])
    if family == "dcgan":
        expected = model.generator(np.zeros((8, network.latent_dim), "float32")).shape
        assert tuple(output.permute(0, 2, 3, 1).shape) == tuple(expected)  # NCHW twin, NHWC Keras
        assert tuple(network.discriminator(tensors[0]).shape) == tuple(model.discriminator(batch[0]).shape)
    else:
        assert tuple(output.shape) == tuple(model(batch[0]).shape)
    assert torch.isfinite(output).all()


def test_resnet_projection_shortcut_and_weight_decay():
    model, batch = build("resnet20", shortcut="projection")
    network = bench_torch.twin("resnet20", model)
    assert torch_counts(network)[0] == keras_count(model.trainable_weights)
    assert torch_counts(network)[2] == keras_count(model.non_trainable_weights)
    # Every convolution carries Keras's L2 kernel penalty (1e-4) into the torch loss.
    convolutions = [layer for layer in model._flatten_layers() if type(layer).__name__ == "Conv2D"]
    assert len(network.l2_penalties) == len(convolutions) > 19
    assert {factor for _, factor in network.l2_penalties} == {1e-4}


def calibrate_frozen_norms(network, images):
    """A random MobileNetV2 with Keras's initial BatchNorm statistics (mean 0, variance 1) has
    features of about 1e-9 (in Keras too), from which nothing learns; give its frozen BatchNorms
    the statistics of the batch, as pretrained ones would have, before fine-tuning the top."""
    norms = [module for module in network.modules() if isinstance(module, torch.nn.BatchNorm2d)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # a cumulative average: after one pass, the batch's statistics
        norm.train()
    with torch.no_grad():
        network(images)
    for norm in norms:
        norm.eval()


@pytest.mark.parametrize("family,steps,rate", [
    ("mnist_convnet", 40, 1e-2), ("resnet20", 15, 1e-2), ("finetune_phase2", 15, 3e-3), ("char_lstm", 30, 5e-2),
    ("imdb_bilstm", 30, 2e-2), ("char_gpt_small", 20, 1e-2), ("imdb_transformer", 20, 1e-2)])
def test_trainer_learns_one_fixed_batch(family, steps, rate):
    torch.manual_seed(0)
    model, batch = build(family)
    network = bench_torch.twin(family, model)
    tensors = bench_torch.to_torch(family, batch)
    if family == "finetune_phase2":
        calibrate_frozen_norms(network, tensors[0])
    step = bench_torch.trainer(family, network, learning_rate=rate)
    losses = [step(tensors) for _ in range(steps)]
    assert all(isinstance(loss, float) and np.isfinite(loss) for loss in losses)
    assert min(losses[-3:]) < 0.5 * losses[0], losses


def test_phase2_trains_only_the_top_and_keeps_batchnorm_frozen():
    model, batch = build("finetune_phase2")
    network = bench_torch.twin("finetune_phase2", model)
    norms = [module for module in network.modules() if isinstance(module, torch.nn.BatchNorm2d)]
    statistics = [norm.running_mean.clone() for norm in norms]
    before = {name: parameter.detach().clone() for name, parameter in network.named_parameters()}
    step = bench_torch.trainer("finetune_phase2", network)
    assert norms and not any(norm.training for norm in norms)  # train() leaves frozen BatchNorms in eval mode
    step(bench_torch.to_torch("finetune_phase2", batch))
    for name, parameter in network.named_parameters():
        changed = not torch.equal(before[name], parameter.detach())
        assert changed == parameter.requires_grad, name
    assert all(torch.equal(old, norm.running_mean) for old, norm in zip(statistics, norms))


def test_phase2_twin_refuses_a_model_that_was_not_unfrozen():
    model, _ = build("finetune_phase2", unfreeze=False)
    with pytest.raises(ValueError, match="unfreeze_top"):
        bench_torch.twin("finetune_phase2", model)


def test_dcgan_step_updates_both_networks():
    torch.manual_seed(0)
    model, batch = build("dcgan")
    network = bench_torch.twin("dcgan", model)
    before = {name: parameter.detach().clone() for name, parameter in network.named_parameters()}
    step = bench_torch.trainer("dcgan", network, learning_rate=2e-4)
    loss = step(bench_torch.to_torch("dcgan", batch))
    assert np.isfinite(loss) and loss > 0
    for part in ("generator", "discriminator"):
        changed = [name for name, parameter in network.named_parameters()
                   if name.startswith(part) and not torch.equal(before[name], parameter.detach())]
        total = [name for name, _ in network.named_parameters() if name.startswith(part)]
        assert changed == total, part


def test_bilstm_ignores_padding():
    """Padded steps change nothing: the same review with more padding gives the same logits."""
    model, (ids, _) = build("imdb_bilstm")
    network = bench_torch.twin("imdb_bilstm", model).eval()
    short = torch.tensor(ids[1:2, :6], dtype=torch.int64)  # 3 tokens and 3 pads
    longer = torch.tensor(ids[1:2], dtype=torch.int64)  # the same 3 tokens and 9 pads
    with torch.no_grad():
        torch.testing.assert_close(network(short), network(longer))
        assert not torch.allclose(network(short), network(torch.tensor(ids[0:1, :6], dtype=torch.int64)))


def test_unknown_family_is_refused():
    with pytest.raises(ValueError, match="mnist_convnet"):
        bench_torch.to_torch("lenet", (np.zeros((1, 2)),))
