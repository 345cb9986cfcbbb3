"""Training code for firewatch's models (installed with the ``train`` extra).

The daemon never imports this package: it only loads the ONNX files that these
modules write to ``models/``.
"""
