"""The `colorize` commands, one module each; labcolor.cli registers them on the app.

Each module holds one command function: it parses options, calls library code and prints the
result. None catches library errors: labcolor.cli turns every LabcolorError into one line and
exit code 2, in one place. Heavy modules (torch, onnxruntime, the trainer) are imported inside
the command bodies, so `colorize --help` stays fast and torch-free.
"""
