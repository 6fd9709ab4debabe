"""``FusedLSTM``: ``keras.layers.LSTM`` with a faster training path on TensorFlow's CPU.

    layer = zoo.layers.FusedLSTM(256, return_sequences=True)   # same arguments, same weights
    layer.set_weights(keras_lstm.get_weights())                # and back again

Keras 3 on TensorFlow runs an LSTM without cuDNN as a ``while_loop`` over the cell, and
autodiff differentiates that loop op by op. ``FusedLSTM`` keeps the weights and the results
of ``keras.layers.LSTM`` and replaces only the loop (``inner_loop``) with one written for
training: the inputs of every step are projected by one matmul before the loop, the loop does
only ``h @ recurrent_kernel`` and the gate math, and a hand-written backward pass
(``tf.custom_gradient``) runs the same short loop in reverse, leaving the weight and input
gradients to three large matmuls after it. See ``benchmarks/lstm_speed.py`` for the speed.
"""

from __future__ import annotations

import keras

FAST_PATH_TRACES = {"count": 0}  # how often the fast path was built; the tests read it


def _tensorflow_gpu_visible() -> bool:
    import tensorflow as tf

    return bool(tf.config.list_logical_devices("GPU"))


@keras.saving.register_keras_serializable(package="zoo")
class FusedLSTM(keras.layers.LSTM):
    """``keras.layers.LSTM`` (same constructor, variables and outputs) with a fast CPU path.

    The fast path runs in training, on the TensorFlow backend with no GPU visible (with one, the stock
    layer's cuDNN kernel is faster) when the layer has ``activation="tanh"``,
    ``recurrent_activation="sigmoid"``, ``recurrent_dropout=0``, ``unroll=False``,
    ``use_cudnn`` not ``True``, and not ``implementation=1`` with input dropout (one mask
    per gate). Biasless, stateful, masked, ``go_backwards`` and ``Bidirectional`` layers,
    initial states and mixed precision (the whole recurrence in the compute dtype, as Keras
    does) all take it. Anything else runs ``keras.layers.LSTM``'s own loop, unchanged; so
    does every call on JAX and PyTorch.

    Input dropout draws one mask per sequence from the layer's seed generator, applied to
    every step, as the stock layer does; with the same seed the masks are the same ones.

    Where the stock layer's training time goes (char_lstm, 2 x LSTM 256, batch 64 x 100, TF
    2.21 on 2 shared EPYC cores; TF profiler self time by op type, ``lstm_speed.py --profile``):
    matmuls 46% (per step x @ kernel and h @ recurrent_kernel forward, four small matmuls
    back, and AddN summing every step's weight gradients, 4% more); ~37% between kernels (the
    executor scheduling the many small ops of every step); gate math (Mul, Sigmoid, Tanh,
    Split, BiasAdd) only ~4%. Here four of the six per-step matmuls become four large ones and
    the AddN goes. Measured no faster, so not used: XLA-compiled loops or backward factors,
    projecting inside the loop.
    """

    def _fast_path_applies(self) -> bool:
        cell = self.cell
        return (keras.backend.backend() == "tensorflow"
                and cell.activation in (keras.activations.tanh, keras.ops.tanh)
                and cell.recurrent_activation in (keras.activations.sigmoid, keras.ops.sigmoid)
                and not cell.recurrent_dropout and not self.unroll and self.use_cudnn is not True
                and not (cell.implementation == 1 and cell.dropout)
                and not _tensorflow_gpu_visible())

    def inner_loop(self, sequences, initial_state, mask, training=False):
        # Inference keeps Keras's loop: its graph is the one exporters know (tf2onnx turns the fast
        # loop into an ONNX Loop whose types onnxruntime cannot infer), and the gain is in the backward pass.
        if not training or not self._fast_path_applies():
            return super().inner_loop(sequences, initial_state, mask, training=training)
        import tensorflow as tf

        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        FAST_PATH_TRACES["count"] += 1
        cell = self.cell
        dtype = cell.compute_dtype
        sequences = tf.cast(sequences, dtype)
        if training and cell.dropout:
            # The mask RNN.call prepared for this call: one per sequence, shared by every step.
            sequences = sequences * tf.expand_dims(cell.get_dropout_mask(sequences[:, 0, :]), 1)
        kernel = tf.cast(keras.ops.convert_to_tensor(cell.kernel), dtype)
        recurrent_kernel = tf.cast(keras.ops.convert_to_tensor(cell.recurrent_kernel), dtype)
        bias = (tf.cast(keras.ops.convert_to_tensor(cell.bias), dtype) if cell.use_bias
                else tf.zeros([4 * cell.units], dtype))
        h0, c0 = (tf.cast(state, dtype) for state in initial_state)

        inputs = tf.transpose(sequences, [1, 0, 2])  # time-major: the loop reads one step at a time
        step_mask = None if mask is None else tf.transpose(tf.cast(mask, tf.bool))[:, :, None]
        if self.go_backwards:
            inputs = tf.reverse(inputs, [0])
            step_mask = None if step_mask is None else tf.reverse(step_mask, [0])
        h_states, c_last = fused_lstm(inputs, h0, c0, kernel, recurrent_kernel, bias, step_mask)
        h_last = h_states[-1]
        if step_mask is None:
            outputs = h_states
        else:
            # Keras writes a masked step's output as zeros (zero_output_for_mask) or as the
            # previous output, which is the carried state once a real step has been seen and
            # zeros before: either way a 0/1 weight on the state, and the state is exact.
            seen = step_mask if self.zero_output_for_mask else tf.cumsum(tf.cast(step_mask, tf.int32), axis=0) > 0
            outputs = tf.where(seen, h_states, tf.zeros_like(h_states))
        last_output = outputs[-1]
        outputs = tf.transpose(outputs, [1, 0, 2]) if self.return_sequences else last_output[:, None, :]
        return last_output, outputs, [h_last, c_last]


def _forward_loop(projected, h0, c0, recurrent_kernel, step_mask):
    """The sequential part of the forward pass. Returns, stacked over the steps, the gates
    (input, forget, cell candidate, output) and tanh of the new cell state, which the backward
    pass reuses, and the (masked) states h and c."""
    import tensorflow as tf

    steps, dtype = tf.shape(projected)[0], projected.dtype
    projected = tf.TensorArray(dtype, size=steps).unstack(projected)
    mask_steps = None if step_mask is None else tf.TensorArray(tf.bool, size=steps).unstack(step_mask)

    def step(time, h, c, arrays):
        z_i, z_f, z_c, z_o = tf.split(projected.read(time) + tf.matmul(h, recurrent_kernel), 4, axis=1)
        gates = tf.sigmoid(z_i), tf.sigmoid(z_f), tf.tanh(z_c), tf.sigmoid(z_o)
        c_new = gates[1] * c + gates[0] * gates[2]
        tanh_c = tf.tanh(c_new)
        h_new = gates[3] * tanh_c
        if mask_steps is not None:
            keep_t = mask_steps.read(time)
            h_new, c_new = tf.where(keep_t, h_new, h), tf.where(keep_t, c_new, c)
        # A TensorArray write keeps a reference, no copy: storing beats recomputing later.
        values = (*gates, tanh_c, h_new, c_new)
        return time + 1, h_new, c_new, tuple(array.write(time, value) for array, value in zip(arrays, values))

    arrays = tuple(tf.TensorArray(dtype, size=steps) for _ in range(7))
    *_, arrays = tf.while_loop(lambda time, *_: time < steps, step, (tf.constant(0), h0, c0, arrays),
                               maximum_iterations=steps)
    return [array.stack() for array in arrays]


def _backward_loop(d_h_states, d_c_last, factors, carry_factors, recurrent_transposed, masked: bool):
    """The sequential part of the backward pass: every step's d(pre-activations), d h0, d c0.

    ``carry_factors`` holds per step ``[o * (1 - tanh(c)^2), keep * f]``, plus ``1 - keep``
    when masked (a masked step passes its state gradients straight through); ``factors``
    already carries the mask.
    """
    import tensorflow as tf

    steps, dtype = tf.shape(factors)[0], factors.dtype
    d_h_array = tf.TensorArray(dtype, size=steps).unstack(d_h_states)
    factor_array = tf.TensorArray(dtype, size=steps).unstack(factors)
    carry_array = tf.TensorArray(dtype, size=steps).unstack(carry_factors)

    def back(time, d_h, d_c, d_z_array):
        d_h = d_h + d_h_array.read(time)
        carry = tf.split(carry_array.read(time), 3 if masked else 2, axis=1)
        d_c_new = d_c + d_h * carry[0]
        d_z = tf.concat([d_c_new, d_c_new, d_c_new, d_h], axis=1) * factor_array.read(time)
        d_h_previous, d_c_previous = tf.matmul(d_z, recurrent_transposed), d_c_new * carry[1]
        if masked:
            d_h_previous, d_c_previous = d_h_previous + d_h * carry[2], d_c_previous + d_c * carry[2]
        return time - 1, d_h_previous, d_c_previous, d_z_array.write(time, d_z)

    _, d_h0, d_c0, d_z_array = tf.while_loop(
        lambda time, *_: time >= 0, back,
        (steps - 1, tf.zeros_like(d_c_last), d_c_last, tf.TensorArray(dtype, size=steps)), maximum_iterations=steps)
    return d_z_array.stack(), d_h0, d_c0


def fused_lstm(inputs, h0, c0, kernel, recurrent_kernel, bias, step_mask=None):
    """An LSTM over time-major ``inputs`` (steps, batch, features) with Keras's gate order
    (input, forget, cell, output), returning every step's hidden state and the last cell state.

    ``step_mask`` (steps, batch, 1) bool keeps the previous states where it is False, as
    Keras's masked loop does. Differentiable in every argument but the mask.
    """
    import tensorflow as tf


    @tf.custom_gradient
    def run(inputs, h0, c0, kernel, recurrent_kernel, bias):
        steps, batch, features = tf.unstack(tf.shape(inputs))
        units = tf.shape(h0)[-1]
        projected = tf.matmul(tf.reshape(inputs, [-1, features]), kernel) + bias
        gate_i, gate_f, candidate, gate_o, tanh_c, h_states, c_states = _forward_loop(
            tf.reshape(projected, [steps, batch, 4 * units]), h0, c0, recurrent_kernel, step_mask)
        c_last = c_states[-1]

        def grad(d_h_states, d_c_last):
            d_h_states = tf.zeros_like(h_states) if d_h_states is None else d_h_states
            d_c_last = tf.zeros_like(c_last) if d_c_last is None else d_c_last
            # Everything that does not depend on the carried gradients is computed here, over
            # all steps at once; the reverse loop keeps a few multiplies and adds and one matmul.
            c_previous = tf.concat([c0[None], c_states[:-1]], axis=0)
            # d(pre-activation) = [dc, dc, dc, dh] * factors; dc also gains dh * o * (1 - tanh(c)^2).
            factors = tf.concat([candidate * gate_i * (1 - gate_i), c_previous * gate_f * (1 - gate_f),
                                 gate_i * (1 - candidate * candidate), tanh_c * gate_o * (1 - gate_o)], axis=2)
            carry_factors = [gate_o * (1 - tanh_c * tanh_c), gate_f]
            if step_mask is not None:  # multiplying by exact 0/1 keeps the stock layer's numbers
                keep = tf.cast(step_mask, factors.dtype)
                factors = factors * keep
                carry_factors = [carry_factors[0], gate_f * keep, tf.broadcast_to(1 - keep, tf.shape(gate_f))]
            d_z, d_h0, d_c0 = _backward_loop(d_h_states, d_c_last, factors, tf.concat(carry_factors, axis=2),
                                             tf.transpose(recurrent_kernel), step_mask is not None)
            d_z = tf.reshape(d_z, [-1, 4 * units])
            d_bias = tf.raw_ops.BiasAddGrad(out_backprop=d_z)  # far faster than reduce_sum over rows
            h_previous = tf.reshape(tf.concat([h0[None], h_states[:-1]], axis=0), [-1, units])
            d_inputs = tf.reshape(tf.matmul(d_z, kernel, transpose_b=True), tf.shape(inputs))
            d_kernel = tf.matmul(tf.reshape(inputs, [-1, features]), d_z, transpose_a=True)
            d_recurrent = tf.matmul(h_previous, d_z, transpose_a=True)
            return d_inputs, d_h0, d_c0, d_kernel, d_recurrent, d_bias

        return (h_states, c_last), grad

    return run(inputs, h0, c0, kernel, recurrent_kernel, bias)
