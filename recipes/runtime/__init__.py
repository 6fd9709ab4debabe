"""Machinery shared by every recipe; it knows no particular model.

config (hyper-parameters and CLI overrides), distribute (strategy choice), data (tfds,
offline import, tf.data pipelines), train (one run end to end), results (rows and tables).
"""
