"""Model evaluation: colorize a picture set through the runtime (the path users run) and score it
(evaluate), then write the table, JSON, HTML report and grid (report). Needs onnxruntime, not torch.
"""
