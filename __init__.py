"""labcolor: colorize grayscale photos with a Lab-space GAN (PyTorch trainer, ONNX exporter, onnxruntime runtime).

Installed, the repository root is this package (pyproject.toml maps ``labcolor`` to ``.``):

* ``labcolor.core``        torch-free base: Lab contract, model metadata, picture I/O, metrics, errors
* ``labcolor.runtime``     what an embedding app needs: sessions, pre/post-processing, Colorizer, folders
* ``labcolor.evaluation``  scoring models through the runtime, reports
* ``labcolor.trainer``     datasets, networks, the training loop (PyTorch)
* ``labcolor.export``      checkpoint -> verified ONNX (PyTorch, onnx)
* ``labcolor.cli``         the ``colorize`` command (one module per command in ``labcolor.commands``)

docs/ARCHITECTURE.md says which layer may import which. Importing this package imports nothing else.
"""

__version__ = "0.2.0"  # the one place: pyproject.toml reads it, `colorize --version` prints it
